"""The intake API's tokens as stored: their hashes and bookkeeping, never a secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from ci_pipeline.clock import utcnow
from ci_pipeline.store.tables import ApiToken


def add_token(
    initiative_id: str,
    partner_id: str,
    token_hash: str,
    prefix: str,
    label: str | None,
    *,
    engine: Engine,
) -> ApiToken:
    """Store a newly issued token (its hash, never the secret) and return the row."""
    row = ApiToken(
        initiative_id=initiative_id,
        partner_id=partner_id,
        token_hash=token_hash,
        prefix=prefix,
        label=label,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def revoke_tokens(partner_id: str, *, engine: Engine, token_id: int | None = None) -> int:
    """Mark the partner's active tokens (or only ``token_id``) revoked; return how many."""
    query = (
        update(ApiToken)
        .where(col(ApiToken.partner_id) == partner_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    if token_id is not None:
        query = query.where(col(ApiToken.id) == token_id)
    with engine.begin() as conn:
        return int(conn.execute(query).rowcount)


def token_by_hash(token_hash: str, *, engine: Engine) -> ApiToken | None:
    """The token stored under ``token_hash``, revoked or not."""
    with Session(engine) as session:
        return session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()


def touch_token(token_id: int, moment: datetime, *, engine: Engine) -> None:
    """Record that the token was used at ``moment``."""
    with engine.begin() as conn:
        conn.execute(
            update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=moment)
        )


def list_tokens(*, engine: Engine, partner_id: str | None = None) -> list[ApiToken]:
    """Tokens (all, or one partner's), oldest first."""
    query = select(ApiToken).order_by(col(ApiToken.id))
    if partner_id is not None:
        query = query.where(ApiToken.partner_id == partner_id)
    with Session(engine) as session:
        return list(session.exec(query).all())

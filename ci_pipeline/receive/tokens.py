"""Per-partner API tokens: who is calling the intake API, derived from the token alone.

A token is ``cip_`` followed by 43 URL-safe characters (32 random bytes from :mod:`secrets`).
The secret is shown once, when it is issued, and never stored: the table keeps its SHA-256
hash (to look it up) and its first 8 characters (so an operator can tell tokens apart).

Why SHA-256 and not bcrypt/argon2: slow, salted hashes exist to protect *low-entropy* secrets
(passwords) against guessing. A 256-bit random secret cannot be guessed however fast the hash
is, so a plain SHA-256 is as safe here — and, being deterministic, it can be looked up through
a unique index instead of being checked row by row.

The table registers on the shared ``SQLModel.metadata``; :func:`ensure_table` creates it on an
engine whose schema was made before this module was imported, so every function here works
whatever order modules were imported in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Field, Session, SQLModel, col, select

from ci_pipeline.model.initiative import Initiative
from ci_pipeline.store import utcnow

SECRET_PREFIX = "cip_"
PREFIX_LENGTH = 8
#: What a well-formed secret looks like; anything else is refused before any lookup.
SECRET_PATTERN = re.compile(r"cip_[A-Za-z0-9_-]{32,128}")
#: ``last_used_at`` is refreshed at most this often, so authenticating is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiToken(SQLModel, table=True):
    """One partner's API token: its hash and bookkeeping, never the secret itself."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    initiative_id: str
    partner_id: str = Field(index=True)
    token_hash: str = Field(unique=True)  # SHA-256 hex of the secret
    prefix: str  # the secret's first 8 characters, for operators to recognise it
    label: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token. ``secret`` exists only here: show it once, it is not stored."""

    id: int
    partner_id: str
    prefix: str
    label: str | None
    created_at: datetime
    secret: str = field(repr=False)  # never in logs or tracebacks by accident


_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


def ensure_table(engine: Engine) -> None:
    """Create ``api_token`` if it does not exist yet (checked once per engine)."""
    if engine in _READY:
        return
    SQLModel.metadata.create_all(engine, tables=[ApiToken.__table__])  # type: ignore[attr-defined]
    _READY.add(engine)


def hash_secret(secret: str) -> str:
    """The stored form of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def well_formed(secret: str) -> bool:
    """Whether ``secret`` looks like a token this module issues (checked before any lookup)."""
    return SECRET_PATTERN.fullmatch(secret) is not None


def issue(
    initiative: Initiative, partner_id: str, *, engine: Engine, label: str | None = None
) -> IssuedToken:
    """Issue a new token for a partner of ``initiative``; raises ``UnknownPartner``."""
    initiative.partner(partner_id)
    ensure_table(engine)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        initiative_id=initiative.info.id,
        partner_id=partner_id,
        token_hash=hash_secret(secret),
        prefix=secret[:PREFIX_LENGTH],
        label=label or None,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    assert row.id is not None
    return IssuedToken(row.id, partner_id, row.prefix, row.label, row.created_at, secret)


def revoke(partner_id: str, *, engine: Engine, token_id: int | None = None) -> int:
    """Revoke the partner's active tokens (or only ``token_id``); return how many were revoked.

    A partner no longer in the initiative can still have its tokens revoked.
    """
    ensure_table(engine)
    query = (
        update(ApiToken)
        .where(col(ApiToken.partner_id) == partner_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    if token_id is not None:
        query = query.where(col(ApiToken.id) == token_id)
    with engine.begin() as conn:
        return int(conn.execute(query).rowcount)


def authenticate(secret: str, *, engine: Engine, initiative_id: str | None = None) -> str | None:
    """The partner id an active token belongs to, or ``None`` for any token that is not one.

    The secret is hashed and looked up by its hash; ``initiative_id`` (when given) also refuses
    a token issued for another initiative sharing the database. Refreshes ``last_used_at``.
    """
    if not well_formed(secret):
        return None
    digest = hash_secret(secret)
    ensure_table(engine)
    with Session(engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        if (
            row is None
            or not hmac.compare_digest(row.token_hash, digest)
            or row.revoked_at is not None
            or (initiative_id is not None and row.initiative_id != initiative_id)
        ):
            return None
        partner_id = row.partner_id
        now = utcnow()
        last = _aware(row.last_used_at)
        if last is None or now - last >= LAST_USED_RESOLUTION:
            row.last_used_at = now
            session.add(row)
            session.commit()
        return partner_id


def list_tokens(*, engine: Engine, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Tokens (all, or one partner's), oldest first, as JSON-ready data: never hash or secret."""
    ensure_table(engine)
    query = select(ApiToken).order_by(col(ApiToken.id))
    if partner_id is not None:
        query = query.where(ApiToken.partner_id == partner_id)
    with Session(engine) as session:
        rows = session.exec(query).all()
    return [
        {
            "id": r.id,
            "initiative_id": r.initiative_id,
            "partner_id": r.partner_id,
            "prefix": r.prefix,
            "label": r.label,
            "active": r.revoked_at is None,
            "created_at": _iso(r.created_at),
            "last_used_at": _iso(r.last_used_at),
            "revoked_at": _iso(r.revoked_at),
        }
        for r in rows
    ]


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _iso(moment: datetime | None) -> str | None:
    aware = _aware(moment)
    return aware.isoformat(timespec="seconds") if aware is not None else None

"""Per-partner API tokens: who is calling the intake API, derived from the token alone.

A token is ``cip_`` followed by 43 URL-safe characters (32 random bytes from :mod:`secrets`).
The secret is shown once, when it is issued, and never stored: the table keeps its SHA-256
hash (to look it up) and its first 8 characters (so an operator can tell tokens apart).

Why SHA-256 and not bcrypt/argon2: slow, salted hashes exist to protect *low-entropy* secrets
(passwords) against guessing. A 256-bit random secret cannot be guessed however fast the hash
is, so a plain SHA-256 is as safe here — and, being deterministic, it can be looked up through
a unique index instead of being checked row by row.

The rules live here; the rows are the store's (``ci_pipeline.store.tokens``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.clock import aware, iso, utcnow
from ci_pipeline.model.initiative import Initiative

SECRET_PREFIX = "cip_"
PREFIX_LENGTH = 8
#: What a well-formed secret looks like; anything else is refused before any lookup.
SECRET_PATTERN = re.compile(r"cip_[A-Za-z0-9_-]{32,128}")
#: ``last_used_at`` is refreshed at most this often, so authenticating is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token. ``secret`` exists only here: show it once, it is not stored."""

    id: int
    partner_id: str
    prefix: str
    label: str | None
    created_at: datetime
    secret: str = field(repr=False)  # never in logs or tracebacks by accident


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
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = store.add_token(
        initiative.info.id,
        partner_id,
        hash_secret(secret),
        secret[:PREFIX_LENGTH],
        label or None,
        engine=engine,
    )
    assert row.id is not None
    return IssuedToken(row.id, partner_id, row.prefix, row.label, row.created_at, secret)


def revoke(partner_id: str, *, engine: Engine, token_id: int | None = None) -> int:
    """Revoke the partner's active tokens (or only ``token_id``); return how many were revoked.

    A partner no longer in the initiative can still have its tokens revoked.
    """
    return store.revoke_tokens(partner_id, engine=engine, token_id=token_id)


def authenticate(secret: str, *, engine: Engine, initiative_id: str | None = None) -> str | None:
    """The partner id an active token belongs to, or ``None`` for any token that is not one.

    The secret is hashed and looked up by its hash; ``initiative_id`` (when given) also refuses
    a token issued for another initiative sharing the database. Refreshes ``last_used_at``.
    """
    if not well_formed(secret):
        return None
    digest = hash_secret(secret)
    row = store.token_by_hash(digest, engine=engine)
    if (
        row is None
        or row.id is None
        or not hmac.compare_digest(row.token_hash, digest)
        or row.revoked_at is not None
        or (initiative_id is not None and row.initiative_id != initiative_id)
    ):
        return None
    now = utcnow()
    last = aware(row.last_used_at)
    if last is None or now - last >= LAST_USED_RESOLUTION:
        store.touch_token(row.id, now, engine=engine)
    return row.partner_id


def list_tokens(*, engine: Engine, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Tokens (all, or one partner's), oldest first, as JSON-ready data: never hash or secret."""
    rows = store.list_tokens(engine=engine, partner_id=partner_id)
    return [
        {
            "id": r.id,
            "initiative_id": r.initiative_id,
            "partner_id": r.partner_id,
            "prefix": r.prefix,
            "label": r.label,
            "active": r.revoked_at is None,
            "created_at": iso(r.created_at),
            "last_used_at": iso(r.last_used_at),
            "revoked_at": iso(r.revoked_at),
        }
        for r in rows
    ]

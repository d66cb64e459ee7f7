"""The one clock: every stored moment is UTC, and SQLite hands it back without a zone."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, zone-aware."""
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """A stored moment as zone-aware UTC: SQLite returns naive datetimes (all stored are UTC),
    PostgreSQL aware ones in the session's zone."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """A stored moment as ISO 8601 to the second, or None."""
    stamp = aware(moment)
    return stamp.isoformat(timespec="seconds") if stamp is not None else None

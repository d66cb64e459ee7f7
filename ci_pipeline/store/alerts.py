"""Alert records and the delivery outbox as stored: finding, adding, reading and listing alerts,
queueing deliveries, and reading the ones that are due.

The rules (what to record, when to resolve, when to repeat, how long to back off) are
:mod:`ci_pipeline.alert`'s. A step that must be atomic — recording a run's findings, queueing a
round — runs in one :func:`transaction` whose session the caller passes to these functions
(``session=``); the ORM objects they return are changed in place and written when the
transaction commits.

Delivery is three short steps, none held open while a channel is being sent to:
:func:`claim_due_messages` takes the due rows in one :func:`locked_transaction` (two senders at
once never claim the same row), then the caller sends, then :func:`record_sent` or
:func:`record_failed` writes the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import Engine, bindparam, or_, update
from sqlmodel import Session, col, select

from ci_pipeline.clock import aware
from ci_pipeline.store.db import locked_transaction
from ci_pipeline.store.tables import Alert, AlertStatus, OutboxMessage

#: The name of the lock that claiming outbox rows holds (:func:`locked_transaction`).
OUTBOX_LOCK = "outbox"

#: One row per alert a digest reports: :func:`alerts_since`.
ALERTS_SINCE_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "kind": pl.Utf8,
    "status": pl.Utf8,
    "verified": pl.Boolean,
    "message": pl.Utf8,
    "resolved_at": pl.Datetime("us", "UTC"),
}


# --- alert records ------------------------------------------------------------------------------


def find_alert(initiative_id: str, key: Mapping[str, str], *, session: Session) -> Alert | None:
    """The alert with this key (``kind``, ``measure_id``, ``geo_code``, ``disaggregation``,
    ``period``, ``subject``), whatever its status."""
    return session.exec(
        select(Alert).where(
            Alert.initiative_id == initiative_id,
            *[getattr(Alert, name) == value for name, value in key.items()],
        )
    ).first()


def series_alerts(
    initiative_id: str,
    kinds: Iterable[str],
    measure_id: str,
    geo_code: str,
    disaggregation: str,
    *,
    session: Session,
) -> list[Alert]:
    """The alerts of these kinds on one series (measure, geography, breakdown), whatever their
    status, in the order they were opened."""
    return list(
        session.exec(
            select(Alert)
            .where(
                Alert.initiative_id == initiative_id,
                col(Alert.kind).in_(sorted(set(kinds))),
                Alert.measure_id == measure_id,
                Alert.geo_code == geo_code,
                Alert.disaggregation == disaggregation,
            )
            .order_by(col(Alert.id))
        ).all()
    )


def add_alert(alert: Alert, *, session: Session) -> int:
    """Add a new alert to the session's transaction; its id."""
    session.add(alert)
    session.flush()
    assert alert.id is not None
    return alert.id


def unresolved_alerts(initiative_id: str, *, session: Session) -> list[Alert]:
    """The initiative's alerts not resolved (open or acknowledged)."""
    return list(
        session.exec(
            select(Alert).where(
                Alert.initiative_id == initiative_id, col(Alert.status) != AlertStatus.resolved
            )
        ).all()
    )


def open_alerts(*, session: Session) -> list[Alert]:
    """Every open alert (neither acknowledged nor resolved)."""
    return list(session.exec(select(Alert).where(Alert.status == AlertStatus.open)).all())


def acknowledge_alert(alert_id: int, by: str, at: datetime, *, engine: Engine) -> Alert | None:
    """Mark the alert acknowledged by ``by`` at ``at`` if it is open (in one transaction; an
    alert not open is left as it is). The alert as stored afterwards, or None if there is none."""
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        if alert.status == AlertStatus.open:
            alert.status, alert.acknowledged_at, alert.acknowledged_by = (
                AlertStatus.acknowledged,
                at,
                by,
            )
            session.add(alert)
            session.commit()
            session.refresh(alert)
        return alert


def get_alerts(ids: Iterable[int], *, session: Session) -> dict[int, Alert]:
    """These alerts (those that exist), by id: one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(Alert).where(col(Alert.id).in_(wanted))).all()
    return {a.id: a for a in rows if a.id is not None}


def alerts_by_id(ids: Iterable[int], *, engine: Engine) -> list[Alert]:
    """These alerts (those that exist), in id order."""
    with Session(engine) as session:
        found = get_alerts(ids, session=session)
    return [found[i] for i in sorted(found)]


def list_alerts(*, engine: Engine, status: str | None = None, limit: int = 200) -> list[Alert]:
    """Alerts, newest first: all, or those of one status."""
    with Session(engine) as session:
        query = select(Alert).order_by(col(Alert.id).desc()).limit(limit)
        if status:
            query = query.where(Alert.status == status)
        return list(session.exec(query).all())


def alerts_since(initiative_id: str, start: datetime, *, engine: Engine) -> pl.DataFrame:
    """The initiative's alerts not resolved, and those resolved since ``start``
    (:data:`ALERTS_SINCE_SCHEMA`)."""
    query = sa.select(
        col(Alert.id),
        col(Alert.kind),
        col(Alert.status),
        col(Alert.verified),
        col(Alert.message),
        col(Alert.resolved_at),
    ).where(
        col(Alert.initiative_id) == initiative_id,
        or_(col(Alert.status) != AlertStatus.resolved, col(Alert.resolved_at) >= start),
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(rows, schema=ALERTS_SINCE_SCHEMA, orient="row")


# --- the outbox ---------------------------------------------------------------------------------


def pending_alert_ids(*, session: Session) -> set[int]:
    """The alerts that have a delivery still pending (on any channel): one query."""
    return set(
        session.exec(
            select(OutboxMessage.alert_id).where(OutboxMessage.status == "pending").distinct()
        ).all()
    )


def unannounced_resolutions(since: datetime, *, session: Session) -> list[Alert]:
    """Alerts resolved since ``since`` whose recipients were told of them (verified, notified at
    least once) and not yet of this resolution: no outbox row of round ``-notifications``, the
    round a resolution notice takes (an episode that reopens and resolves again counts more
    notifications, so each resolution has its own)."""
    announced = (
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.alert_id) == col(Alert.id),
            col(OutboxMessage.round) == -col(Alert.notifications),
        )
        .exists()
    )
    return list(
        session.exec(
            select(Alert)
            .where(
                Alert.status == AlertStatus.resolved,
                col(Alert.resolved_at) >= since,
                col(Alert.notifications) > 0,
                col(Alert.verified),
                ~announced,
            )
            .order_by(col(Alert.id))
        ).all()
    )


def add_messages(messages: Iterable[OutboxMessage], *, session: Session) -> None:
    """Queue deliveries in the session's transaction."""
    session.add_all(list(messages))


def due_messages(now: datetime, *, session: Session) -> list[OutboxMessage]:
    """Pending deliveries whose next attempt is due by ``now``, in the order they were queued."""
    pending = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending")
        .order_by(col(OutboxMessage.id))
    ).all()
    return [m for m in pending if (aware(m.next_attempt_at) or now) <= now]


def claim_due_messages(
    now: datetime, lease_until: datetime, *, engine: Engine
) -> tuple[list[OutboxMessage], dict[int, Alert]]:
    """Claim the deliveries due by ``now`` for one sender: the rows and their alerts.

    In one :func:`locked_transaction`, so no other claim runs beside it: the due rows get their
    next attempt moved to ``lease_until`` and one more attempt counted, and are then no longer
    due for anyone else until the outcome is recorded — or, if the sender dies first, until the
    lease ends. Committed before returning: the sending happens outside any transaction.
    """
    with locked_transaction(OUTBOX_LOCK, engine=engine) as session:
        due = due_messages(now, session=session)
        ids = [m.id for m in due]
        if not ids:
            return [], {}
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids))
            .values(next_attempt_at=lease_until, attempts=col(OutboxMessage.attempts) + 1),
            execution_options={"synchronize_session": "evaluate"},
        )
        return due, get_alerts((m.alert_id for m in due), session=session)


def record_sent(ids: Iterable[int], at: datetime, *, engine: Engine) -> None:
    """Record these claimed deliveries as sent at ``at`` (sent is final: never sent again).

    One statement, committed at once, so a crash after it cannot send them again.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return
    with engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(wanted), col(OutboxMessage.status) == "pending")
            .values(status="sent", sent_at=at, last_error=None)
        )


def record_failed(retry_at: Mapping[int, datetime], error: str, *, engine: Engine) -> None:
    """Record these claimed deliveries as failed with ``error``, each due again at its time
    in ``retry_at`` (a row already recorded as sent is left as it is)."""
    if not retry_at:
        return
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"), table.c.status == "pending")
        .values(last_error=error, next_attempt_at=bindparam("retry_at"))
    )
    with engine.begin() as conn:
        conn.execute(
            statement,
            [{"row_id": row_id, "retry_at": at} for row_id, at in sorted(retry_at.items())],
        )

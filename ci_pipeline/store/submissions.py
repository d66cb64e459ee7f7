"""The submission lifecycle: duplicates, rejections, acceptance (with supersession and the
overlap check), and the listings of submissions.

Accepting a file is one transaction: all of its rows or none, checked for figures already
counted in the same locked transaction that writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ci_pipeline.clock import utcnow
from ci_pipeline.errors import AlreadyReported, ConcurrentSubmission
from ci_pipeline.store.db import locked_transaction
from ci_pipeline.store.observations import (
    Diff,
    bulk_insert_observations,
    diff_observations,
    find_overlaps,
    observations_of,
)
from ci_pipeline.store.tables import (
    Status,
    Submission,
    SubmissionFields,
)

#: One row per submission received in a window: :func:`submissions_between`.
RECEIVED_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "partner_id": pl.Utf8,
    "period": pl.Utf8,
    "status": pl.Utf8,
    "received_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class NewSubmission:
    """What is known about a file before its outcome is stored."""

    initiative_id: str
    partner_id: str
    period: str
    content_hash: str
    file_name: str
    file_format: str
    encoding: str | None
    received_at: datetime
    archive_path: str | None = None


def find_duplicate(
    new: NewSubmission, *, engine: Engine, status: Status = Status.accepted
) -> Submission | None:
    """The submission (accepted, by default) with the same bytes from the same partner for the
    same period."""
    with Session(engine) as session:
        return session.exec(
            select(Submission)
            .where(
                Submission.initiative_id == new.initiative_id,
                Submission.partner_id == new.partner_id,
                Submission.period == new.period,
                Submission.content_hash == new.content_hash,
                Submission.status == status,
            )
            .order_by(col(Submission.id).desc())
        ).first()


def _insert_submission(session: Session, new: NewSubmission, **fields: Any) -> Submission:
    row = Submission(**vars(new), **fields)
    session.add(row)
    session.flush()
    return row


def record_duplicate(new: NewSubmission, original: Submission, *, engine: Engine) -> Submission:
    """Record that the same bytes came again: no observations, a pointer to the original."""
    with Session(engine) as session:
        row = _insert_submission(
            session,
            new,
            status=Status.duplicate,
            duplicate_of=original.id,
            validated_at=utcnow(),
            rows_total=original.rows_total,
            report_path=original.report_path,
            message=f"identical to submission #{original.id}; nothing was written",
        )
        session.commit()
        session.refresh(row)
        return row


def record_rejected(
    new: NewSubmission,
    *,
    rows_total: int,
    rows_rejected: int,
    issues: int,
    report_path: str | None,
    message: str,
    engine: Engine,
) -> Submission:
    """Record a rejected file: the submission row only, never an observation."""
    with Session(engine) as session:
        row = _insert_submission(
            session,
            new,
            status=Status.rejected,
            validated_at=utcnow(),
            rows_total=rows_total,
            rows_rejected=rows_rejected,
            issues=issues,
            report_path=report_path,
            message=message,
        )
        session.commit()
        session.refresh(row)
        return row


def current_submission(
    initiative_id: str, partner_id: str, period: str, *, engine: Engine
) -> Submission | None:
    """The accepted submission for a partner and period, if any."""
    with Session(engine) as session:
        return session.exec(
            select(Submission).where(
                Submission.initiative_id == initiative_id,
                Submission.partner_id == partner_id,
                Submission.period == period,
                Submission.status == Status.accepted,
            )
        ).first()


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    superseded: Submission | None
    diff: Diff | None


def _accepted_in(session: Session, new: NewSubmission) -> Submission | None:
    """The accepted submission for the new file's partner and period, read in ``session``."""
    return session.exec(
        select(Submission).where(
            Submission.initiative_id == new.initiative_id,
            Submission.partner_id == new.partner_id,
            Submission.period == new.period,
            Submission.status == Status.accepted,
        )
    ).first()


#: The one lock every acceptance takes (:func:`store_accepted`): whatever the partner and
#: period, no two files are checked and written at the same time.
ACCEPT_LOCK = "accept-observations"


def store_accepted(
    new: NewSubmission,
    observations: pl.DataFrame,
    *,
    rows_total: int,
    report_path: str | None,
    engine: Engine,
) -> Accepted:
    """Accept a validated file in one transaction: its rows, and the supersession of its
    predecessor, unless a row overlaps a figure already counted.

    The overlap check (:func:`find_overlaps`) and the write are one atomic step: they run in
    one :func:`locked_transaction` on :data:`ACCEPT_LOCK`, which every acceptance takes, so no
    interleaving of two ingests (any partner, any period) stores what the check would refuse.
    A file that overlaps raises :class:`AlreadyReported` and writes nothing; the check before
    storing (``find_conflicts``) only spares the partner a wait for the common case.

    The earlier accepted submission for the same partner and period, if any, becomes
    ``superseded`` (kept, pointing to its successor) and its observations stop counting.
    """
    with locked_transaction(ACCEPT_LOCK, engine=engine) as session:
        conn = session.connection()
        conflicts = find_overlaps(conn, new.initiative_id, new.partner_id, new.period, observations)
        if not conflicts.is_empty():
            raise AlreadyReported(conflicts)
        stale = _accepted_in(session, new)
        diff = None
        if stale is not None:
            assert stale.id is not None
            diff = diff_observations(observations_of(conn, stale.id), observations)
            stale.status = Status.superseded
            session.add(stale)
            session.flush()  # free the one-accepted-per-period slot before taking it
        try:
            row = _insert_submission(
                session,
                new,
                status=Status.accepted,
                validated_at=utcnow(),
                rows_total=rows_total,
                rows_accepted=observations.height,
                report_path=report_path,
                supersedes=stale.id if stale else None,
                rows_added=diff.added if diff else None,
                rows_removed=diff.removed if diff else None,
                rows_changed=diff.changed if diff else None,
            )
        except IntegrityError as exc:  # the one-accepted-per-period index: a writer that
            # bypassed the lock took the slot (every acceptance here reads it under the lock)
            raise ConcurrentSubmission(
                f"another submission for {new.partner_id} {new.period} was accepted at the same time; "
                "submit again to supersede it"
            ) from exc
        if stale is not None:
            stale.superseded_by = row.id
            session.add(stale)
        # A failure here (a row breaking the observation key, a dropped connection) is not a
        # concurrent submission: it propagates as itself, and the session rolls everything back.
        bulk_insert_observations(
            conn,
            observations.with_columns(
                pl.lit(row.id, pl.Int64).alias("submission_id"),
                pl.lit(new.partner_id).alias("partner_id"),
            ),
        )
        session.flush()
    return Accepted(row, stale, diff)


def list_submissions(
    *,
    engine: Engine,
    partner_id: str | None = None,
    period: str | None = None,
    limit: int = 100,
    initiative_id: str | None = None,
    content_hash: str | None = None,
) -> Sequence[Submission]:
    """Submissions, newest first, filtered by those of partner, period, initiative and content
    hash that are given (an empty partner or period filters nothing; an empty hash matches
    nothing)."""
    with Session(engine) as session:
        query = select(Submission).order_by(col(Submission.id).desc()).limit(limit)
        if partner_id:
            query = query.where(Submission.partner_id == partner_id)
        if period:
            query = query.where(Submission.period == period)
        if initiative_id is not None:
            query = query.where(Submission.initiative_id == initiative_id)
        if content_hash is not None:
            query = query.where(Submission.content_hash == content_hash)
        return session.exec(query).all()


def get_submission(submission_id: int, *, engine: Engine) -> Submission | None:
    with Session(engine) as session:
        return session.get(Submission, submission_id)


def submissions_between(
    initiative_id: str, start: datetime, end: datetime, *, engine: Engine
) -> pl.DataFrame:
    """Submissions received in [start, end), whatever became of them (:data:`RECEIVED_SCHEMA`)."""
    query = sa.select(
        col(Submission.id),
        col(Submission.partner_id),
        col(Submission.period),
        col(Submission.status),
        col(Submission.received_at),
    ).where(
        col(Submission.initiative_id) == initiative_id,
        col(Submission.received_at) >= start,
        col(Submission.received_at) < end,
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(rows, schema=RECEIVED_SCHEMA, orient="row")


def last_submission(initiative_id: str, *, engine: Engine) -> Submission | None:
    """The submission received last for the initiative (the highest id among those received at
    that moment), whatever became of it; None if none ever was."""
    latest = (
        sa.select(func.max(col(Submission.received_at)))
        .where(col(Submission.initiative_id) == initiative_id)
        .scalar_subquery()
    )
    query = (
        select(Submission)
        .where(
            col(Submission.initiative_id) == initiative_id, col(Submission.received_at) == latest
        )
        .order_by(col(Submission.id).desc())
        .limit(1)
    )
    with Session(engine) as session:
        return session.exec(query).first()


def submission_dict(row: SubmissionFields) -> dict[str, Any]:
    """A submission as plain JSON-ready data, its fields in the record's order (a loaded row's
    ``model_dump`` follows the order SQLAlchemy happened to load them in)."""
    out = {name: getattr(row, name) for name in SubmissionFields.model_fields}
    for key in ("received_at", "validated_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat(timespec="seconds")
    return out


def set_report(row: Submission, report_path: str, message: str, *, engine: Engine) -> Submission:
    """Attach the written report and the outcome message to a stored submission."""
    with Session(engine) as session:
        stored = session.get(Submission, row.id)
        assert stored is not None
        stored.report_path = report_path
        stored.message = message
        session.add(stored)
        session.commit()
        session.refresh(stored)
        return stored

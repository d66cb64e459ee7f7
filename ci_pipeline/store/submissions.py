"""The submission lifecycle after reception: a received submission's verdict (a duplicate, a
rejection, or an acceptance with its supersession), written once; and the listings.

Accepting a file is one transaction: all of its rows or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import polars as pl
import sqlalchemy as sa
from sqlalchemy import Engine, func
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from ci_pipeline.clock import utcnow
from ci_pipeline.errors import AlreadyReported
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


def _duplicate_query(new: NewSubmission | Submission, status: Status) -> SelectOfScalar[Submission]:
    return (
        select(Submission)
        .where(
            Submission.initiative_id == new.initiative_id,
            Submission.partner_id == new.partner_id,
            Submission.period == new.period,
            Submission.content_hash == new.content_hash,
            Submission.status == status,
        )
        .order_by(col(Submission.id).desc())
    )


def find_duplicate(
    new: NewSubmission | Submission, *, engine: Engine, status: Status = Status.accepted
) -> Submission | None:
    """The submission (accepted, by default) with the same bytes from the same partner for the
    same period."""
    with Session(engine) as session:
        return session.exec(_duplicate_query(new, status)).first()


def decide(session: Session, submission_id: int, **verdict: Any) -> Submission | None:
    """Write a received submission's verdict (its status and outcome fields) in the session's
    transaction, once: a row that already has one is left as it is, and None is returned.

    The update is conditional on the row still being ``received``, so two ingests of one
    submission (a retry, the reconciler beside a late event) can never both decide it.
    """
    done = cast(
        CursorResult[Any],
        session.execute(
            sa.update(Submission)
            .where(col(Submission.id) == submission_id, col(Submission.status) == Status.received)
            .values(validated_at=utcnow(), **verdict)
        ),
    )
    if done.rowcount != 1:
        return None
    row = session.get(Submission, submission_id, populate_existing=True)
    assert row is not None
    return row


def _decided(submission_id: int, verdict: dict[str, Any], *, engine: Engine) -> Submission:
    """Decide in a transaction of its own; the stored row, whoever decided it."""
    with Session(engine, expire_on_commit=False) as session:
        decide(session, submission_id, **verdict)
        session.commit()
        row = session.get(Submission, submission_id, populate_existing=True)
        if row is None:
            raise LookupError(f"no submission #{submission_id}")
        return row


def _duplicate_verdict(original: Submission) -> dict[str, Any]:
    """The verdict of the same bytes come again: no observations, a pointer to the original."""
    return {
        "status": Status.duplicate,
        "duplicate_of": original.id,
        "rows_total": original.rows_total,
        "report_path": original.report_path,
        "message": f"identical to submission #{original.id}; nothing was written",
    }


def record_duplicate(submission_id: int, original: Submission, *, engine: Engine) -> Submission:
    """Decide that the same bytes came again: no observations, a pointer to the original."""
    return _decided(submission_id, _duplicate_verdict(original), engine=engine)


def record_rejected(
    submission_id: int,
    *,
    rows_total: int,
    rows_rejected: int,
    issues: int,
    report_path: str | None,
    message: str,
    encoding: str | None,
    engine: Engine,
) -> Submission:
    """Decide that a file is rejected: the submission row only, never an observation."""
    return _decided(
        submission_id,
        {
            "status": Status.rejected,
            "rows_total": rows_total,
            "rows_rejected": rows_rejected,
            "issues": issues,
            "report_path": report_path,
            "message": message,
            "encoding": encoding,
        },
        engine=engine,
    )


def _current(
    session: Session, initiative_id: str, partner_id: str, period: str
) -> Submission | None:
    return session.exec(
        select(Submission).where(
            Submission.initiative_id == initiative_id,
            Submission.partner_id == partner_id,
            Submission.period == period,
            Submission.status == Status.accepted,
        )
    ).first()


def current_submission(
    initiative_id: str, partner_id: str, period: str, *, engine: Engine
) -> Submission | None:
    """The accepted submission for a partner and period, if any."""
    with Session(engine) as session:
        return _current(session, initiative_id, partner_id, period)


#: The one lock every acceptance takes (:func:`~ci_pipeline.store.db.locked_transaction`): the
#: duplicate and overlap checks and the write they allow are one step, whatever the partner or
#: period, so no two files are checked and written at the same time.
ACCEPT_LOCK = "accept-observations"


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    superseded: Submission | None
    diff: Diff | None


def accept(
    session: Session,
    pending: Submission,
    observations: pl.DataFrame,
    *,
    rows_total: int,
    encoding: str | None,
) -> Accepted | Submission | None:
    """Accept a validated file in the session's transaction (one of
    :func:`~ci_pipeline.store.db.locked_transaction`, so nothing read here changes before it
    commits): its rows, and the supersession of its predecessor.

    The earlier accepted submission for the same partner and period, if any, becomes
    ``superseded`` (kept, pointing to its successor) and its observations stop counting. The
    same bytes already accepted make this one a duplicate instead (the stored row is returned).
    None: the submission already had a verdict, and nothing was written. A row that overlaps a
    figure already counted (:func:`find_overlaps`) raises :class:`AlreadyReported`, and the
    caller's transaction writes nothing: the check and the write it allows are one step.
    """
    assert pending.id is not None
    original = session.exec(_duplicate_query(pending, Status.accepted)).first()
    if original is not None:
        return decide(session, pending.id, **_duplicate_verdict(original))
    conn = session.connection()
    conflicts = find_overlaps(
        conn, pending.initiative_id, pending.partner_id, pending.period, observations
    )
    if not conflicts.is_empty():
        raise AlreadyReported(conflicts)
    previous = _current(session, pending.initiative_id, pending.partner_id, pending.period)
    diff = None
    if previous is not None:
        assert previous.id is not None
        diff = diff_observations(observations_of(conn, previous.id), observations)
        previous.status = Status.superseded
        session.add(previous)
        session.flush()  # free the one-accepted-per-period slot before taking it
    row = decide(
        session,
        pending.id,
        status=Status.accepted,
        rows_total=rows_total,
        rows_accepted=observations.height,
        encoding=encoding,
        archive_path=pending.archive_path,
        supersedes=previous.id if previous else None,
        rows_added=diff.added if diff else None,
        rows_removed=diff.removed if diff else None,
        rows_changed=diff.changed if diff else None,
    )
    if row is None:
        return None
    if previous is not None:
        previous.superseded_by = row.id
        session.add(previous)
    # A failure here (a row breaking the observation key, a dropped connection) propagates as
    # itself, and the transaction rolls everything back.
    bulk_insert_observations(
        conn,
        observations.with_columns(
            pl.lit(row.id, pl.Int64).alias("submission_id"),
            pl.lit(pending.partner_id).alias("partner_id"),
        ),
    )
    session.flush()
    return Accepted(row, previous, diff)


def describe(session: Session, row: Submission, *, report_path: str, message: str) -> None:
    """Attach the written report and the outcome message, in the verdict's transaction."""
    row.report_path = report_path
    row.message = message
    session.add(row)
    session.flush()


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
    for key in ("received_at", "validated_at", "claimed_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat(timespec="seconds")
    return out

"""Durable intake: a received file's bytes and its ``received`` submission record, committed
together before anyone is told "received"; and the queries that find received submissions an
ingest must still decide (the reconciler's work list).

The bytes are content-addressed (one row per SHA-256, however many times they were sent), so a
worker on any machine can ingest a submission from the database alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from ci_pipeline.clock import utcnow
from ci_pipeline.store.submissions import NewSubmission
from ci_pipeline.store.tables import ReceivedFile, Status, Submission


def _store_bytes(session: Session, content_hash: str, content: bytes) -> None:
    """Insert the bytes unless a row already holds them (same hash, same bytes)."""
    values = {
        "content_hash": content_hash,
        "size_bytes": len(content),
        "content": content,
        "stored_at": utcnow(),
    }
    table = SQLModel.metadata.tables["received_file"]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    session.execute(insert.values(values).on_conflict_do_nothing(index_elements=["content_hash"]))


def record_received(
    new: NewSubmission,
    *,
    content: bytes | None,
    size_bytes: int,
    options: dict[str, Any] | None = None,
    content_url: str | None = None,
    engine: Engine,
) -> Submission:
    """Commit the file's bytes and its ``received`` submission in one transaction; return the
    row, with its id. ``content`` None: the bytes are at ``content_url`` (already written), or,
    without one, too large to keep (the ingest refuses the file)."""
    with Session(engine, expire_on_commit=False) as session:
        if content is not None:
            _store_bytes(session, new.content_hash, content)
        row = Submission(
            **vars(new),
            status=Status.received,
            size_bytes=size_bytes,
            content_url=content_url,
            options=json.dumps(options, sort_keys=True) if options else None,
        )
        session.add(row)
        session.commit()
        return row


def received_content(content_hash: str, *, engine: Engine) -> bytes | None:
    """The stored bytes with this SHA-256, or None."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(col(ReceivedFile.content)).where(
                col(ReceivedFile.content_hash) == content_hash
            )
        ).scalar_one_or_none()
    return bytes(found) if found is not None else None


def submission_options(row: Submission) -> dict[str, Any]:
    """What the submitter declared for this file (encoding, …), as stored."""
    return dict(json.loads(row.options)) if row.options else {}


def claim_received(
    submission_id: int,
    *,
    engine: Engine,
    now: datetime | None = None,
    archive_path: str | None = None,
) -> bool:
    """Mark a received submission as taken by an ingest now; False if it has a verdict (or does
    not exist). Another ingest may be at it too: the verdict is written once whatever happens
    (see :func:`~ci_pipeline.store.submissions.decide`).

    ``archive_path``, when given, is where this ingest keeps the audit copy (in its own data
    folder, which beyond one machine is not the receiving machine's), recorded with the claim.
    """
    values: dict[str, Any] = {"claimed_at": now or utcnow()}
    if archive_path is not None:
        values["archive_path"] = archive_path
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(Submission)
            .where(col(Submission.id) == submission_id, col(Submission.status) == Status.received)
            .values(**values)
        )
    return done.rowcount == 1


def unfinished_submissions(
    initiative_id: str,
    *,
    unclaimed_for: timedelta,
    lease: timedelta,
    engine: Engine,
    now: datetime | None = None,
) -> list[Submission]:
    """Received submissions nobody is deciding: never taken and received over
    ``unclaimed_for`` ago (their event was lost, or is still queued), or taken over ``lease``
    ago (their ingest died). Oldest first."""
    now = now or utcnow()
    with Session(engine) as session:
        return list(
            session.exec(
                select(Submission)
                .where(
                    Submission.initiative_id == initiative_id,
                    Submission.status == Status.received,
                    sa.or_(
                        sa.and_(
                            col(Submission.claimed_at).is_(None),
                            col(Submission.received_at) <= now - unclaimed_for,
                        ),
                        col(Submission.claimed_at) <= now - lease,
                    ),
                )
                .order_by(col(Submission.id))
            ).all()
        )

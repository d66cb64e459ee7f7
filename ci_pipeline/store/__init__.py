"""Storage: the initiative's definitions, submissions and observations (SQLModel).

SQLite by default, PostgreSQL supported. Observations are written set-based — sqlite3
``executemany`` or PostgreSQL ``COPY`` — never through per-object ORM inserts, and accepting a
file is one transaction: all of its rows or none. Every function takes the engine (or session)
as a keyword-only argument; nothing here opens a connection on its own.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, Index, UniqueConstraint, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from ci_pipeline.aggregate import INDICATOR_SCHEMA as AGGREGATE_SCHEMA
from ci_pipeline.errors import ConcurrentSubmission, DefinitionError
from ci_pipeline.model.initiative import Initiative


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    accepted = "accepted"
    rejected = "rejected"
    duplicate = "duplicate"
    superseded = "superseded"


class InitiativeRow(SQLModel, table=True):
    __tablename__ = "initiative"
    id: str = Field(primary_key=True)
    name: str
    version: str
    digest: str
    loaded_at: datetime = Field(default_factory=utcnow)
    # The definitions the stored indicators were computed with: when they change (a cell size,
    # a partner's localities), every slice is recomputed, not only the ones with new files.
    indicators_digest: str | None = None


class GeographyRow(SQLModel, table=True):
    __tablename__ = "geography"
    initiative_id: str = Field(primary_key=True, foreign_key="initiative.id")
    code: str = Field(primary_key=True)
    level: str
    parent: str | None = None
    name_en: str
    name_he: str | None = None
    name_ar: str | None = None


class PartnerRow(SQLModel, table=True):
    __tablename__ = "partner"
    initiative_id: str = Field(primary_key=True, foreign_key="initiative.id")
    id: str = Field(primary_key=True)
    name: str
    sector: str
    localities: str  # JSON list
    measures: str  # JSON list
    submits_every: str
    contact_email: str


class MeasureRow(SQLModel, table=True):
    """A measure definition at one version; a changed definition needs a new version."""

    __tablename__ = "measure"
    initiative_id: str = Field(primary_key=True, foreign_key="initiative.id")
    id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    title: str
    unit: str
    periodicity: str
    definition: str  # the whole definition, JSON
    loaded_at: datetime = Field(default_factory=utcnow)


class Submission(SQLModel, table=True):
    """One file from one partner for one period, whatever became of it."""

    __tablename__ = "submission"
    __table_args__ = (
        # At most one accepted submission per partner and period: the database enforces it.
        Index(
            "one_accepted_per_partner_period",
            "initiative_id",
            "partner_id",
            "period",
            unique=True,
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    initiative_id: str = Field(foreign_key="initiative.id")
    partner_id: str = Field(index=True)
    period: str = Field(index=True)
    content_hash: str = Field(index=True)
    file_name: str
    file_format: str
    encoding: str | None = None
    status: str = Field(index=True)
    received_at: datetime
    validated_at: datetime | None = None
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    issues: int = 0
    report_path: str | None = None
    archive_path: str | None = None
    message: str | None = None
    supersedes: int | None = Field(default=None, foreign_key="submission.id")
    superseded_by: int | None = Field(default=None, foreign_key="submission.id")
    duplicate_of: int | None = Field(default=None, foreign_key="submission.id")
    rows_added: int | None = None
    rows_removed: int | None = None
    rows_changed: int | None = None


class Observation(SQLModel, table=True):
    """One validated cell of an accepted submission; it counts while the submission is accepted."""

    __tablename__ = "observation"
    __table_args__ = (
        UniqueConstraint(
            "submission_id",
            "measure_id",
            "geo_code",
            "period",
            "disaggregation",
            name="observation_key",
        ),
        Index("observation_slice", "measure_id", "period"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # No index of its own: the unique key below starts with submission_id and serves lookups.
    submission_id: int = Field(foreign_key="submission.id")
    partner_id: str
    measure_id: str
    measure_version: int
    geo_code: str
    period: str
    disaggregation: str
    numerator: float | None = None
    denominator: float | None = None
    value: float | None = None
    source_row: int


OBSERVATION_COLUMNS = [
    "submission_id",
    "partner_id",
    "measure_id",
    "measure_version",
    "geo_code",
    "period",
    "disaggregation",
    "numerator",
    "denominator",
    "value",
    "source_row",
]
NATURAL_KEY = ["measure_id", "geo_code", "period", "disaggregation"]
VALUE_COLUMNS = ["numerator", "denominator", "value"]


def make_engine(url: str) -> Engine:
    """An engine for the app database; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(*, engine: Engine) -> None:
    """Create the tables, or upgrade them to the head revision (see :mod:`.migrate`)."""
    from ci_pipeline.store import migrate

    migrate.upgrade(engine=engine)


def drop_schema(*, engine: Engine) -> None:
    """Drop every table, ``alembic_version`` included."""
    from ci_pipeline.store import migrate

    migrate.drop(engine=engine)


@contextmanager
def session_scope(*, engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


# --- definitions ---------------------------------------------------------------------------------


def sync_initiative(initiative: Initiative, *, engine: Engine) -> list[str]:
    """Store the initiative's definitions; return what changed.

    Measures are versioned: a new version is added beside the old ones; a changed definition
    under an existing version is refused, since observations already stored refer to it.
    """
    changes: list[str] = []
    info = initiative.info
    with Session(engine) as session:
        row = session.get(InitiativeRow, info.id)
        if row is not None and row.digest == initiative.digest:
            return changes  # the same definitions are stored already
        changes.append(f"initiative {info.id} {'loaded' if row is None else 'updated'}")
        session.merge(
            InitiativeRow(
                id=info.id, name=info.name.en, version=info.version, digest=initiative.digest
            )
        )
        for g in initiative.geographies.values():
            session.merge(
                GeographyRow(
                    initiative_id=info.id,
                    code=g.code,
                    level=g.level,
                    parent=g.parent,
                    name_en=g.name.en,
                    name_he=g.name.he,
                    name_ar=g.name.ar,
                )
            )
        for p in initiative.partners.values():
            session.merge(
                PartnerRow(
                    initiative_id=info.id,
                    id=p.id,
                    name=p.name,
                    sector=p.sector,
                    localities=json.dumps(p.localities),
                    measures=json.dumps(p.measures),
                    submits_every=p.submits_every,
                    contact_email=p.contact.email,
                )
            )
        problems = []
        for m in initiative.measures.values():
            definition = m.model_dump_json()
            stored = session.get(MeasureRow, (info.id, m.id, m.version))
            if stored is None:
                session.add(
                    MeasureRow(
                        initiative_id=info.id,
                        id=m.id,
                        version=m.version,
                        title=m.title,
                        unit=m.unit,
                        periodicity=m.periodicity,
                        definition=definition,
                    )
                )
                changes.append(f"measure {m.id} v{m.version} added")
            elif stored.definition != definition:
                problems.append(
                    f"measures/{m.id}.yaml: version: the definition of {m.id} v{m.version} "
                    f"changed, but observations may refer to it; raise 'version' to {m.version + 1}"
                )
        if problems:
            raise DefinitionError(problems)
        session.commit()
    return changes


# --- submissions ---------------------------------------------------------------------------------


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


def read_observations(submission_id: int, *, engine: Engine) -> pl.DataFrame:
    """All observations of one submission as a polars frame."""
    with engine.connect() as conn:
        return _frame(
            conn,
            f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM observation WHERE submission_id = :id",
            {"id": submission_id},
        )


def _frame(conn: Connection, sql: str, params: dict[str, Any]) -> pl.DataFrame:
    result = conn.execute(text(sql), params)
    names = list(result.keys())
    return pl.DataFrame(result.fetchall(), schema=names, orient="row", infer_schema_length=None)


def find_conflicts(
    initiative_id: str, partner_id: str, period: str, observations: pl.DataFrame, *, engine: Engine
) -> pl.DataFrame:
    """Rows this partner already reported in another accepted submission (another period).

    A monthly figure sent again inside a quarterly file would be counted twice; it must be
    corrected by resubmitting the period it was first sent in. Returns the clashing rows with
    ``source_row`` and the id and period of the submission that holds them.
    """
    periods = observations["period"].unique().to_list()
    if not periods:
        return observations.clear()
    with engine.connect() as conn:
        existing = _frame(
            conn,
            "SELECT o.measure_id, o.geo_code, o.period, o.disaggregation, "
            "s.id AS held_by, s.period AS held_in FROM observation o "
            "JOIN submission s ON s.id = o.submission_id "
            "WHERE s.initiative_id = :ini AND s.partner_id = :partner AND s.status = 'accepted' "
            "AND s.period <> :period AND o.period IN ("
            + ", ".join(f":p{i}" for i in range(len(periods)))
            + ")",
            {"ini": initiative_id, "partner": partner_id, "period": period}
            | {f"p{i}": p for i, p in enumerate(periods)},
        )
    if existing.is_empty():
        return observations.clear().with_columns(
            pl.lit(None, pl.Int64).alias("held_by"), pl.lit(None, pl.Utf8).alias("held_in")
        )
    return observations.join(existing, on=NATURAL_KEY, how="inner")


@dataclass(frozen=True)
class Diff:
    added: int
    removed: int
    changed: int
    rows: pl.DataFrame  # the natural key, change kind, old and new values


def diff_observations(old: pl.DataFrame, new: pl.DataFrame) -> Diff:
    """Rows added, removed and changed between two submissions' observations."""
    keep = [*NATURAL_KEY, *VALUE_COLUMNS]
    joined = old.select(keep).join(
        new.select(keep), on=NATURAL_KEY, how="full", coalesce=True, suffix="_new"
    )
    in_old = (
        pl.col("value").is_not_null()
        | pl.col("numerator").is_not_null()
        | pl.col("denominator").is_not_null()
    )
    in_new = pl.any_horizontal(pl.col(f"{c}_new").is_not_null() for c in VALUE_COLUMNS)
    differs = pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_new")) for c in VALUE_COLUMNS)
    rows = joined.with_columns(
        pl.when(in_old & ~in_new)
        .then(pl.lit("removed"))
        .when(~in_old & in_new)
        .then(pl.lit("added"))
        .when(differs)
        .then(pl.lit("changed"))
        .alias("change")
    ).filter(pl.col("change").is_not_null())
    counts = dict(rows.group_by("change").len().iter_rows())
    return Diff(
        counts.get("added", 0),
        counts.get("removed", 0),
        counts.get("changed", 0),
        rows.sort(NATURAL_KEY),
    )


def _bulk_insert(conn: Connection, frame: pl.DataFrame) -> None:
    """Insert observations set-based: PostgreSQL COPY, or the driver's executemany."""
    frame = frame.select(OBSERVATION_COLUMNS)
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False)
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(
                f"COPY observation ({', '.join(OBSERVATION_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            copy.write(buffer.getvalue())
        return
    placeholders = ", ".join("?" for _ in OBSERVATION_COLUMNS)
    conn.exec_driver_sql(
        f"INSERT INTO observation ({', '.join(OBSERVATION_COLUMNS)}) VALUES ({placeholders})",
        frame.rows(),
    )


@dataclass(frozen=True)
class Accepted:
    submission: Submission
    superseded: Submission | None
    diff: Diff | None


def store_accepted(
    new: NewSubmission,
    observations: pl.DataFrame,
    *,
    rows_total: int,
    report_path: str | None,
    engine: Engine,
) -> Accepted:
    """Accept a validated file in one transaction: its rows, and the supersession of its predecessor.

    The earlier accepted submission for the same partner and period, if any, becomes
    ``superseded`` (kept, pointing to its successor) and its observations stop counting.
    """
    previous = current_submission(new.initiative_id, new.partner_id, new.period, engine=engine)
    stale: Submission | None = None
    diff = None
    if previous is not None:
        assert previous.id is not None
        diff = diff_observations(read_observations(previous.id, engine=engine), observations)
    with Session(engine) as session:
        if previous is not None:
            stale = session.get(Submission, previous.id)
            if stale is None or stale.status != Status.accepted:
                raise ConcurrentSubmission(
                    f"submission #{previous.id} changed while this file was being stored; submit again"
                )
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
                supersedes=previous.id if previous else None,
                rows_added=diff.added if diff else None,
                rows_removed=diff.removed if diff else None,
                rows_changed=diff.changed if diff else None,
            )
        except IntegrityError as exc:  # the one-accepted-per-period index: another file won
            raise ConcurrentSubmission(
                f"another submission for {new.partner_id} {new.period} was accepted at the same time; "
                "submit again to supersede it"
            ) from exc
        if stale is not None:
            stale.superseded_by = row.id
            session.add(stale)
        # A failure here (a row breaking the observation key, a dropped connection) is not a
        # concurrent submission: it propagates as itself, and the session rolls everything back.
        _bulk_insert(
            session.connection(),
            observations.with_columns(
                pl.lit(row.id, pl.Int64).alias("submission_id"),
                pl.lit(new.partner_id).alias("partner_id"),
            ),
        )
        session.commit()
        session.refresh(row)
        if stale is not None:
            session.refresh(stale)
        return Accepted(row, stale, diff)


def list_submissions(
    *, engine: Engine, partner_id: str | None = None, period: str | None = None, limit: int = 100
) -> Sequence[Submission]:
    """Submissions, newest first."""
    with Session(engine) as session:
        query = select(Submission).order_by(col(Submission.id).desc()).limit(limit)
        if partner_id:
            query = query.where(Submission.partner_id == partner_id)
        if period:
            query = query.where(Submission.period == period)
        return session.exec(query).all()


def get_submission(submission_id: int, *, engine: Engine) -> Submission | None:
    with Session(engine) as session:
        return session.get(Submission, submission_id)


def current_observations(
    *,
    engine: Engine,
    measure_id: str | None = None,
    geo_code: str | None = None,
    period: str | None = None,
    partner_id: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Observations that count: those of accepted submissions, filtered."""
    where = ["s.status = 'accepted'"]
    params: dict[str, Any] = {}
    for name, value in (
        ("measure_id", measure_id),
        ("geo_code", geo_code),
        ("period", period),
        ("partner_id", partner_id),
    ):
        if value is not None:
            where.append(f"o.{name} = :{name}")
            params[name] = value
    sql = (
        f"SELECT {', '.join('o.' + c for c in OBSERVATION_COLUMNS)} FROM observation o "
        f"JOIN submission s ON s.id = o.submission_id WHERE {' AND '.join(where)} "
        "ORDER BY o.measure_id, o.period, o.geo_code, o.partner_id, o.disaggregation"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with engine.connect() as conn:
        frame = _frame(conn, sql, params)
    if frame.is_empty():
        return pl.DataFrame(schema={c: pl.Utf8 for c in OBSERVATION_COLUMNS})
    return frame


def submission_dict(row: Submission) -> dict[str, Any]:
    """A submission as plain JSON-ready data."""
    out = row.model_dump()
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


# --- indicators and alerts -----------------------------------------------------------------------


class IndicatorValue(SQLModel, table=True):
    """One population-level indicator cell; suppressed cells are stored, flagged, never shown."""

    __tablename__ = "indicator_value"
    initiative_id: str = Field(primary_key=True)
    measure_id: str = Field(primary_key=True)
    geo_code: str = Field(primary_key=True)
    period: str = Field(primary_key=True)
    disaggregation: str = Field(primary_key=True)
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    partners_reported: int
    partners_expected: int
    coverage: float | None = None
    suppressed: bool = False
    suppression: str | None = None
    lineage: str = ""  # contributing submission ids, comma-separated
    computed_at: datetime = Field(default_factory=utcnow)


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Alert(SQLModel, table=True):
    """One alert per (measure, geography, breakdown, period, kind[, partner]): never duplicated."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint(
            "initiative_id",
            "kind",
            "measure_id",
            "geo_code",
            "disaggregation",
            "period",
            "subject",
            name="alert_key",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    initiative_id: str
    kind: str
    measure_id: str = Field(index=True)
    geo_code: str
    disaggregation: str
    period: str
    subject: str = ""  # the late partner, for missing data
    working_group: str | None = None
    status: str = Field(default=AlertStatus.open, index=True)
    verified: bool = True  # False: held by the quality gate, not sent to the backbone
    message: str
    evidence: str = "{}"  # JSON
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    notifications: int = 0  # rounds queued so far (the first, then repeats)
    last_notified_at: datetime | None = None


class OutboxMessage(SQLModel, table=True):
    """One delivery of one alert to one channel; retried until sent, never sent twice."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("alert_id", "channel", "round", name="outbox_key"),)
    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id")
    channel: str
    round: int = 0
    audience: str = "backbone"  # or "engineers", for alerts the gate held
    status: str = Field(default="pending", index=True)  # pending | sent
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


#: Indicator cells as stored: the aggregate's columns plus the suppression flags.
INDICATOR_SCHEMA: dict[str, Any] = {
    **AGGREGATE_SCHEMA,
    "suppressed": pl.Boolean,
    "suppression": pl.Utf8,
}
INDICATOR_COLUMNS = list(INDICATOR_SCHEMA)


def _slice_lineage(conn: Connection, initiative_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    counted = _frame(
        conn,
        "SELECT DISTINCT o.measure_id, o.period, o.submission_id FROM observation o "
        "JOIN submission s ON s.id = o.submission_id "
        "WHERE s.initiative_id = :ini AND s.status = 'accepted'",
        {"ini": initiative_id},
    )
    stored = _frame(
        conn,
        "SELECT DISTINCT measure_id, period, lineage FROM indicator_value WHERE initiative_id = :ini",
        {"ini": initiative_id},
    )
    return counted, stored


def indicators_digest(initiative_id: str, *, engine: Engine) -> str | None:
    """The definitions' digest the stored indicators were computed with."""
    with Session(engine) as session:
        row = session.get(InitiativeRow, initiative_id)
        return row.indicators_digest if row is not None else None


def set_indicators_digest(initiative_id: str, digest: str, *, engine: Engine) -> None:
    with Session(engine) as session:
        row = session.get(InitiativeRow, initiative_id)
        if row is not None:
            row.indicators_digest = digest
            session.add(row)
            session.commit()


def stale_slices(initiative_id: str, *, engine: Engine) -> list[tuple[str, str]]:
    """(measure, period) slices whose indicators do not reflect the submissions that count.

    Derived, not bookkept: a slice is stale when the set of accepted submissions behind its
    observations differs from the lineage its stored indicators carry — after a new file, a
    supersession, or for a slice whose last submission stopped counting.
    """
    with engine.connect() as conn:
        counted, stored = _slice_lineage(conn, initiative_id)
    now = (
        counted.group_by("measure_id", "period").agg(
            pl.col("submission_id").cast(pl.Int64).unique().sort().alias("ids")
        )
        if not counted.is_empty()
        else pl.DataFrame(
            schema={"measure_id": pl.Utf8, "period": pl.Utf8, "ids": pl.List(pl.Int64)}
        )
    )
    before = (
        stored.with_columns(pl.col("lineage").str.split(",").cast(pl.List(pl.Int64)))
        .explode("lineage")
        .group_by("measure_id", "period")
        .agg(pl.col("lineage").drop_nulls().unique().sort().alias("ids_stored"))
        if not stored.is_empty()
        else pl.DataFrame(
            schema={"measure_id": pl.Utf8, "period": pl.Utf8, "ids_stored": pl.List(pl.Int64)}
        )
    )
    joined = now.join(before, on=["measure_id", "period"], how="full", coalesce=True)
    stale = joined.filter(pl.col("ids").ne_missing(pl.col("ids_stored")))
    return sorted(stale.select("measure_id", "period").iter_rows())


def all_slices(initiative_id: str, *, engine: Engine) -> list[tuple[str, str]]:
    """Every (measure, period) slice that has observations or indicators: a full rebuild."""
    with engine.connect() as conn:
        counted, stored = _slice_lineage(conn, initiative_id)
    keys = {
        *counted.select("measure_id", "period").iter_rows(),
        *stored.select("measure_id", "period").iter_rows(),
    }
    return sorted(keys)


def slice_observations(
    initiative_id: str, slices: list[tuple[str, str]], *, engine: Engine
) -> pl.DataFrame:
    """The observations that count, for the given (measure, period) slices."""
    if not slices:
        return pl.DataFrame(schema={c: pl.Utf8 for c in OBSERVATION_COLUMNS})
    wanted = pl.DataFrame(slices, schema=["measure_id", "period"], orient="row")
    measures = sorted({m for m, _ in slices})
    with engine.connect() as conn:
        frame = _frame(
            conn,
            f"SELECT {', '.join('o.' + c for c in OBSERVATION_COLUMNS)} FROM observation o "
            "JOIN submission s ON s.id = o.submission_id "
            "WHERE s.initiative_id = :ini AND s.status = 'accepted' AND o.measure_id IN ("
            + ", ".join(f":m{i}" for i in range(len(measures)))
            + ")",
            {"ini": initiative_id} | {f"m{i}": m for i, m in enumerate(measures)},
        )
    if frame.is_empty():
        return frame
    return frame.join(wanted, on=["measure_id", "period"], how="semi")


def replace_indicators(
    initiative_id: str, slices: list[tuple[str, str]], indicators: pl.DataFrame, *, engine: Engine
) -> int:
    """Replace the stored indicators of the given slices, in one transaction."""
    rows = indicators.select(INDICATOR_COLUMNS).with_columns(
        pl.lit(initiative_id).alias("initiative_id"), pl.lit(utcnow()).alias("computed_at")
    )
    with engine.begin() as conn:
        for measure_id, period in slices:
            conn.execute(
                text(
                    "DELETE FROM indicator_value WHERE initiative_id = :ini AND measure_id = :m AND period = :p"
                ),
                {"ini": initiative_id, "m": measure_id, "p": period},
            )
        if rows.height:
            conn.execute(IndicatorValue.__table__.insert(), rows.to_dicts())  # type: ignore[attr-defined]
    return rows.height


def read_indicators(
    initiative_id: str,
    *,
    engine: Engine,
    measure_id: str | None = None,
    geo_code: str | None = None,
    period: str | None = None,
) -> pl.DataFrame:
    """Stored indicator cells (suppressed ones included, flagged): mask before showing."""
    where = ["initiative_id = :ini"]
    params: dict[str, Any] = {"ini": initiative_id}
    for name, value in (("measure_id", measure_id), ("geo_code", geo_code), ("period", period)):
        if value is not None:
            where.append(f"{name} = :{name}")
            params[name] = value
    with engine.connect() as conn:
        frame = _frame(
            conn,
            f"SELECT {', '.join(INDICATOR_COLUMNS)} FROM indicator_value WHERE {' AND '.join(where)} "
            "ORDER BY measure_id, period, geo_code, disaggregation",
            params,
        )
    if frame.is_empty():
        return pl.DataFrame(schema=INDICATOR_SCHEMA)
    return frame.cast(INDICATOR_SCHEMA)  # type: ignore[arg-type]


def reported_cells(initiative_id: str, *, engine: Engine) -> pl.DataFrame:
    """(partner_id, measure_id, period) that accepted submissions cover: who reported what."""
    with engine.connect() as conn:
        frame = _frame(
            conn,
            "SELECT DISTINCT o.partner_id, o.measure_id, o.period FROM observation o "
            "JOIN submission s ON s.id = o.submission_id "
            "WHERE s.initiative_id = :ini AND s.status = 'accepted'",
            {"ini": initiative_id},
        )
    return (
        frame
        if not frame.is_empty()
        else pl.DataFrame(schema={"partner_id": pl.Utf8, "measure_id": pl.Utf8, "period": pl.Utf8})
    )

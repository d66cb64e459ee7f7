"""Every table the pipeline stores, as SQLModel classes: one place to read the schema.

The schema itself is owned by the migrations (``ci_pipeline/store/migrations``); a test checks
that the migrated database and these classes agree.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ci_pipeline.clock import utcnow


class Status(StrEnum):
    """What became of a submission. ``received`` is the only one that is not a verdict: the
    bytes are stored and an ingest must still decide (the reconciler finds any left)."""

    received = "received"
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


class SubmissionOutcome(SQLModel):
    """What became of one file, as its partner is told: the fields a receipt shows, declared
    once. :class:`SubmissionFields` adds the rest of the record; the intake's ``Receipt`` adds
    the row's id and what is not stored (the first problems, the warnings)."""

    status: str = Field(index=True)
    partner_id: str = Field(index=True)
    period: str = Field(index=True)
    file_name: str
    rows_total: int = 0
    rows_accepted: int = 0
    issues: int = 0
    message: str | None = None
    report_path: str | None = None
    duplicate_of: int | None = Field(default=None, foreign_key="submission.id")
    supersedes: int | None = Field(default=None, foreign_key="submission.id")
    rows_added: int | None = None
    rows_removed: int | None = None
    rows_changed: int | None = None


class SubmissionFields(SubmissionOutcome):
    """A submission's record, declared once: what became of one file from one partner for one
    period. The table (:class:`Submission`) stores it; the intake API's schema is its public
    fields. (Column order is the migrations', not this class's.)"""

    id: int | None = Field(default=None, primary_key=True)
    initiative_id: str = Field(foreign_key="initiative.id")
    content_hash: str = Field(index=True)
    file_format: str
    encoding: str | None = None
    received_at: datetime
    validated_at: datetime | None = None
    rows_rejected: int = 0
    archive_path: str | None = None
    superseded_by: int | None = Field(default=None, foreign_key="submission.id")
    size_bytes: int | None = None
    # Where the bytes are when they are not in ``received_file`` (an fsspec URL).
    content_url: str | None = None
    # What the submitter declared for this file alone (JSON: {"encoding": ..., ...}), kept
    # with the received record so whichever worker ingests it reads it the same way.
    options: str | None = None
    # When an ingest (or the reconciler, queueing one) last took this received submission:
    # another is started only once this is older than the lease.
    claimed_at: datetime | None = None


#: A submission's fields a partner is never shown: the server's paths, and the initiative (one
#: per installation). The others are its public fields (the intake API's schema).
SUBMISSION_INTERNAL = (
    "initiative_id",
    "report_path",
    "archive_path",
    "options",
    "claimed_at",
    "content_url",
)


class Submission(SubmissionFields, table=True):
    """One file from one partner for one period, whatever became of it (the fields:
    :class:`SubmissionFields`)."""

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


class ReceivedFile(SQLModel, table=True):
    """A received file's bytes, content-addressed: stored before the receipt is answered, so
    any worker, on any machine, can ingest it from the database alone."""

    __tablename__ = "received_file"
    content_hash: str = Field(primary_key=True)
    size_bytes: int
    content: bytes = Field(sa_type=LargeBinary)
    stored_at: datetime = Field(default_factory=utcnow)


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


class SubmissionSlice(SQLModel, table=True):
    """The (measure, period) slices a submission's observations fall in, written with them: which
    slices are stale is worked out from these (a few rows a submission), not by reading every
    observation, so a run costs what changed, not the history."""

    __tablename__ = "submission_slice"
    __table_args__ = (Index("submission_slice_slice", "measure_id", "period"),)
    submission_id: int = Field(foreign_key="submission.id", primary_key=True)
    measure_id: str = Field(primary_key=True)
    period: str = Field(primary_key=True)


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


class IndicatorSlice(SQLModel, table=True):
    """A stored indicator slice's lineage (the submissions behind its cells, comma-separated)
    and when it was computed, written with its cells: what a run compares with the submissions
    that count, without reading every cell."""

    __tablename__ = "indicator_slice"
    initiative_id: str = Field(primary_key=True)
    measure_id: str = Field(primary_key=True)
    period: str = Field(primary_key=True)
    lineage: str = ""
    computed_at: datetime = Field(default_factory=utcnow, index=True)


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Alert(SQLModel, table=True):
    """One alert per (measure, geography, breakdown, period, kind[, partner]): never duplicated.
    A regression episode keeps the key of its first finding (:mod:`ci_pipeline.alert.episodes`)."""

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

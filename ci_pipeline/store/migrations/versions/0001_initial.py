"""The schema of the last release before migrations (its tables were made by ``create_all``).

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: SQLModel's UTCDateTime: aware datetimes (TIMESTAMP WITH TIME ZONE on PostgreSQL).
Timestamp = sa.DateTime(timezone=True)


def _missing(table: str) -> bool:
    """Whether ``table`` is still to be made: a database from before migrations has the tables
    its release made, and gets only the ones added since (``api_token`` came late)."""
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("initiative"):
        op.create_table(
            "initiative",
            sa.Column("id", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("version", sa.String(), nullable=False),
            sa.Column("digest", sa.String(), nullable=False),
            sa.Column("loaded_at", Timestamp, nullable=False),
            sa.Column("indicators_digest", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    if _missing("geography"):
        op.create_table(
            "geography",
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("code", sa.String(), nullable=False),
            sa.Column("level", sa.String(), nullable=False),
            sa.Column("parent", sa.String(), nullable=True),
            sa.Column("name_en", sa.String(), nullable=False),
            sa.Column("name_he", sa.String(), nullable=True),
            sa.Column("name_ar", sa.String(), nullable=True),
            sa.ForeignKeyConstraint(["initiative_id"], ["initiative.id"]),
            sa.PrimaryKeyConstraint("initiative_id", "code"),
        )
    if _missing("partner"):
        op.create_table(
            "partner",
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("id", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("sector", sa.String(), nullable=False),
            sa.Column("localities", sa.String(), nullable=False),
            sa.Column("measures", sa.String(), nullable=False),
            sa.Column("submits_every", sa.String(), nullable=False),
            sa.Column("contact_email", sa.String(), nullable=False),
            sa.ForeignKeyConstraint(["initiative_id"], ["initiative.id"]),
            sa.PrimaryKeyConstraint("initiative_id", "id"),
        )
    if _missing("measure"):
        op.create_table(
            "measure",
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("id", sa.String(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("title", sa.String(), nullable=False),
            sa.Column("unit", sa.String(), nullable=False),
            sa.Column("periodicity", sa.String(), nullable=False),
            sa.Column("definition", sa.String(), nullable=False),
            sa.Column("loaded_at", Timestamp, nullable=False),
            sa.ForeignKeyConstraint(["initiative_id"], ["initiative.id"]),
            sa.PrimaryKeyConstraint("initiative_id", "id", "version"),
        )
    if _missing("submission"):
        op.create_table(
            "submission",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("partner_id", sa.String(), nullable=False),
            sa.Column("period", sa.String(), nullable=False),
            sa.Column("content_hash", sa.String(), nullable=False),
            sa.Column("file_name", sa.String(), nullable=False),
            sa.Column("file_format", sa.String(), nullable=False),
            sa.Column("encoding", sa.String(), nullable=True),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("received_at", Timestamp, nullable=False),
            sa.Column("validated_at", Timestamp, nullable=True),
            sa.Column("rows_total", sa.Integer(), nullable=False),
            sa.Column("rows_accepted", sa.Integer(), nullable=False),
            sa.Column("rows_rejected", sa.Integer(), nullable=False),
            sa.Column("issues", sa.Integer(), nullable=False),
            sa.Column("report_path", sa.String(), nullable=True),
            sa.Column("archive_path", sa.String(), nullable=True),
            sa.Column("message", sa.String(), nullable=True),
            sa.Column("supersedes", sa.Integer(), nullable=True),
            sa.Column("superseded_by", sa.Integer(), nullable=True),
            sa.Column("duplicate_of", sa.Integer(), nullable=True),
            sa.Column("rows_added", sa.Integer(), nullable=True),
            sa.Column("rows_removed", sa.Integer(), nullable=True),
            sa.Column("rows_changed", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["initiative_id"], ["initiative.id"]),
            sa.ForeignKeyConstraint(["supersedes"], ["submission.id"]),
            sa.ForeignKeyConstraint(["superseded_by"], ["submission.id"]),
            sa.ForeignKeyConstraint(["duplicate_of"], ["submission.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        for column in ("partner_id", "period", "content_hash", "status"):
            op.create_index(f"ix_submission_{column}", "submission", [column])
        # At most one accepted submission per partner and period (a partial unique index).
        accepted = sa.text("status = 'accepted'")
        op.create_index(
            "one_accepted_per_partner_period",
            "submission",
            ["initiative_id", "partner_id", "period"],
            unique=True,
            sqlite_where=accepted,
            postgresql_where=accepted,
        )
    if _missing("observation"):
        op.create_table(
            "observation",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("submission_id", sa.Integer(), nullable=False),
            sa.Column("partner_id", sa.String(), nullable=False),
            sa.Column("measure_id", sa.String(), nullable=False),
            sa.Column("measure_version", sa.Integer(), nullable=False),
            sa.Column("geo_code", sa.String(), nullable=False),
            sa.Column("period", sa.String(), nullable=False),
            sa.Column("disaggregation", sa.String(), nullable=False),
            sa.Column("numerator", sa.Float(), nullable=True),
            sa.Column("denominator", sa.Float(), nullable=True),
            sa.Column("value", sa.Float(), nullable=True),
            sa.Column("source_row", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint(
                "submission_id",
                "measure_id",
                "geo_code",
                "period",
                "disaggregation",
                name="observation_key",
            ),
        )
        op.create_index("observation_slice", "observation", ["measure_id", "period"])
    if _missing("indicator_value"):
        op.create_table(
            "indicator_value",
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("measure_id", sa.String(), nullable=False),
            sa.Column("geo_code", sa.String(), nullable=False),
            sa.Column("period", sa.String(), nullable=False),
            sa.Column("disaggregation", sa.String(), nullable=False),
            sa.Column("value", sa.Float(), nullable=True),
            sa.Column("numerator", sa.Float(), nullable=True),
            sa.Column("denominator", sa.Float(), nullable=True),
            sa.Column("partners_reported", sa.Integer(), nullable=False),
            sa.Column("partners_expected", sa.Integer(), nullable=False),
            sa.Column("coverage", sa.Float(), nullable=True),
            sa.Column("suppressed", sa.Boolean(), nullable=False),
            sa.Column("suppression", sa.String(), nullable=True),
            sa.Column("lineage", sa.String(), nullable=False),
            sa.Column("computed_at", Timestamp, nullable=False),
            sa.PrimaryKeyConstraint(
                "initiative_id", "measure_id", "geo_code", "period", "disaggregation"
            ),
        )
    if _missing("alert"):
        op.create_table(
            "alert",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("measure_id", sa.String(), nullable=False),
            sa.Column("geo_code", sa.String(), nullable=False),
            sa.Column("disaggregation", sa.String(), nullable=False),
            sa.Column("period", sa.String(), nullable=False),
            sa.Column("subject", sa.String(), nullable=False),
            sa.Column("working_group", sa.String(), nullable=True),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("verified", sa.Boolean(), nullable=False),
            sa.Column("message", sa.String(), nullable=False),
            sa.Column("evidence", sa.String(), nullable=False),
            sa.Column("first_seen_at", Timestamp, nullable=False),
            sa.Column("last_seen_at", Timestamp, nullable=False),
            sa.Column("acknowledged_at", Timestamp, nullable=True),
            sa.Column("acknowledged_by", sa.String(), nullable=True),
            sa.Column("resolved_at", Timestamp, nullable=True),
            sa.Column("notifications", sa.Integer(), nullable=False),
            sa.Column("last_notified_at", Timestamp, nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint(
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
        op.create_index("ix_alert_measure_id", "alert", ["measure_id"])
        op.create_index("ix_alert_status", "alert", ["status"])
    if _missing("outbox"):
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("alert_id", sa.Integer(), nullable=False),
            sa.Column("channel", sa.String(), nullable=False),
            sa.Column("round", sa.Integer(), nullable=False),
            sa.Column("audience", sa.String(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", Timestamp, nullable=False),
            sa.Column("last_error", sa.String(), nullable=True),
            sa.Column("created_at", Timestamp, nullable=False),
            sa.Column("sent_at", Timestamp, nullable=True),
            sa.ForeignKeyConstraint(["alert_id"], ["alert.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("alert_id", "channel", "round", name="outbox_key"),
        )
        op.create_index("ix_outbox_status", "outbox", ["status"])
    if _missing("api_token"):
        op.create_table(
            "api_token",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("initiative_id", sa.String(), nullable=False),
            sa.Column("partner_id", sa.String(), nullable=False),
            sa.Column("token_hash", sa.String(), nullable=False),
            sa.Column("prefix", sa.String(), nullable=False),
            sa.Column("label", sa.String(), nullable=True),
            sa.Column("created_at", Timestamp, nullable=False),
            sa.Column("revoked_at", Timestamp, nullable=True),
            sa.Column("last_used_at", Timestamp, nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token_hash"),
        )
        op.create_index("ix_api_token_partner_id", "api_token", ["partner_id"])


def downgrade() -> None:
    # Dependants first; dropping a table drops its indexes.
    for table in (
        "api_token",
        "outbox",
        "alert",
        "indicator_value",
        "observation",
        "submission",
        "measure",
        "partner",
        "geography",
        "initiative",
    ):
        op.drop_table(table)

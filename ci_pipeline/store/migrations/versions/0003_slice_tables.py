"""Slice tables: the (measure, period) slices each submission's observations fall in, and each
stored indicator slice's lineage and computing time. A run works out which slices are stale
from these (rows per submission and per slice), not from every observation and cell, so its
cost follows what changed rather than the history. Both are filled from the rows already
stored, so an upgraded database finds exactly the slices stale that it found before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "submission_slice",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("submission_id", "measure_id", "period"),
    )
    op.create_index("submission_slice_slice", "submission_slice", ["measure_id", "period"])
    op.create_table(
        "indicator_slice",
        sa.Column("initiative_id", sa.String(), nullable=False),
        sa.Column("measure_id", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("lineage", sa.String(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("initiative_id", "measure_id", "period"),
    )
    op.create_index(
        op.f("ix_indicator_slice_computed_at"), "indicator_slice", ["computed_at"], unique=False
    )
    op.execute(
        "INSERT INTO submission_slice (submission_id, measure_id, period) "
        "SELECT DISTINCT submission_id, measure_id, period FROM observation"
    )
    # The cells' lineages joined: the stale-slice check splits and de-duplicates the ids.
    joined = (
        "string_agg(DISTINCT lineage, ',')"
        if op.get_bind().dialect.name == "postgresql"
        else "group_concat(DISTINCT lineage)"
    )
    op.execute(
        "INSERT INTO indicator_slice (initiative_id, measure_id, period, lineage, computed_at) "
        f"SELECT initiative_id, measure_id, period, {joined}, max(computed_at) "
        "FROM indicator_value GROUP BY initiative_id, measure_id, period"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_indicator_slice_computed_at"), table_name="indicator_slice")
    op.drop_table("indicator_slice")
    op.drop_index("submission_slice_slice", table_name="submission_slice")
    op.drop_table("submission_slice")

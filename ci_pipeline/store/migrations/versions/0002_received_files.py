"""Durable intake: a received file's bytes in the database, and the submission's ``received``
record (its size, what the submitter declared, and when an ingest last took it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "received_file",
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("content_hash"),
    )
    with op.batch_alter_table("submission") as batch:
        batch.add_column(sa.Column("size_bytes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("content_url", sa.String(), nullable=True))
        batch.add_column(sa.Column("options", sa.String(), nullable=True))
        batch.add_column(sa.Column("claimed_at", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("options")
        batch.drop_column("content_url")
        batch.drop_column("size_bytes")
    op.drop_table("received_file")

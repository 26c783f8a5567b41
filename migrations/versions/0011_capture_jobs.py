"""EPCIS capture jobs: one row per `POST /epcis/capture`, naming the operations its events became

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "capture_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("retry_key", sa.String(length=255), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("error_behaviour", sa.String(length=16), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("operations", JSON, nullable=False),
        sa.Column("refused", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "error_behaviour IN ('rollback', 'proceed')", name=op.f("ck_capture_jobs_error_behaviour")
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["api_credentials.id"],
            name=op.f("fk_capture_jobs_credential_id_api_credentials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_jobs")),
        sa.UniqueConstraint(
            "credential_id", "retry_key", name=op.f("uq_capture_jobs_credential_id_retry_key")
        ),
    )
    op.create_index(
        op.f("ix_capture_jobs_credential_id_created_at_id"),
        "capture_jobs",
        ["credential_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_capture_jobs_credential_id_created_at_id"), table_name="capture_jobs")
    op.drop_table("capture_jobs")

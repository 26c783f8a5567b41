"""EPCIS eventIDs stored by the indexer, and the fingerprint of the identifiers they were made with

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 10:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # empty at the upgrade: the indexer computes every event's ID at its next start (its
    # fingerprint is missing), and reads hash on the fly until then
    op.create_table(
        "epcis_event_ids",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tx_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("part", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "block_number", "tx_index", "log_index", "part", name=op.f("pk_epcis_event_ids")
        ),
    )
    op.create_index(op.f("ix_epcis_event_ids_event_id"), "epcis_event_ids", ["event_id"], unique=False)
    op.create_table(
        "epcis_id_scheme",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_id_scheme")),
    )


def downgrade() -> None:
    op.drop_table("epcis_id_scheme")
    op.drop_index(op.f("ix_epcis_event_ids_event_id"), table_name="epcis_event_ids")
    op.drop_table("epcis_event_ids")

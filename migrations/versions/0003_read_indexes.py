"""read side: keyset-pagination indexes on lots

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 21:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_lots_block_number_lot_id": ["block_number", "lot_id"],
    "ix_lots_site_block_number_lot_id": ["site", "block_number", "lot_id"],
    "ix_lots_site_status_block_number_lot_id": ["site", "status", "block_number", "lot_id"],
    "ix_lots_custodian_block_number_lot_id": ["custodian", "block_number", "lot_id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "lots", columns, unique=False)


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="lots")

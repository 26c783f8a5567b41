"""index: block times, so reads never ask the node what time a block was

`block_times` holds the header timestamp of every block with an indexed event. The indexer writes
it in the same transaction as the range's events and deletes it with them on a reorg. An index
made before this revision has its event blocks dated from the node's headers when the indexer
next starts (`Indexer._date_undated_blocks`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "block_times",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_block_times")),
    )
    op.create_index(op.f("ix_block_times_timestamp"), "block_times", ["timestamp"])


def downgrade() -> None:
    op.drop_index(op.f("ix_block_times_timestamp"), table_name="block_times")
    op.drop_table("block_times")

"""write path: transactions the chain lost are remembered, and conflicts hold the outbox

`outbox_transactions.lost_block` is the block a transaction was mined in, with success, before the
chain lost that block (a node restored from an older state, a reorg). If the chain refuses it
afterwards, the worker does not fail the operation: it records a `chain_conflicts` row and stops
sending until a person resolves it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("outbox_transactions") as batch:
        batch.add_column(sa.Column("lost_block", sa.BigInteger(), nullable=True))
    op.create_table(
        "chain_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("lost_block", sa.BigInteger(), nullable=False),
        sa.Column("error_name", sa.String(length=64), nullable=False),
        sa.Column("error_args", _json(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operations.id"], name=op.f("fk_chain_conflicts_operation_id_operations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_conflicts")),
    )
    op.create_index(op.f("ix_chain_conflicts_operation_id"), "chain_conflicts", ["operation_id"])
    op.create_index(op.f("ix_chain_conflicts_resolved_at"), "chain_conflicts", ["resolved_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_chain_conflicts_resolved_at"), table_name="chain_conflicts")
    op.drop_index(op.f("ix_chain_conflicts_operation_id"), table_name="chain_conflicts")
    op.drop_table("chain_conflicts")
    with op.batch_alter_table("outbox_transactions") as batch:
        batch.drop_column("lost_block")

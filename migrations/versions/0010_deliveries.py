"""outbound deliveries: destinations with their cursors, the delivery log, the index's rollbacks

`delivery_destinations` holds every destination (a buyer's webhook subscription) with its durable
cursor in chain order and its retry state; `delivery_log` what each destination was sent and
acknowledged, dead-lettered or had retracted, by message id; `index_rollbacks` one row per reorg
the indexer rolled back, written in the rollback's transaction (`provenance.index.store.rollback`),
which the deliverer answers with retractions (docs/deliveries.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_destinations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("credential_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("filter", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("deleted_at", sa.Float(precision=53), nullable=True),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("cursor_block", sa.BigInteger(), nullable=False),
        sa.Column("cursor_tx_index", sa.BigInteger(), nullable=False),
        sa.Column("cursor_log_index", sa.BigInteger(), nullable=False),
        sa.Column("rollbacks_seen", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.Float(precision=53), nullable=True),
        sa.Column("next_attempt_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_count", sa.BigInteger(), nullable=False),
        sa.Column("last_delivered_at", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_destinations")),
    )
    op.create_index(op.f("ix_delivery_destinations_active"), "delivery_destinations", ["active"])
    op.create_index(
        op.f("ix_delivery_destinations_owner_active"), "delivery_destinations", ["owner", "active"]
    )
    op.create_table(
        "index_rollbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ancestor_block", sa.BigInteger(), nullable=False),
        sa.Column("ancestor_hash", sa.String(length=66), nullable=False),
        sa.Column("from_block", sa.BigInteger(), nullable=False),
        sa.Column("events_undone", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_rollbacks")),
    )
    op.create_table(
        "delivery_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=48), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("event_name", sa.String(length=32), nullable=False),
        sa.Column("lot_id", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.Float(precision=53), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('delivered', 'retracting', 'retracted', 'dead')", name=op.f("ck_delivery_log_state")
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["delivery_destinations.id"],
            name=op.f("fk_delivery_log_destination_id_delivery_destinations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_log")),
        sa.UniqueConstraint(
            "destination_id", "message_id", name=op.f("uq_delivery_log_destination_id_message_id")
        ),
    )
    op.create_index(
        op.f("ix_delivery_log_destination_id_block_number"),
        "delivery_log",
        ["destination_id", "block_number"],
    )
    op.create_index(op.f("ix_delivery_log_state_destination_id"), "delivery_log", ["state", "destination_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_log_state_destination_id"), table_name="delivery_log")
    op.drop_index(op.f("ix_delivery_log_destination_id_block_number"), table_name="delivery_log")
    op.drop_table("delivery_log")
    op.drop_table("index_rollbacks")
    op.drop_index(op.f("ix_delivery_destinations_owner_active"), table_name="delivery_destinations")
    op.drop_index(op.f("ix_delivery_destinations_active"), table_name="delivery_destinations")
    op.drop_table("delivery_destinations")

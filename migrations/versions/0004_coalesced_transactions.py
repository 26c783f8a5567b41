"""write path: one chain transaction may carry several operations (coalesced registrations)

Rows of one coalesced transaction share sender, nonce, bytes and hash and differ in `share`; the
unique key becomes (sender, nonce, share), so two different transactions still cannot hold one
nonce (both would have share 0). `solo` marks a row whose coalesced transaction failed on chain:
it is retried by itself.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 23:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_transactions") as batch:
        batch.add_column(sa.Column("share", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("solo", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.drop_constraint("uq_outbox_transactions_sender_nonce", type_="unique")
        batch.create_unique_constraint(
            "uq_outbox_transactions_sender_nonce_share", ["sender", "nonce", "share"]
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_transactions") as batch:
        batch.drop_constraint("uq_outbox_transactions_sender_nonce_share", type_="unique")
        batch.create_unique_constraint("uq_outbox_transactions_sender_nonce", ["sender", "nonce"])
        batch.drop_column("solo")
        batch.drop_column("share")

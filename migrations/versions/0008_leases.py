"""write path: leases, so that replicas elect one indexer and one outbox worker

`leases` holds, for each role that must have one holder at a time, the holder, its fencing token
(one more with every new holder) and when its lease ends, in the database's clock. Every commit
of a leader checks its token and the lease's end in the commit's own transaction
(`provenance.index.leases`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.Float(precision=53), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")

"""write path: an operation the node will not take says so

`operations.stuck_reason` is what the node answered when the worker last tried to prepare or send
the operation and could not (a malformed request, a sender without ether); `stuck_since` when it
began. Both are cleared once its transactions are sent. `/health` and the operation report them,
so an operation never waits in silence.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("stuck_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("stuck_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_operations_stuck_since"), "operations", ["stuck_since"])


def downgrade() -> None:
    op.drop_index(op.f("ix_operations_stuck_since"), table_name="operations")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("stuck_since")
        batch.drop_column("stuck_reason")

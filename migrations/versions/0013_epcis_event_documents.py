"""EPCIS events stored whole beside their eventIDs, and the fingerprint of the mapping that made them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # the stored eventIDs go with their fingerprint: the indexer stores every event anew, with its
    # document, at its next start (its fingerprint is missing), and reads hash on the fly until then
    op.execute("DELETE FROM epcis_id_scheme")
    op.execute("DELETE FROM epcis_event_ids")
    # emptied first, so the columns need no default (batch: SQLite adds a NOT NULL column only so)
    with op.batch_alter_table("epcis_event_ids") as batch:
        batch.add_column(sa.Column("document", sa.Text(), nullable=False))
    with op.batch_alter_table("epcis_id_scheme") as batch:
        batch.add_column(sa.Column("mapping", sa.String(length=64), nullable=False))


def downgrade() -> None:
    op.execute("DELETE FROM epcis_id_scheme")
    op.execute("DELETE FROM epcis_event_ids")
    with op.batch_alter_table("epcis_id_scheme") as batch:
        batch.drop_column("mapping")
    with op.batch_alter_table("epcis_event_ids") as batch:
        batch.drop_column("document")

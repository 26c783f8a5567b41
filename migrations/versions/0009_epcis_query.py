"""EPCIS query interface: record times of indexed blocks, named queries

`record_times` holds, for every block in `block_times`, when it was stored (milliseconds since
1970, the database's clock): the `recordTime` of its events. A trigger on `block_times` writes it
in the same transaction as the indexer's own rows (insert or replace), so the indexer carries no
code for it. Blocks stored before this revision are recorded at the time of the upgrade.
`epcis_named_queries` holds the named queries of `POST /epcis/queries`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
POSTGRES_NOW_MS = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
POSTGRES_FUNCTION = (
    "CREATE FUNCTION record_block_time() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO record_times (number, recorded_ms) VALUES "
    "(NEW.number, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)) ON CONFLICT (number) DO UPDATE SET recorded_ms = EXCLUDED.recorded_ms; RETURN NEW; END $$"
)
POSTGRES_TRIGGER = (
    "CREATE TRIGGER record_block_time AFTER INSERT ON block_times "
    "FOR EACH ROW EXECUTE FUNCTION record_block_time()"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER record_block_time AFTER INSERT ON block_times BEGIN "
    "INSERT OR REPLACE INTO record_times (number, recorded_ms) VALUES "
    "(NEW.number, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)); END"
)
BACKFILL = "INSERT INTO record_times (number, recorded_ms) SELECT number, {now} FROM block_times"


def upgrade() -> None:
    op.create_table(
        "record_times",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_record_times")),
    )
    op.create_table(
        "epcis_named_queries",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("query", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_by", sa.String(length=42), nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_epcis_named_queries")),
    )
    if _postgres():
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
        op.execute(BACKFILL.format(now=POSTGRES_NOW_MS))
    else:
        op.execute(SQLITE_TRIGGER)
        op.execute(BACKFILL.format(now=SQLITE_NOW_MS))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS record_block_time" + (" ON block_times" if _postgres() else ""))
    if _postgres():
        op.execute("DROP FUNCTION IF EXISTS record_block_time()")
    op.drop_table("epcis_named_queries")
    op.drop_table("record_times")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"

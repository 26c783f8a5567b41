"""`provenance db move`: one database's content into another (SQLite to PostgreSQL, or a new server).

The derived tables (the mirror of the chain) could be rebuilt from the chain, but the database also
holds what the chain does not: API credentials, the outbox's acknowledged operations and their
signed transactions, idempotency keys, named queries, subscriptions, delivery cursors. Pointing
`PROVENANCE_DATABASE_URL` at an empty database would start over without them (a new admin token,
every issued token refused, acknowledged writes forgotten). A move copies every table, in
foreign-key order, from one consistent read of the source into one transaction on the target:
the target holds all of it or none of it.

The target must be empty (newly created, or only migrated); the source must be at the code's
newest schema and quiet: no live lease of an indexer or outbox worker (`serve` running) is
accepted, since what they wrote after the read would stay behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, false, func, insert, select, text
from sqlalchemy.engine import make_url

from provenance.errors import IndexStateError
from provenance.index.db import check_current, describe, make_engine, normalize_url, upgrade
from provenance.index.leases import read_leases
from provenance.index.models import Base

BATCH_ROWS = 5_000


@dataclass(frozen=True)
class Moved:
    source: str
    target: str
    rows: dict[str, int]
    """Rows copied per table, in the order copied."""

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def move_database(
    source_url: str, target_url: str, *, progress: Callable[[str, int], None] | None = None
) -> Moved:
    """Copies the database at `source_url` into the empty one at `target_url` (migrated first).

    IndexStateError when the two are one database, the source is not at the newest schema or is
    in use by a leader, or the target holds data already."""
    if _same_database(source_url, target_url):
        raise IndexStateError("--to names the database the index is in already")
    source = make_engine(source_url)
    try:
        check_current(source)
        live = [state for state in read_leases(source) if state.remaining_s > 0]
        if live:
            holders = ", ".join(f"{state.name} ({state.holder})" for state in live)
            raise IndexStateError(
                f"the database {describe(source)} is in use: {holders} holds a lease; stop every "
                "`provenance serve` on it first"
            )
        upgrade(target_url)
        target = make_engine(target_url)
        try:
            with source.connect() as reading, target.begin() as writing:
                _refuse_data(writing, describe(target))
                rows = _copy(reading, writing, progress)
                if writing.dialect.name == "postgresql":
                    _advance_sequences(writing)
                _check_counts(writing, rows)
            return Moved(describe(source), describe(target), rows)
        finally:
            target.dispose()
    finally:
        source.dispose()


def _same_database(first: str, second: str) -> bool:
    one, other = make_url(normalize_url(first)), make_url(normalize_url(second))
    return (one.get_backend_name(), one.host, one.port, one.database) == (
        other.get_backend_name(),
        other.host,
        other.port,
        other.database,
    )


def _refuse_data(connection: Connection, where: str) -> None:
    for table in Base.metadata.sorted_tables:
        if connection.execute(select(func.count()).select_from(table)).scalar_one():
            raise IndexStateError(
                f"the target database {where} already holds data (table {table.name}); move into an "
                "empty database"
            )


def _copy(
    reading: Connection, writing: Connection, progress: Callable[[str, int], None] | None
) -> dict[str, int]:
    if reading.dialect.name == "postgresql":  # one snapshot for every table
        reading.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    rows: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        # the target was empty: rows there now were made by a trigger on a table copied before
        # (record_times, from block_times), with the time of the move; the source's rows replace them
        writing.execute(table.delete())
        copied = 0
        result = reading.execution_options(yield_per=BATCH_ROWS).execute(
            select(table).order_by(*table.primary_key.columns)
        )
        for batch in result.mappings().partitions(BATCH_ROWS):
            writing.execute(insert(table), [dict(row) for row in batch])
            copied += len(batch)
            if progress is not None:
                progress(table.name, copied)
        rows[table.name] = copied
    return rows


def _advance_sequences(connection: Connection) -> None:
    """Ids were copied as they were: each serial column's sequence must start after the largest."""
    for table in Base.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                largest = select(func.max(column)).scalar_subquery()
                connection.execute(
                    select(
                        func.setval(
                            func.pg_get_serial_sequence(table.name, column.name),
                            func.coalesce(largest, 0) + 1,
                            false(),
                        )
                    )
                )


def _check_counts(connection: Connection, rows: dict[str, int]) -> None:
    for table in Base.metadata.sorted_tables:
        found = connection.execute(select(func.count()).select_from(table)).scalar_one()
        if found != rows[table.name]:
            raise IndexStateError(f"table {table.name}: {found} rows arrived of {rows[table.name]} read")

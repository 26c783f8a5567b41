"""The indexer's SQL: read what a range needs, write a range, roll back past a reorg.

Every function takes an open connection inside the caller's transaction; the caller decides what
is atomic (one block range, or one rollback). Writes are bulk statements (executemany, which
SQLAlchemy turns into multi-row INSERTs where the driver benefits), never a round trip per event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from provenance.domain.events import DecodedEvent
from provenance.errors import IndexStateError
from provenance.index.models import Base
from provenance.index.projection import LOT_STATE_COLUMNS, Projection, Row, replay_lot
from provenance.index.tables import DELETE_ORDER, INSERT_ORDER

IN_CHUNK = 500
"""Ids per `IN (...)` list: far below SQLite's bound-parameter limit."""

DEVICE_REVOCATION_COLUMNS = (
    "active",
    "revoked_by",
    "revoked_block_number",
    "revoked_block_hash",
    "revoked_tx_hash",
    "revoked_tx_index",
    "revoked_log_index",
)


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    items = sorted(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


@dataclass(frozen=True)
class Cursor:
    number: int
    hash: str


# ---------------------------------------------------------------------- bookkeeping


def read_mirror(connection: Connection) -> Row | None:
    row = connection.execute(select(table("chain_mirror"))).mappings().first()
    return dict(row) if row is not None else None


def write_mirror(connection: Connection, mirror: Row) -> None:
    connection.execute(insert(table("chain_mirror")), [{"id": 1, **mirror}])


def read_cursor(connection: Connection) -> Cursor | None:
    cursor = table("index_cursor")
    row = connection.execute(select(cursor.c.block_number, cursor.c.block_hash)).first()
    return Cursor(row[0], row[1]) if row is not None else None


def stored_block_at_or_below(connection: Connection, number: int) -> Cursor | None:
    blocks = table("blocks")
    row = connection.execute(
        select(blocks.c.number, blocks.c.hash)
        .where(blocks.c.number <= number)
        .order_by(blocks.c.number.desc())
        .limit(1)
    ).first()
    return Cursor(row[0], row[1]) if row is not None else None


def stored_blocks_at_or_below(connection: Connection, number: int) -> list[Cursor]:
    """Stored block hashes, newest first."""
    blocks = table("blocks")
    rows = connection.execute(
        select(blocks.c.number, blocks.c.hash)
        .where(blocks.c.number <= number)
        .order_by(blocks.c.number.desc())
    )
    return [Cursor(row[0], row[1]) for row in rows]


def move_cursor(connection: Connection, before: Cursor | None, after: Cursor) -> None:
    """Moves the cursor from `before` to `after`; fails if someone else moved it meanwhile."""
    cursor = table("index_cursor")
    if before is None:
        try:
            connection.execute(
                insert(cursor), [{"id": 1, "block_number": after.number, "block_hash": after.hash}]
            )
        except IntegrityError:
            raise IndexStateError(
                "another indexer started writing to this database; run one indexer per database"
            ) from None
        return
    result = connection.execute(
        update(cursor)
        .where(cursor.c.id == 1, cursor.c.block_number == before.number, cursor.c.block_hash == before.hash)
        .values(block_number=after.number, block_hash=after.hash)
    )
    if result.rowcount != 1:
        raise IndexStateError("another indexer moved this database's cursor; run one indexer per database")


# ---------------------------------------------------------------------- forward


def load_rows(connection: Connection, name: str, key: str, values: Iterable[str]) -> dict[str, Row]:
    source = table(name)
    found: dict[str, Row] = {}
    for chunk in _chunks(values):
        for row in connection.execute(select(source).where(source.c[key].in_(chunk))).mappings():
            found[row[key]] = dict(row)
    return found


def existing_events(connection: Connection, from_block: int, to_block: int) -> dict[tuple[str, int], str]:
    """Events already indexed in a block range: (tx_hash, log_index) -> block hash."""
    events = table("events")
    rows = connection.execute(
        select(events.c.tx_hash, events.c.log_index, events.c.block_hash).where(
            events.c.block_number >= from_block, events.c.block_number <= to_block
        )
    )
    return {(row[0], row[1]): row[2] for row in rows}


def write_range(
    connection: Connection,
    projection: Projection,
    blocks: dict[int, str],
    before: Cursor | None,
    after: Cursor,
    keep_blocks_above: int,
    times: dict[int, int],
) -> None:
    """Writes one range's rows, its block hashes, the times of its event blocks and the cursor (the
    caller commits them at once).

    The cursor moves first: on PostgreSQL its row lock makes a second writer wait there, and then
    fail on the moved cursor, before it writes anything."""
    move_cursor(connection, before, after)
    rows = dict(projection.rows)
    rows["lots"] = projection.lot_rows(projection.new_lots)
    rows["devices"] = projection.device_rows(projection.new_devices)
    for name in INSERT_ORDER:
        batch = rows.get(name)
        if batch:
            bulk_insert(connection, table(name), batch)
    if projection.changed_lots:
        lots = table("lots")
        connection.execute(
            update(lots)
            .where(lots.c.lot_id == bindparam("key"))
            .values({column: bindparam(column) for column in LOT_STATE_COLUMNS}),
            [
                {"key": lot["lot_id"], **{column: lot[column] for column in LOT_STATE_COLUMNS}}
                for lot in projection.lot_rows(projection.changed_lots)
            ],
        )
    if projection.changed_devices:
        devices = table("devices")
        connection.execute(
            update(devices)
            .where(devices.c.device == bindparam("key"))
            .values({column: bindparam(column) for column in DEVICE_REVOCATION_COLUMNS}),
            [
                {"key": device["device"], **{column: device[column] for column in DEVICE_REVOCATION_COLUMNS}}
                for device in projection.device_rows(projection.changed_devices)
            ],
        )
    write_blocks(connection, blocks, keep_blocks_above)
    write_block_times(connection, times)


def bulk_insert(connection: Connection, target: Table, rows: list[Row]) -> None:
    """INSERTs many rows. On SQLite, straight into the driver's executemany: SQLAlchemy's per-row
    parameter processing cost more than SQLite's own work. JSON columns are serialized as
    SQLAlchemy's JSON type would, so reads are the same either way."""
    if connection.dialect.name != "sqlite":
        connection.execute(insert(target), rows)
        return
    columns = [column.name for column in target.columns]
    as_json = {column.name for column in target.columns if isinstance(column.type, JSON)}
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {target.name} ({names}) VALUES ({marks})"  # noqa: S608 - our own models' names
    connection.exec_driver_sql(
        statement,
        [
            tuple(json.dumps(row[column]) if column in as_json else row[column] for column in columns)
            for row in rows
        ],
    )


def write_blocks(connection: Connection, blocks: dict[int, str], keep_above: int) -> None:
    """Stores a range's block hashes (replacing any of the same heights) and prunes those at or
    below `keep_above`."""
    table_ = table("blocks")
    if blocks:
        connection.execute(delete(table_).where(table_.c.number.between(min(blocks), max(blocks))))
        bulk_insert(connection, table_, [{"number": n, "hash": h} for n, h in sorted(blocks.items())])
    connection.execute(delete(table_).where(table_.c.number <= keep_above))


def write_block_times(connection: Connection, times: dict[int, int]) -> None:
    """Stores block timestamps, replacing any stored for the same blocks."""
    if not times:
        return
    table_ = table("block_times")
    for chunk in _chunks(times):
        connection.execute(delete(table_).where(table_.c.number.in_(chunk)))
    bulk_insert(connection, table_, [{"number": n, "timestamp": t} for n, t in sorted(times.items())])


def undated_event_blocks(connection: Connection) -> dict[int, str]:
    """Blocks with indexed events but no stored time (an index made before block times were kept):
    number -> the hash their events name."""
    events, times = table("events"), table("block_times")
    rows = connection.execute(
        select(events.c.block_number, events.c.block_hash)
        .distinct()
        .outerjoin(times, times.c.number == events.c.block_number)
        .where(times.c.number.is_(None))
    )
    return {row[0]: row[1] for row in rows}


# ---------------------------------------------------------------------- rollback


@dataclass(frozen=True)
class Rollback:
    events: int
    lots_recomputed: int


def rollback(connection: Connection, ancestor: Cursor, before: Cursor, registry: str) -> Rollback:
    """Deletes everything derived from blocks above `ancestor` and recomputes the current state
    of the lots and devices those blocks touched from the events that remain."""
    events = table("events")
    touched = {
        row[0]
        for row in connection.execute(
            select(events.c.lot_id)
            .distinct()
            .where(events.c.block_number > ancestor.number, events.c.lot_id.is_not(None))
        )
    }
    move_cursor(connection, before, ancestor)
    removed = 0
    for name in DELETE_ORDER:
        source = table(name)
        deleted = connection.execute(delete(source).where(source.c.block_number > ancestor.number))
        if name == "events":
            removed = deleted.rowcount
    devices = table("devices")
    connection.execute(
        update(devices)
        .where(devices.c.revoked_block_number > ancestor.number)
        .values(
            active=True,
            revoked_by=None,
            revoked_block_number=None,
            revoked_block_hash=None,
            revoked_tx_hash=None,
            revoked_tx_index=None,
            revoked_log_index=None,
        )
    )
    lots = load_rows(connection, "lots", "lot_id", touched)
    history = lot_events(connection, lots, registry)
    for lot_id, lot in lots.items():
        replay_lot(lot, history.get(lot_id, ()))
    if lots:
        table_ = table("lots")
        connection.execute(
            update(table_)
            .where(table_.c.lot_id == bindparam("key"))
            .values({column: bindparam(column) for column in LOT_STATE_COLUMNS}),
            [
                {"key": lot_id, **{column: lot[column] for column in LOT_STATE_COLUMNS}}
                for lot_id, lot in sorted(lots.items())
            ],
        )
    for name in ("blocks", "block_times"):
        source = table(name)
        connection.execute(delete(source).where(source.c.number > ancestor.number))
    # in the rollback's own transaction: outbound deliveries retract what it undid (docs/deliveries.md)
    connection.execute(
        insert(table("index_rollbacks")),
        [
            {
                "ancestor_block": ancestor.number,
                "ancestor_hash": ancestor.hash,
                "from_block": before.number,
                "events_undone": removed,
            }
        ],
    )
    return Rollback(events=removed, lots_recomputed=len(lots))


def lot_events(
    connection: Connection, lot_ids: Iterable[str], registry: str
) -> dict[str, list[DecodedEvent]]:
    """The indexed events of some lots, each lot's in chain order."""
    events = table("events")
    found: dict[str, list[DecodedEvent]] = {}
    for chunk in _chunks(lot_ids):
        rows = connection.execute(
            select(events)
            .where(events.c.lot_id.in_(chunk))
            .order_by(events.c.block_number, events.c.tx_index, events.c.log_index)
        ).mappings()
        for row in rows:
            found.setdefault(row["lot_id"], []).append(as_event(row, registry))
    return found


def as_event(row: Any, registry: str) -> DecodedEvent:
    return DecodedEvent(
        name=row["name"],
        args=row["args"],
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        tx_hash=row["tx_hash"],
        tx_index=row["tx_index"],
        log_index=row["log_index"],
        address=registry,
    )

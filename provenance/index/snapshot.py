"""The whole index (`INDEX_TABLES`) as plain rows in a canonical order, and its digest: "this index equals a fresh
rebuild from the chain, row for row" becomes one comparison.

Rows are tuples of the table's columns in declaration order (no surrogate ids: every table is
keyed by what the chain says), sorted by their canonical text. JSON arguments become canonical
JSON text, so SQLite's JSON and PostgreSQL's JSONB compare equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Engine, select

from provenance.index.models import Base
from provenance.index.tables import INDEX_TABLES

Snapshot = dict[str, list[tuple[Any, ...]]]


_encode_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
_encode_row = json.JSONEncoder(default=str).encode
"""Built once: `json.dumps` with options builds an encoder per call, a third of a snapshot's time."""


def _canonical(value: Any) -> Any:
    if isinstance(value, dict | list):
        return _encode_json(value)
    return value


def _sort_key(row: tuple[Any, ...]) -> str:
    return _encode_row(row)


def _columns(name: str) -> list[Any]:
    return [column for column in Base.metadata.tables[name].columns if not column.info.get("surrogate")]


def snapshot_columns() -> dict[str, tuple[str, ...]]:
    """Each index table's column names, in the order of a snapshot row's values."""
    return {name: tuple(column.name for column in _columns(name)) for name in sorted(INDEX_TABLES)}


def snapshot_keys() -> dict[str, tuple[str, ...]]:
    """Each index table's primary-key columns: what names a row across two snapshots."""
    return {
        name: tuple(column.name for column in _columns(name) if column.primary_key)
        for name in sorted(INDEX_TABLES)
    }


def index_snapshot(engine: Engine) -> Snapshot:
    """Every index table's rows (read in one transaction), in a canonical order."""
    return index_snapshot_with_digests(engine)[0]


EARLY_TABLES = ("chain_mirror", "index_cursor", "blocks", "lots")
"""Read first by `index_snapshot_with_digests`, so a caller can start on them (the cursor, the lots)
while the rest of the same snapshot is read."""


def index_snapshot_with_digests(
    engine: Engine,
    *,
    early: Callable[[Snapshot], None] | None = None,
    tables: Iterable[str] | None = None,
) -> tuple[Snapshot, dict[str, str]]:
    """The snapshot and its `table_digests`, each row's canonical text computed once (an audit of
    100,000 events reads half a million rows). One transaction (REPEATABLE READ on PostgreSQL), so
    a running indexer cannot show it two states; `early` gets the EARLY_TABLES as soon as they are read.
    `tables` reads only those (an index nobody writes can be read in parts, by several processes)."""
    snapshot: Snapshot = {}
    digests: dict[str, str] = {}
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            wanted = set(INDEX_TABLES if tables is None else tables)
            rest = sorted(name for name in INDEX_TABLES if name not in EARLY_TABLES)
            for name in (*EARLY_TABLES, *rest):
                if name not in wanted:
                    continue
                columns = _columns(name)
                json_positions = [i for i, column in enumerate(columns) if isinstance(column.type, JSON)]
                rows = [tuple(row) for row in connection.execute(select(*columns)).all()]
                if json_positions:
                    rows = [
                        tuple(
                            _canonical(value) if i in json_positions else value for i, value in enumerate(row)
                        )
                        for row in rows
                    ]
                keyed = sorted(((_sort_key(row), row) for row in rows), key=lambda pair: pair[0])
                snapshot[name] = [row for _, row in keyed]
                digests[name] = hashlib.sha256("\n".join(text for text, _ in keyed).encode()).hexdigest()
                if early is not None and name == EARLY_TABLES[-1]:
                    early(dict(snapshot))
    return dict(sorted(snapshot.items())), dict(sorted(digests.items()))


def table_digests(snapshot: Snapshot) -> dict[str, str]:
    """sha256 of each table's canonical rows."""
    return {
        name: hashlib.sha256("\n".join(_sort_key(row) for row in rows).encode()).hexdigest()
        for name, rows in sorted(snapshot.items())
    }


def digest(snapshot: Snapshot) -> str:
    """One sha256 over every table's digest: equal digests, equal indexes."""
    return digest_of(table_digests(snapshot))


def digest_of(digests: dict[str, str]) -> str:
    """`digest` from already computed `table_digests`."""
    overall = hashlib.sha256()
    for name, table_digest in sorted(digests.items()):
        overall.update(f"{name}:{table_digest}\n".encode())
    return overall.hexdigest()


def differences(left: Snapshot, right: Snapshot, *, limit: int = 20) -> list[str]:
    """Human-readable differences between two snapshots (at most `limit`), for test failures and audits."""
    found: list[str] = []
    for name in sorted(set(left) | set(right)):
        ours, theirs = set(left.get(name, [])), set(right.get(name, []))
        found.extend(f"{name}: only in the first: {row}" for row in sorted(ours - theirs, key=_sort_key))
        found.extend(f"{name}: only in the second: {row}" for row in sorted(theirs - ours, key=_sort_key))
        if len(found) >= limit:
            break
    return found[:limit]


def _by_key(
    rows: list[tuple[Any, ...]], names: tuple[str, ...], positions: list[int]
) -> dict[str, dict[str, Any]]:
    return {_sort_key(tuple(row[p] for p in positions)): dict(zip(names, row, strict=True)) for row in rows}


@dataclass(frozen=True)
class RowDifference:
    """One row that differs between two snapshots, named by its table and primary key.

    `kind` is "only_left", "only_right" or "changed"; `changed` lists (column, left value,
    right value) for a row both sides have.
    """

    table: str
    key: dict[str, Any]
    kind: str
    left: dict[str, Any] | None
    right: dict[str, Any] | None
    changed: tuple[tuple[str, Any, Any], ...] = ()


def keyed_differences(
    left: Snapshot,
    right: Snapshot,
    *,
    tables: list[str] | None = None,
    digests: tuple[dict[str, str], dict[str, str]] | None = None,
) -> list[RowDifference]:
    """Every differing row of two snapshots, matched by primary key, tables in name order; only
    the tables whose digests differ are walked row by row."""
    columns, keys = snapshot_columns(), snapshot_keys()
    left_digests, right_digests = (
        digests if digests is not None else (table_digests(left), table_digests(right))
    )
    found: list[RowDifference] = []
    for name in tables if tables is not None else sorted(set(left) | set(right)):
        if left_digests.get(name) == right_digests.get(name):
            continue
        names = columns[name]
        positions = [names.index(column) for column in keys[name]]

        ours, theirs = (
            _by_key(left.get(name, []), names, positions),
            _by_key(right.get(name, []), names, positions),
        )
        for key in sorted(set(ours) | set(theirs)):
            mine, other = ours.get(key), theirs.get(key)
            row = mine if mine is not None else other
            assert row is not None
            named = {column: row[column] for column in keys[name]}
            if mine is None:
                found.append(RowDifference(name, named, "only_right", None, other))
            elif other is None:
                found.append(RowDifference(name, named, "only_left", mine, None))
            elif mine != other:
                changed = tuple(
                    (column, mine[column], other[column]) for column in names if mine[column] != other[column]
                )
                found.append(RowDifference(name, named, "changed", mine, other, changed))
    return found

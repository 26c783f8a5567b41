"""The whole index (`INDEX_TABLES`) as plain rows in a canonical order, and its digest: "this index equals a fresh
rebuild from the chain, row for row" becomes one comparison.

Rows are tuples of the table's columns in declaration order (no surrogate ids: every table is
keyed by what the chain says), sorted by their canonical text. JSON arguments become canonical
JSON text, so SQLite's JSON and PostgreSQL's JSONB compare equal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Engine, select

from provenance.index.models import INDEX_TABLES, Base

Snapshot = dict[str, list[tuple[Any, ...]]]


def _canonical(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def _sort_key(row: tuple[Any, ...]) -> str:
    return json.dumps(row, default=str)


def index_snapshot(engine: Engine) -> Snapshot:
    """Every index table's rows (read in one transaction), in a canonical order."""
    snapshot: Snapshot = {}
    with engine.connect() as connection, connection.begin():
        for name in sorted(INDEX_TABLES):
            table = Base.metadata.tables[name]
            columns = [column for column in table.columns if not column.info.get("surrogate")]
            rows = [tuple(_canonical(value) for value in row) for row in connection.execute(select(*columns))]
            rows.sort(key=_sort_key)
            snapshot[name] = rows
    return snapshot


def table_digests(snapshot: Snapshot) -> dict[str, str]:
    """sha256 of each table's canonical rows."""
    return {
        name: hashlib.sha256("\n".join(_sort_key(row) for row in rows).encode()).hexdigest()
        for name, rows in sorted(snapshot.items())
    }


def digest(snapshot: Snapshot) -> str:
    """One sha256 over every table's digest: equal digests, equal indexes."""
    overall = hashlib.sha256()
    for name, table_digest in table_digests(snapshot).items():
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

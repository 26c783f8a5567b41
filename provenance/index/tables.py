"""Which tables are the index, read off the models' metadata once, so the snapshot, the indexer's
writes, a reorg's rollback and the benchmarks cannot disagree about them; each list follows the
metadata's foreign keys.

The index is every table of `models` and `epcis_models` but the EPCIS query interface's own two,
which the chain does not determine (see `epcis_models`).
"""

from __future__ import annotations

from sqlalchemy import Table

from provenance.index import epcis_models, models
from provenance.index.models import Base, ChainCoordinates

NOT_FROM_CHAIN = frozenset({"record_times", "epcis_named_queries"})

_EVENT_COORDINATES = frozenset(name for name in vars(ChainCoordinates) if not name.startswith("_"))


def _index_tables() -> list[Table]:
    modules = {models.__name__, epcis_models.__name__}
    names = {
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if mapper.class_.__module__ in modules and isinstance(mapper.local_table, Table)
    }
    return [table for table in Base.metadata.sorted_tables if table.name in names - NOT_FROM_CHAIN]


INDEX_TABLES: tuple[str, ...] = tuple(table.name for table in _index_tables())
"""The tables the indexer writes, all derived from the chain: what a snapshot of the index holds.
Other tables on the same Base (the write path's outbox and credentials) are not the index."""

INSERT_ORDER: tuple[str, ...] = tuple(
    table.name for table in _index_tables() if set(table.columns.keys()) >= _EVENT_COORDINATES
)
"""The tables a range's events become rows of (each row carries its event's coordinates), parents
before children."""

DELETE_ORDER: tuple[str, ...] = tuple(
    table.name
    for table in reversed(_index_tables())
    if {"block_number", "log_index"} <= set(table.columns.keys())
)
"""Children before parents: every table whose rows carry the event (block, log) they come from, so
a reorg deletes them above the common ancestor."""

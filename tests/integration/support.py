"""Helpers of the integration tests: the chain under test, index databases on both engines, an
indexer for them, and a row-for-row comparison of two indexes."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from provenance.chain.deployment import Deployment
from provenance.chain.logsource import RpcLogSource
from provenance.chain.node import AnvilNode
from provenance.index.db import make_engine, upgrade
from provenance.index.indexer import Indexer
from provenance.index.snapshot import differences, index_snapshot
from tests.dbs import empty_database
from tests.histories import Actors, ChainWriter, HistoryBuilder

Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass
class Chain:
    """A running anvil with a freshly deployed registry and funded, generated actors."""

    node: AnvilNode
    w3: Web3
    deployment: Deployment
    actors: Actors
    writer: ChainWriter

    def history(self, *, seed: int = 0, tag: str = "H") -> HistoryBuilder:
        return HistoryBuilder(self.writer, self.actors, seed=seed, tag=tag)

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)


class Databases:
    """Makes empty index databases of one engine (tests/dbs.py), migrated to the newest schema;
    drops them all on `close`."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self._made = ExitStack()

    def new(self) -> str:
        url: str = self._made.enter_context(empty_database(self.kind, self.directory))
        upgrade(url)
        return url

    def close(self) -> None:
        self._made.close()


def indexer_for(chain: Chain, url: str, **options: Any) -> Indexer:
    return Indexer(
        make_engine(url), RpcLogSource(chain.w3, chain.deployment.registry), chain.deployment, **options
    )


def snapshot_of(url: str) -> Snapshot:
    engine = make_engine(url)
    try:
        return index_snapshot(engine)
    finally:
        engine.dispose()


def rebuild(chain: Chain, url: str) -> Snapshot:
    """A fresh index of the chain as it is now, built from scratch into the empty database at `url`."""
    indexer = indexer_for(chain, url)
    try:
        indexer.sync()
    finally:
        indexer.engine.dispose()
    return snapshot_of(url)


def assert_same_index(live: Snapshot, fresh: Snapshot) -> None:
    """Row for row, table by table; on failure, says which tables differ and shows the rows."""
    if live == fresh:
        return
    counts = [
        f"{name}: {len(live.get(name, []))} rows live, {len(fresh.get(name, []))} in the rebuild"
        for name in sorted(set(live) | set(fresh))
        if live.get(name) != fresh.get(name)
    ]
    rows = differences(live, fresh, limit=30)
    raise AssertionError("the index differs from a rebuild from scratch:\n" + "\n".join(counts + rows))


def values_in(snapshot: Snapshot) -> set[Any]:
    """Every value of every row, to ask whether a hash or an id appears anywhere in the index."""
    return {value for rows in snapshot.values() for row in rows for value in row}


def hex_values(snapshot: Snapshot) -> set[str]:
    return {
        value.lower() for value in values_in(snapshot) if isinstance(value, str) and value.startswith("0x")
    }

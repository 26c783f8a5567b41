"""The index follows the chain through reorgs: after one, it equals a rebuild from scratch, row for row.

anvil's `anvil_reorg` replaces the last blocks with new ones holding other registry transactions
(fresh lots, a stock count, an assay from another sender), and, in some cases, the same registrar
transactions again in other blocks, so rows must move rather than merely vanish.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from provenance.errors import ReorgTooDeep
from provenance.index.db import make_engine
from provenance.index.models import IndexCursor
from tests.histories import SMALL, reorg
from tests.integration.support import (
    Chain,
    Databases,
    assert_same_index,
    hex_values,
    indexer_for,
    rebuild,
    snapshot_of,
    values_in,
)


@dataclass(frozen=True)
class ReorgCase:
    depth: int
    replay: bool
    """Re-include the registrar's first replaced transaction in another block."""
    unindexed: int = 0
    """Blocks mined after the index caught up and before the reorg (the reorg reaches past them)."""
    after: int = 0
    """Blocks mined on the new branch before the index syncs again."""

    @property
    def id(self) -> str:
        parts = [f"depth{self.depth}"]
        if self.replay:
            parts.append("replayed-tx")
        if self.unindexed:
            parts.append(f"{self.unindexed}-unindexed")
        if self.after:
            parts.append(f"{self.after}-after")
        return "-".join(parts)


CASES = [
    ReorgCase(depth=1, replay=True),
    ReorgCase(depth=3, replay=True, after=2),
    ReorgCase(depth=10, replay=False, unindexed=3),
]


@pytest.mark.anvil
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_after_a_reorg_the_index_equals_a_rebuild(
    chain: Chain, databases: Databases, case: ReorgCase
) -> None:
    history = chain.history()
    history.setup()
    history.run(SMALL, rounds=case.depth + 4)
    live = databases.new()
    indexer = indexer_for(chain, live)
    indexer.sync()
    before = snapshot_of(live)
    if case.unindexed:
        history.run(SMALL, rounds=case.unindexed)
    ancestor = chain.head - case.depth
    dropped_blocks = {
        chain.w3.eth.get_block(n)["hash"].to_0x_hex() for n in range(ancestor + 1, chain.head + 1)
    }
    replay = chain.writer.sent_after(ancestor, chain.actors.registrar.address)[:1] if case.replay else []
    dropped_txs = {tx_hash for tx_hash, number in chain.writer.block_of.items() if number > ancestor} - {
        sent.tx_hash for sent in replay
    }
    assert dropped_blocks & hex_values(before), "the reorg must replace blocks the index already holds"

    new_txs = reorg(chain.writer, case.depth, history.replacement_txs(ancestor, case.depth, replay=replay))
    for _ in range(case.after):
        history.register_fresh(2)
    result = indexer.sync()
    after = snapshot_of(live)

    assert result.reorgs == 1
    assert result.rolled_back_events > 0

    assert_same_index(after, rebuild(chain, databases.new()))
    kept = hex_values(after)
    assert not dropped_blocks & kept, "rows of replaced blocks survived the reorg"
    assert not {tx.lower() for tx in dropped_txs} & kept, "rows of transactions the chain dropped survived"
    assert {tx.lower() for tx in new_txs} <= kept, "transactions of the new branch are missing"
    assert any(isinstance(v, str) and v.startswith("H-R") for v in values_in(after)), (
        "new-branch lots missing"
    )
    indexer.engine.dispose()


def wait_for_cursor(url: str, chain: Chain, timeout_s: float = 30.0) -> None:
    """Until the index's cursor is the chain's head block, hash and all."""
    engine = make_engine(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                cursor = connection.execute(select(IndexCursor.block_number, IndexCursor.block_hash)).first()
            head = chain.w3.eth.get_block("latest")
            if cursor is not None and tuple(cursor) == (head["number"], head["hash"].to_0x_hex()):
                return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"the follower did not reach block {chain.head} within {timeout_s:.0f} s")


@pytest.mark.anvil
def test_a_running_follower_goes_through_a_reorg(chain: Chain, databases: Databases) -> None:
    history = chain.history()
    history.setup()
    history.run(SMALL, rounds=4)
    live = databases.new()
    indexer = indexer_for(chain, live)
    stop = threading.Event()
    follower = threading.Thread(target=indexer.follow, args=(stop,), kwargs={"poll_s": 0.05})
    follower.start()
    try:
        history.run(SMALL, rounds=4)
        wait_for_cursor(live, chain)
        ancestor = chain.head - 3
        replay = chain.writer.sent_after(ancestor, chain.actors.registrar.address)[:1]
        reorg(chain.writer, 3, history.replacement_txs(ancestor, 3, replay=replay))
        history.register_fresh(2)
        wait_for_cursor(live, chain)
    finally:
        stop.set()
        follower.join(30)
    assert not follower.is_alive()
    indexer.engine.dispose()

    assert_same_index(snapshot_of(live), rebuild(chain, databases.new()))


@pytest.mark.anvil
def test_a_reorg_deeper_than_the_window_halts_and_changes_nothing(chain: Chain, databases: Databases) -> None:
    history = chain.history()
    history.setup()
    history.run(SMALL, rounds=12)
    live = databases.new()
    indexer = indexer_for(chain, live, reorg_window=4)
    indexer.sync()
    before = snapshot_of(live)
    ancestor = chain.head - 10
    reorg(chain.writer, 10, history.replacement_txs(ancestor, 10))

    with pytest.raises(ReorgTooDeep):
        indexer.sync()
    indexer.engine.dispose()

    assert snapshot_of(live) == before

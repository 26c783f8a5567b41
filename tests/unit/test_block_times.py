"""Block times in the index: every block with an event is dated by its header, a time splits the
events exactly where bisecting the chain's own headers splits them, and an index made before the
times were kept is dated when its indexer starts. On SQLite and PostgreSQL, on eth-tester."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, select

from provenance.domain.trace import first_block_at_or_after
from provenance.index.models import BlockTime, Event
from provenance.index.queries import ReadQueries
from provenance.index.snapshot import digest, index_snapshot
from tests.index_chain import IndexChain, full_history

pytestmark = pytest.mark.clock

HOUR = 3_600


def spread_history(chain: IndexChain) -> None:
    """The full history with the chain's clock moved an hour on, from its own head, between
    registrations: blocks an hour apart and blocks a second apart."""
    full_history(chain)
    for index in range(3):
        head_time = int(chain.w3.eth.get_block("latest")["timestamp"])
        chain.tester.time_travel(head_time + HOUR)
        chain.register(chain.lot(f"L{index}", 500))
        chain.register(chain.lot(f"K{index}", 400))


def stored_times(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        return {row.number: row.timestamp for row in connection.execute(select(BlockTime))}


def event_blocks(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(set(connection.scalars(select(Event.block_number))))


def test_every_block_with_an_event_is_dated_by_its_header(engine: Engine) -> None:
    chain = IndexChain.fresh()
    spread_history(chain)
    chain.indexer(engine).sync()

    times = stored_times(engine)

    assert sorted(times) == event_blocks(engine)
    assert len(times) > 20
    assert times == {number: int(chain.w3.eth.get_block(number)["timestamp"]) for number in times}


def test_a_time_splits_the_events_where_bisecting_the_chains_headers_does(engine: Engine) -> None:
    chain = IndexChain.fresh()
    spread_history(chain)
    chain.indexer(engine).sync()
    reads = ReadQueries(engine)
    deployed, head = chain.deployment.block_number, chain.head
    headers = {n: int(chain.w3.eth.get_block(n)["timestamp"]) for n in range(deployed, head + 1)}
    blocks = event_blocks(engine)
    moments = sorted(
        {t + d for t in headers.values() for d in (-1, 0, 1)} | {0, max(headers.values()) + HOUR}
    )

    for moment in moments:
        by_index = reads.first_block_at_or_after(moment, deployed, head)
        by_chain = first_block_at_or_after(moment, deployed, head, headers.__getitem__)
        assert deployed <= by_index <= head + 1
        assert [b for b in blocks if b >= by_index] == [b for b in blocks if b >= by_chain], moment


def test_an_index_made_before_block_times_is_dated_when_its_indexer_starts(engine: Engine) -> None:
    chain = IndexChain.fresh()
    spread_history(chain)
    chain.indexer(engine).sync()
    dated = index_snapshot(engine)
    with engine.begin() as connection:
        connection.execute(delete(BlockTime))
    assert stored_times(engine) == {}

    chain.indexer(engine).sync()

    assert digest(index_snapshot(engine)) == digest(dated)


def test_a_block_the_node_now_names_otherwise_is_left_undated_until_the_reorg_is_undone(
    engine: Engine,
) -> None:
    chain = IndexChain.fresh()
    chain.register(chain.lot("A1", 1_000))
    fork_point = chain.tester.take_snapshot()
    chain.register(chain.lot("A2", 2_000))
    chain.indexer(engine).sync()
    with engine.begin() as connection:
        connection.execute(delete(BlockTime))
    chain.tester.revert_to_snapshot(fork_point)
    head_time = int(chain.w3.eth.get_block("latest")["timestamp"])
    chain.tester.time_travel(head_time + HOUR)
    chain.register(chain.lot("B1", 3_000))

    result = chain.indexer(engine).sync()

    assert result.reorgs == 1
    times = stored_times(engine)
    assert sorted(times) == event_blocks(engine)
    assert times == {number: int(chain.w3.eth.get_block(number)["timestamp"]) for number in times}

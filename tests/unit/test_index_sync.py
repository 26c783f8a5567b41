"""The indexer's guarantees on eth-tester, on SQLite and PostgreSQL: exactly once, all of a range or
none, reorgs rolled back to what a fresh rebuild gives, and refusals that say what to do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from provenance.chain.deployment import Deployment, deploy_registry
from provenance.domain.blocks import BlockRef, Confirmations
from provenance.domain.events import DecodedEvent
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.errors import ChainMismatch, InconsistentLogs, IndexBehind, IndexStateError, ReorgTooDeep
from provenance.index import store
from provenance.index.db import make_engine, upgrade
from provenance.index.indexer import Indexer
from provenance.index.models import Block, IndexCursor, Lot
from provenance.index.snapshot import Snapshot, differences, digest, index_snapshot
from tests.dbs import empty_database
from tests.index_chain import IndexChain, full_history


@pytest.fixture
def chain() -> IndexChain:
    return IndexChain.fresh()


@pytest.fixture
def rebuild(db_kind: str, tmp_path: Path) -> Iterator[Callable[[IndexChain], Snapshot]]:
    """Builds a fresh index of a chain as it is now, in a new database of the same engine."""
    urls: list[Any] = []

    def build(chain: IndexChain, **options: Any) -> Snapshot:
        context = empty_database(db_kind, tmp_path)
        url = context.__enter__()
        urls.append(context)
        upgrade(url)
        engine = make_engine(url)
        try:
            chain.indexer(engine, **options).sync()
            return index_snapshot(engine)
        finally:
            engine.dispose()

    yield build
    for context in urls:
        context.__exit__(None, None, None)


def assert_same(live: Snapshot, fresh: Snapshot) -> None:
    assert digest(live) == digest(fresh), "\n".join(differences(live, fresh))


class Scripted:
    """A log source that wraps the real one and lets a test interfere with what it answers."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.on_head: list[Callable[[], None]] = []
        self.logs_calls: list[tuple[int, int]] = []
        self.duplicate = False
        self.failures: list[Exception] = []

    def head(self, confirmations: Confirmations) -> BlockRef:
        if self.on_head:
            self.on_head.pop(0)()
        ref: BlockRef = self.inner.head(confirmations)
        return ref

    def block(self, number: int) -> BlockRef:
        ref: BlockRef = self.inner.block(number)
        return ref

    def logs(self, from_block: int, to_block: int) -> list[DecodedEvent]:
        self.logs_calls.append((from_block, to_block))
        if self.failures:
            raise self.failures.pop(0)
        events: list[DecodedEvent] = self.inner.logs(from_block, to_block)
        return events + events if self.duplicate else events


# ---------------------------------------------------------------------- exactly once


def test_a_second_sync_changes_nothing(chain: IndexChain, engine: Engine) -> None:
    full_history(chain)
    indexer = chain.indexer(engine)
    first = indexer.sync()
    before = index_snapshot(engine)

    again = indexer.sync()

    assert (first.blocks, first.head) == (chain.head - chain.deployment.block_number + 1, chain.head)
    assert first.events > 30
    assert (again.blocks, again.events, again.head) == (0, 0, chain.head)
    assert_same(index_snapshot(engine), before)


def test_logs_delivered_twice_are_indexed_once(chain: IndexChain, engine: Engine, rebuild: Any) -> None:
    full_history(chain)
    source = Scripted(chain.source())
    source.duplicate = True

    Indexer(engine, source, chain.deployment).sync()

    assert_same(index_snapshot(engine), rebuild(chain))


def test_a_rewound_cursor_redelivers_logs_that_change_nothing(chain: IndexChain, engine: Engine) -> None:
    full_history(chain)
    chain.indexer(engine).sync()
    before = index_snapshot(engine)
    middle = chain.deployment.block_number + 5
    with engine.begin() as connection:
        (middle_hash,) = connection.execute(select(Block.hash).where(Block.number == middle)).one()
        connection.execute(update(IndexCursor).values(block_number=middle, block_hash=middle_hash))

    result = chain.indexer(engine).sync()

    assert result.events == 0
    assert result.blocks == chain.head - middle
    assert_same(index_snapshot(engine), before)


def test_one_block_per_range_builds_the_same_index_as_one_range(
    chain: IndexChain, engine: Engine, rebuild: Any
) -> None:
    full_history(chain)

    result = chain.indexer(engine, max_range=1).sync()

    assert result.head == chain.head
    assert_same(index_snapshot(engine), rebuild(chain, max_range=2000))


def test_history_indexed_as_it_happens_equals_a_backfill(
    chain: IndexChain, engine: Engine, rebuild: Any
) -> None:
    indexer = chain.indexer(engine)
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    indexer.sync()
    chain.hand_to_processor("A1", "A2")
    indexer.sync()
    chain.transform(TransformKind.BLEND, [("A1", 600), ("A2", 2_000)], [("B1", 2_500)], 100)
    chain.correct(chain.processor, "A1", CorrectionReason.INCORRECT_DATA, 50)
    indexer.sync()

    a1 = _lot(engine, "A1")
    assert (a1.remaining_g, a1.status) == (450, "active")
    assert_same(index_snapshot(engine), rebuild(chain))


def test_a_range_that_fails_half_way_leaves_nothing_behind(
    chain: IndexChain, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain.register(chain.lot("Z1", 1_000))
    chain.indexer(engine).sync()
    before = index_snapshot(engine)
    full_history(chain)

    def crash(*_: Any) -> None:
        raise RuntimeError("power cut after the cursor and the rows, before the block hashes")

    monkeypatch.setattr(store, "write_blocks", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        chain.indexer(engine).sync()

    assert_same(index_snapshot(engine), before)


def test_answers_that_contradict_the_headers_are_read_again(
    chain: IndexChain, engine: Engine, rebuild: Any
) -> None:
    full_history(chain)
    source = Scripted(chain.source())
    source.failures = [InconsistentLogs("a log of a block the node no longer has")]

    result = Indexer(engine, source, chain.deployment).sync()

    assert result.head == chain.head
    assert len(source.logs_calls) == 2
    assert_same(index_snapshot(engine), rebuild(chain))


# ---------------------------------------------------------------------- reorgs


def _lot(engine: Engine, lot_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(Lot).where(Lot.lot_id == lot_id)).one_or_none()


@pytest.mark.parametrize("new_blocks", [1, 3, 6], ids=["shorter-fork", "same-height", "longer-fork"])
def test_a_reorg_rolls_back_to_the_common_ancestor_and_equals_a_rebuild(
    chain: IndexChain, engine: Engine, rebuild: Any, new_blocks: int
) -> None:
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    chain.client.hand_over(chain.registrar, ["A1", "A2"], chain.processor)
    fork_point = chain.tester.take_snapshot()
    # the branch that will be dropped: acceptance, a transformation, a void
    chain.client.accept_handover(chain.processor, ["A1", "A2"])
    chain.transform(TransformKind.MERGE, [("A1", 1_000), ("A2", 500)], [("M1", 1_500)], 0)
    chain.correct(chain.admin, "A2", CorrectionReason.DID_NOT_OCCUR, -1_500)
    indexer = chain.indexer(engine)
    indexer.sync()
    assert _lot(engine, "A2").status == "voided"

    chain.tester.revert_to_snapshot(fork_point)
    chain.client.cancel_handover(chain.registrar, ["A1"])
    for index in range(new_blocks - 1):
        chain.register(chain.lot(f"C{index}", 700))
    result = indexer.sync()

    assert result.reorgs == 1
    assert result.rolled_back_events > 0
    assert _lot(engine, "M1") is None
    a1, a2 = _lot(engine, "A1"), _lot(engine, "A2")
    assert (a1.custodian, a1.pending_custodian, a1.remaining_g, a1.status) == (
        chain.registrar,
        None,
        1_000,
        "active",
    )
    assert (a2.custodian, a2.pending_custodian, a2.remaining_g, a2.status) == (
        chain.registrar,
        chain.processor,
        2_000,
        "active",
    )
    assert_same(index_snapshot(engine), rebuild(chain))


def test_a_reorg_that_replaces_only_the_head_block_is_seen(
    chain: IndexChain, engine: Engine, rebuild: Any
) -> None:
    chain.register(chain.lot("A1", 1_000))
    fork_point = chain.tester.take_snapshot()
    chain.register(chain.lot("A2", 2_000))
    indexer = chain.indexer(engine)
    indexer.sync()

    chain.tester.revert_to_snapshot(fork_point)
    chain.register(chain.lot("B2", 2_000))
    result = indexer.sync()

    assert result.reorgs == 1
    assert _lot(engine, "A2") is None
    assert _lot(engine, "B2") is not None
    assert_same(index_snapshot(engine), rebuild(chain))


def test_a_reorg_deeper_than_the_window_halts_and_changes_nothing(chain: IndexChain, engine: Engine) -> None:
    fork_point = chain.tester.take_snapshot()
    for index in range(6):
        chain.register(chain.lot(f"A{index}", 1_000))
    indexer = chain.indexer(engine, reorg_window=3)
    indexer.sync()
    before = index_snapshot(engine)
    assert len(before["blocks"]) == 3

    chain.tester.revert_to_snapshot(fork_point)
    for index in range(8):
        chain.register(chain.lot(f"B{index}", 1_000))
    with pytest.raises(ReorgTooDeep, match="changed nothing"):
        indexer.sync()

    assert_same(index_snapshot(engine), before)


def test_a_node_behind_the_index_is_waited_for_not_rolled_back(chain: IndexChain, engine: Engine) -> None:
    for index in range(3):
        chain.register(chain.lot(f"A{index}", 1_000))
    chain.indexer(engine).sync()
    before = index_snapshot(engine)

    result = chain.indexer(engine, confirmations=2).sync()

    assert (result.blocks, result.reorgs, result.head) == (0, 0, chain.head)
    assert_same(index_snapshot(engine), before)


# ---------------------------------------------------------------------- refusals


def test_a_database_that_mirrors_another_registry_is_refused(chain: IndexChain, engine: Engine) -> None:
    chain.indexer(engine).sync()
    _, other = deploy_registry(chain.w3, chain.admin)
    before = index_snapshot(engine)

    with pytest.raises(ChainMismatch, match="one database mirrors one registry") as refused:
        Indexer(engine, chain.source(), other).sync()

    assert other.registry in str(refused.value)
    assert chain.deployment.registry in str(refused.value)
    assert_same(index_snapshot(engine), before)


def test_a_node_of_another_chain_is_refused(chain: IndexChain, engine: Engine) -> None:
    other_chain = IndexChain.fresh()  # eth-tester chains may share a genesis; the deployment block differs

    with pytest.raises(ChainMismatch, match=r"another chain|not on this chain"):
        Indexer(engine, other_chain.source(), chain.deployment).sync()


def test_a_deployment_record_of_another_genesis_is_refused(chain: IndexChain, engine: Engine) -> None:
    forged = Deployment(**{**chain.deployment.__dict__, "genesis_hash": "0x" + "cd" * 32})

    with pytest.raises(ChainMismatch, match="the node is another chain"):
        Indexer(engine, chain.source(), forged).sync()


def test_a_deployment_block_that_is_not_on_the_chain_is_refused(chain: IndexChain, engine: Engine) -> None:
    forged = Deployment(**{**chain.deployment.__dict__, "block_hash": "0x" + "ab" * 32})

    with pytest.raises(ChainMismatch, match="deployment is not on this chain"):
        Indexer(engine, chain.source(), forged).sync()


def test_a_database_without_the_schema_is_refused_with_the_command_to_run(
    chain: IndexChain, empty_db_url: str
) -> None:
    engine = make_engine(empty_db_url)
    try:
        with pytest.raises(IndexBehind, match=r"run `provenance db upgrade`"):
            chain.indexer(engine).sync()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- following


def test_follow_indexes_new_blocks_until_stopped(chain: IndexChain, engine: Engine, rebuild: Any) -> None:
    chain.register(chain.lot("A1", 1_000))
    stop = threading.Event()
    source = Scripted(chain.source())
    source.on_head = [
        lambda: None,
        lambda: chain.register(chain.lot("A2", 2_000)),
        lambda: None,
        lambda: chain.client.hand_over(chain.registrar, ["A2"], chain.processor),
        lambda: None,
        stop.set,
    ]

    Indexer(engine, source, chain.deployment).follow(stop, poll_s=0.01)

    assert _lot(engine, "A2").pending_custodian == chain.processor
    assert_same(index_snapshot(engine), rebuild(chain))


def test_a_sync_asked_to_stop_returns_between_ranges(chain: IndexChain, engine: Engine) -> None:
    for index in range(4):
        chain.register(chain.lot(f"A{index}", 1_000))
    stop = threading.Event()
    source = Scripted(chain.source())
    source.on_head = [lambda: None, stop.set]

    result = Indexer(engine, source, chain.deployment, max_range=1).sync(stop)

    assert result.blocks == 2
    assert result.head == chain.deployment.block_number + 1


def test_a_second_writer_cannot_move_a_cursor_it_did_not_read(chain: IndexChain, engine: Engine) -> None:
    chain.register(chain.lot("A1", 1_000))
    chain.indexer(engine).sync()
    with engine.connect() as connection:
        current = store.read_cursor(connection)
    assert current is not None
    stale = store.Cursor(current.number - 1, current.hash)

    with pytest.raises(IndexStateError, match="one indexer per database"), engine.begin() as connection:
        store.move_cursor(connection, stale, store.Cursor(current.number + 1, "0x" + "00" * 32))
    with pytest.raises(IndexStateError, match="one indexer per database"), engine.begin() as connection:
        store.move_cursor(connection, None, store.Cursor(current.number + 1, "0x" + "00" * 32))

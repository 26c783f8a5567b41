"""Deliveries end to end below the API, on SQLite and PostgreSQL: the real indexer on an
eth-tester chain fills the index, the deliverer sends to a real HTTP receiver on 127.0.0.1 that is
down, slow, answers 500, hangs past the timeout, and recovers. The deliverer's clock is a fake one
the test moves (back-off delays pass without sleeping); its only real waits are the receiver's
short stalls."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from provenance.config import Settings
from provenance.deliveries import Deliverer, DeliveryStore, SubscriptionRequest, Subscriptions, WebhookKind
from provenance.domain.deliveries import AllowList, RetryPolicy
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.index.db import make_engine
from provenance.index.models import Event
from tests.delivery_receiver import Receiver, running_receiver
from tests.index_chain import IndexChain

TIMEOUT_S = 0.3


class FakeClock:
    def __init__(self) -> None:
        self.now = 5_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def chain() -> IndexChain:
    return IndexChain.fresh()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver(hang_s=TIMEOUT_S * 2)


def settings() -> Settings:
    return Settings(delivery_allowed_hosts="127.0.0.1")


def _create(engine: Engine, receiver: Receiver, *, account: str = "0x" + "00" * 20, **request: Any) -> str:
    destination, secret = Subscriptions(DeliveryStore(engine), settings()).create(
        SubscriptionRequest(receiver.url, **request), account=account, credential_id="test"
    )
    receiver.secret = secret
    return destination.id


MADE: list[Deliverer] = []


@pytest.fixture(autouse=True)
def _close_deliverers() -> Iterator[None]:
    yield
    while MADE:
        MADE.pop().close()


def deliverer(chain: IndexChain, engine: Engine, clock: FakeClock, **options: Any) -> Deliverer:
    webhook = WebhookKind(
        chain_id=chain.client.chain_id,
        registry=chain.client.address,
        allowed=AllowList.parse("127.0.0.1"),
        timeout_s=TIMEOUT_S,
    )
    made = Deliverer(
        DeliveryStore(engine),
        {webhook.name: webhook},
        chain_id=chain.client.chain_id,
        policy=RetryPolicy(base_s=1.0, max_s=16.0, give_up_after_s=3_600.0),
        clock=clock,
        rng=random.Random(3),
        **options,
    )
    MADE.append(made)
    return made


def drive(
    deliverer: Deliverer, clock: FakeClock, done: Any, *, rounds: int = 400, step_s: float = 5.0
) -> None:
    for _ in range(rounds):
        deliverer.step()
        if done():
            return
        clock.advance(step_s)
    raise AssertionError("the deliveries did not finish")


def indexed_events(engine: Engine, lot_ids: set[str], after_block: int = -1) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(
                    Event.block_number,
                    Event.block_hash,
                    Event.tx_hash,
                    Event.tx_index,
                    Event.log_index,
                    Event.lot_id,
                )
                .where(Event.lot_id.in_(sorted(lot_ids)), Event.block_number > after_block)
                .order_by(Event.block_number, Event.tx_index, Event.log_index)
            )
        )


def message_id(chain_id: int, row: Any) -> str:
    """The id as docs/deliveries.md defines it, computed here on its own."""
    coordinates = f"{chain_id}:{row.block_hash.lower()}:{row.tx_hash.lower()}:{row.log_index}"
    return "evt_" + hashlib.sha256(coordinates.encode()).hexdigest()[:40]


def history(chain: IndexChain) -> None:
    """A1, A2 to the processor; merged into M1; M1 split into S1 and S2; S1 assayed and sold to the
    buyer; S2 corrected; B1 (not the processor's) registered and assayed on the side."""
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    chain.register(chain.lot("B1", 500))
    chain.hand_to_processor("A1", "A2")
    chain.transform(TransformKind.MERGE, [("A1", 1_000), ("A2", 2_000)], [("M1", 2_900)], 100)
    chain.transform(TransformKind.SPLIT, [("M1", 2_900)], [("S1", 1_900), ("S2", 1_000)], 0)
    chain.assay("S1", 4_800)
    chain.assay("B1", 3_000)
    chain.client.hand_over(chain.processor, ["S1"], chain.buyer)
    chain.client.accept_handover(chain.buyer, ["S1"])
    chain.correct(chain.processor, "S2", CorrectionReason.INCORRECT_DATA, -10)


def assert_exactly_once_in_chain_order_per_lot(receiver: Receiver, expected: list[tuple[str, str]]) -> None:
    """`expected`: (lot, message id) in chain order."""
    acknowledged = [(item.lot_id, item.id) for item in receiver.items() if item.type == "event"]
    assert sorted(acknowledged) == sorted(expected), "lost or duplicated"
    for lot in {lot for lot, _ in expected}:
        assert [i for lot_, i in acknowledged if lot_ == lot] == [i for lot_, i in expected if lot_ == lot], (
            f"lot {lot}'s events out of chain order"
        )
    assert receiver.bad_signatures == 0


# ---------------------------------------------------------------------- exactly once, in order


def test_a_receiver_that_fails_in_every_way_gets_every_event_once_in_chain_order(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.indexer(engine).sync()
    subscription = _create(engine, receiver, lot_ids=["A1"])  # and all made from it
    history(chain)
    chain.indexer(engine).sync()
    modes = ["fail", "ok", "hang", "slow", "reset", "fail", "fail", "ok", "ok", "hang", "ok"]
    receiver.behaviour = lambda n: modes[n % len(modes)]
    clock = FakeClock()
    sender = deliverer(chain, engine, clock)
    expected = [
        (row.lot_id, message_id(chain.client.chain_id, row))
        for row in indexed_events(engine, {"A1", "M1", "S1", "S2"})
    ]

    for _ in range(3):  # then down: the port refuses connections for a while
        sender.step()
        clock.advance(30)
    receiver.stop()
    for _ in range(10):
        sender.step()
        clock.advance(60)
    state = DeliveryStore(engine).get(subscription)
    assert state is not None
    assert state.failures >= 10
    assert "Connection" in (state.last_error or "")
    receiver.start()
    drive(sender, clock, lambda: len(receiver.ids()) >= len(expected))

    assert_exactly_once_in_chain_order_per_lot(receiver, expected)
    assert {item.lot_id for item in receiver.items()} == {"A1", "M1", "S1", "S2"}
    assert DeliveryStore(engine).dead_letters(subscription) == []
    final = DeliveryStore(engine).get(subscription)
    assert final is not None
    assert (final.failures, final.delivered_count) == (0, len(expected))


def test_a_holder_is_told_about_the_lots_it_holds_or_held_and_what_is_made_from_them(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.indexer(engine).sync()
    _create(
        engine, receiver, held=True, account=chain.processor, event_types=["AssayRecorded", "LotCorrected"]
    )
    history(chain)
    chain.indexer(engine).sync()
    clock = FakeClock()

    drive(deliverer(chain, engine, clock), clock, lambda: len(receiver.ids()) >= 2)
    deliverer(chain, engine, clock).step()

    assert [(item.body["event"]["name"], item.lot_id) for item in receiver.items()] == [
        ("AssayRecorded", "S1"),
        ("LotCorrected", "S2"),
    ]


def test_a_restarted_deliverer_neither_loses_nor_repeats_what_was_acknowledged(
    chain: IndexChain, engine: Engine, receiver: Receiver, db_url: str
) -> None:
    chain.indexer(engine).sync()
    _create(engine, receiver, lot_ids=["A1"])
    history(chain)
    chain.indexer(engine).sync()
    expected = [
        (row.lot_id, message_id(chain.client.chain_id, row))
        for row in indexed_events(engine, {"A1", "M1", "S1", "S2"})
    ]
    clock = FakeClock()
    receiver.behaviour = lambda n: "fail" if n % 4 == 3 else "ok"

    for _restart in range(len(expected) + 5):  # a new process (engine, deliverer) for every pass
        fresh = make_engine(db_url)
        process = deliverer(chain, fresh, clock, batch=2, pass_limit=2)
        try:
            process.step()
        finally:
            process.close()
            fresh.dispose()
        clock.advance(20)
        if len(receiver.ids()) >= len(expected):
            break
    else:
        raise AssertionError("not done after a restart per message")

    assert_exactly_once_in_chain_order_per_lot(receiver, expected)


class DiesAfterSending:
    """A process that dies between the receiver's 2xx and its own commit: the one window."""

    def __init__(self, inner: WebhookKind) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, destination: Any, message: Any) -> Any:
        self.inner.send(destination, message)
        raise SystemExit("killed after the receiver answered")


def test_a_crash_between_the_answer_and_the_commit_sends_that_one_message_again_with_its_id(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.indexer(engine).sync()
    _create(engine, receiver, lot_ids=["A1"])
    history(chain)
    chain.indexer(engine).sync()
    expected = [
        message_id(chain.client.chain_id, row) for row in indexed_events(engine, {"A1", "M1", "S1", "S2"})
    ]
    clock = FakeClock()
    dying = deliverer(chain, engine, clock)
    dying.kinds["webhook"] = DiesAfterSending(dying.kinds["webhook"])  # type: ignore[arg-type]

    with pytest.raises(SystemExit):
        dying.step()
    drive(deliverer(chain, engine, clock), clock, lambda: len(set(receiver.ids())) >= len(expected))

    acknowledged = receiver.ids()
    assert acknowledged == [expected[0], *expected], "only the unrecorded one again, with the same id"


class DiesAfter:
    """A process that dies right after its `sends`-th message was answered, moving the clock
    `send_s` per message (a receiver that takes that long to answer)."""

    def __init__(self, inner: WebhookKind, clock: FakeClock, sends: int, send_s: float) -> None:
        self.inner, self.clock, self.left, self.send_s = inner, clock, sends, send_s
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, destination: Any, message: Any) -> Any:
        outcome = self.inner.send(destination, message)
        self.clock.advance(self.send_s)
        self.left -= 1
        if self.left == 0:
            raise SystemExit("killed after the receiver answered")
        return outcome


@pytest.mark.parametrize(
    ("options", "send_s", "sends", "group_size"),
    [
        # the lots' messages are A1 A1 A1 A1 M1 M1 S1 S2 S1 ...: groups [0] [1] [2] [3] [4] [5 6] ...
        ({"commit_every": 2, "commit_s": 3_600.0}, 0.0, 7, 2),  # dies in [5 6]: both again
        # two sends reach 0.25 s: [5 6] [7 ...]; dies at 7: it alone again (unbounded: [5 6 7])
        ({"commit_every": 1_000, "commit_s": 0.25}, 0.2, 8, 2),
    ],
    ids=["count", "time"],
)
def test_a_crash_sends_again_only_the_acknowledged_messages_of_the_group_it_did_not_commit(
    chain: IndexChain,
    engine: Engine,
    receiver: Receiver,
    options: dict[str, Any],
    send_s: float,
    sends: int,
    group_size: int,
) -> None:
    """One-at-a-time messages are recorded in groups: a crash repeats the acknowledged messages of
    the group it interrupted, and nothing before them."""
    chain.indexer(engine).sync()
    _create(engine, receiver, lot_ids=["A1"])
    history(chain)
    chain.indexer(engine).sync()
    rows = indexed_events(engine, {"A1", "M1", "S1", "S2"})
    expected = [message_id(chain.client.chain_id, row) for row in rows]
    assert len(expected) > sends
    group_starts = [0]  # a group ends when full or before a second message of one lot
    for index in range(1, sends):
        group = rows[group_starts[-1] : index]
        if len(group) == group_size or rows[index].lot_id in {row.lot_id for row in group}:
            group_starts.append(index)
    clock = FakeClock()
    dying = deliverer(chain, engine, clock, **options)
    dying.kinds["webhook"] = DiesAfter(dying.kinds["webhook"], clock, sends, send_s)  # type: ignore[arg-type]

    with pytest.raises(SystemExit):
        dying.step()
    drive(
        deliverer(chain, engine, clock, **options), clock, lambda: len(set(receiver.ids())) >= len(expected)
    )

    acknowledged = receiver.ids()
    assert acknowledged[:sends] == expected[:sends]
    again = acknowledged[sends:]
    assert again == expected[group_starts[-1] :], "from the last commit on, each once, in chain order"


def test_a_message_failing_past_the_window_is_dead_lettered_and_a_replay_sends_it(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.indexer(engine).sync()
    subscription = _create(engine, receiver, lot_ids=["B1"])
    history(chain)
    chain.indexer(engine).sync()
    expected = [message_id(chain.client.chain_id, row) for row in indexed_events(engine, {"B1"})]
    clock = FakeClock()
    sender = deliverer(chain, engine, clock)
    receiver.behaviour = lambda _n: "fail"

    for _ in range(100):  # each message fails for the whole hour, then the next one does
        sender.step()
        clock.advance(120)
    store = DeliveryStore(engine)
    dead = store.dead_letters(subscription)
    assert [entry.message_id for entry in dead] == expected
    assert all(entry.error == "HTTP 500 Internal Server Error" and entry.body for entry in dead)
    assert receiver.ids() == []

    receiver.behaviour = lambda _n: "ok"
    store.replay(subscription, from_block=0)
    drive(sender, clock, lambda: len(receiver.ids()) >= len(expected))
    assert receiver.ids() == expected
    assert store.dead_letters(subscription) == []


# ---------------------------------------------------------------------- reorgs


def test_a_reorg_retracts_what_it_rolled_back_and_sends_the_new_branch(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    indexer = chain.indexer(engine)
    indexer.sync()
    subscription = _create(engine, receiver, lot_ids=["A1", "A2"])
    start = DeliveryStore(engine).get(subscription)
    assert start is not None
    chain.client.hand_over(chain.registrar, ["A1"], chain.processor)
    fork_point = chain.tester.take_snapshot()
    chain.client.accept_handover(chain.processor, ["A1"])  # the branch that will be dropped
    chain.correct(chain.admin, "A2", CorrectionReason.DID_NOT_OCCUR, -2_000)
    indexer.sync()
    clock = FakeClock()
    sender = deliverer(chain, engine, clock)
    before = indexed_events(engine, {"A1", "A2"}, start.start_block)
    drive(sender, clock, lambda: len(receiver.ids()) >= len(before))
    delivered = receiver.ids()

    chain.tester.revert_to_snapshot(fork_point)
    chain.client.cancel_handover(chain.registrar, ["A1"])
    chain.register(chain.lot("C1", 700))
    assert indexer.sync().reorgs == 1
    after = indexed_events(engine, {"A1", "A2"}, start.start_block)
    gone = [message_id(chain.client.chain_id, row) for row in before if row not in after]
    new = [message_id(chain.client.chain_id, row) for row in after if row not in before]
    assert gone
    assert new
    drive(
        sender,
        clock,
        lambda: (
            len(receiver.ids("retraction")) >= len(gone) and len(receiver.ids()) >= len(delivered) + len(new)
        ),
    )

    retractions = [item for item in receiver.items() if item.type == "retraction"]
    assert [item.body["retracts"] for item in retractions] == list(reversed(gone)), "newest first"
    assert all(item.id == "ret_" + item.body["retracts"].removeprefix("evt_") for item in retractions)
    assert receiver.ids() == [*delivered, *new], "the new branch after the retractions, nothing twice"
    kinds = [item.type for item in receiver.items()]
    assert kinds == ["event"] * len(delivered) + ["retraction"] * len(gone) + ["event"] * len(new)


def test_a_lot_the_receiver_refuses_holds_back_only_that_lots_events(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.indexer(engine).sync()
    subscription = _create(engine, receiver, lot_ids=["A1", "B1"])
    history(chain)
    chain.indexer(engine).sync()
    lineage = [
        (row.lot_id, message_id(chain.client.chain_id, row))
        for row in indexed_events(engine, {"A1", "M1", "S1", "S2"})
    ]
    b1 = [(row.lot_id, message_id(chain.client.chain_id, row)) for row in indexed_events(engine, {"B1"})]
    clock = FakeClock()
    sender = deliverer(chain, engine, clock)
    receiver.refuse_lot = "B1"

    drive(sender, clock, lambda: len(receiver.ids()) >= len(lineage))
    held = DeliveryStore(engine).get(subscription)
    assert held is not None
    assert held.failures > 0
    assert held.last_error == "HTTP 500 Internal Server Error"
    first_b1 = min((row.block_number, row.tx_index, row.log_index) for row in indexed_events(engine, {"B1"}))
    cursor = (held.cursor.block_number, held.cursor.tx_index, held.cursor.log_index)
    assert cursor < first_b1, "the cursor stays before the first unsettled message"

    receiver.refuse_lot = None
    drive(sender, clock, lambda: len(receiver.ids()) >= len(lineage) + len(b1))
    assert_exactly_once_in_chain_order_per_lot(receiver, lineage + b1)
    assert [item.lot_id for item in receiver.items()][-len(b1) :] == ["B1"] * len(b1)


def test_the_cli_lists_destinations_and_dead_letters_and_replays(
    chain: IndexChain, engine: Engine, receiver: Receiver, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from provenance.cli.main import app

    chain.indexer(engine).sync()
    subscription = _create(engine, receiver, lot_ids=["B1"])
    history(chain)
    chain.indexer(engine).sync()
    clock = FakeClock()
    sender = deliverer(chain, engine, clock)
    receiver.behaviour = lambda _n: "fail"
    for _ in range(100):
        sender.step()
        clock.advance(120)
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", db_url)
    cli = CliRunner()

    listed = cli.invoke(app, ["deliveries", "list", "--json"])
    dead = cli.invoke(app, ["deliveries", "dead-letters", "--destination", subscription, "--json"])
    assert listed.exit_code == 0, listed.output
    row = json.loads(listed.output.splitlines()[0])
    assert (row["id"], row["kind"], row["dead_letters"], row["url"]) == (
        subscription,
        "webhook",
        2,
        receiver.url,
    )
    assert dead.exit_code == 1, "dead letters are a finding"
    assert [json.loads(line)["lot_id"] for line in dead.output.splitlines()] == ["B1", "B1"]

    receiver.behaviour = lambda _n: "ok"
    replayed = cli.invoke(app, ["deliveries", "replay", "--destination", subscription, "--from-block", "0"])
    assert replayed.exit_code == 0, replayed.output
    drive(sender, clock, lambda: len(receiver.ids()) >= 2)
    after = cli.invoke(app, ["deliveries", "dead-letters"])
    assert (after.exit_code, after.output.strip()) == (0, "no dead letters")
    unknown = cli.invoke(app, ["deliveries", "replay", "--destination", "sub_nope", "--from-block", "0"])
    assert unknown.exit_code == 2
    assert "no destination sub_nope" in unknown.output


def test_the_running_deliverer_drains_a_backlog_longer_than_a_pass(
    chain: IndexChain, engine: Engine, receiver: Receiver
) -> None:
    chain.indexer(engine).sync()
    _create(engine, receiver, lot_ids=["A1", "B1"])
    history(chain)
    chain.indexer(engine).sync()
    expected = [
        (row.lot_id, message_id(chain.client.chain_id, row))
        for row in indexed_events(engine, {"A1", "M1", "S1", "S2", "B1"})
    ]
    webhook = WebhookKind(
        chain_id=chain.client.chain_id, registry=chain.client.address, allowed=AllowList.parse("127.0.0.1")
    )
    running = Deliverer(
        DeliveryStore(engine), {webhook.name: webhook}, chain_id=chain.client.chain_id, batch=2, pass_limit=3
    )
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), kwargs={"poll_s": 0.02, "workers": 2})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(receiver.ids()) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=30)

    assert not thread.is_alive()
    assert_exactly_once_in_chain_order_per_lot(receiver, expected)
    assert receiver.ids() == [message_id for _, message_id in expected], "nothing failed: all in chain order"

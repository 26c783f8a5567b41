"""The deliverer: takes every destination from its cursor through the index's events, one message
at a time, in chain order, recording each outcome with the cursor in one transaction.

For each destination, one pass (`deliver`):
1. answer the index's rollbacks since it last looked: what it was sent of undone events is marked
   for retraction and its cursor moves back to the common ancestor (`DeliveryStore.answer_rollbacks`);
2. send the retractions, newest event first;
3. go forward: events after the cursor that the destination wants, skipping those it has settled
   (acknowledged or dead-lettered) already; acknowledged messages are logged and the cursor moved
   past them in one transaction: a batch's (a kind that takes batches), or a group of messages sent
   one after another (at most `commit_every` of them or `commit_s` seconds of sending), since one
   commit per message was what bounded a destination's rate on PostgreSQL. A crash sends the
   acknowledged messages of the group whose commit it prevented again, with the same ids.
A message that fails waits (exponential back-off with jitter, `RetryPolicy`) and blocks the ones
after it, so that a destination sees every lot's events in chain order; once it has failed for
`give_up_after_s` it is dead-lettered and the cursor moves past it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from provenance.deliveries.kinds import (
    BatchingKind,
    DestinationKind,
    Message,
    Outcome,
    batch_limit,
    held_back_by,
    send_all,
)
from provenance.domain.deliveries import (
    Destination,
    IndexedEvent,
    Position,
    RetryPolicy,
    encode_body,
    event_message_id,
)
from provenance.index.delivery_store import CursorMoved, DeliveryStore

log = logging.getLogger("provenance.deliveries")

SETTLED = ("delivered", "dead")
"""A message in these states is not sent again by going forward (a replay forgets them)."""


@dataclass(frozen=True)
class PassResult:
    sent: int = 0
    retracted: int = 0
    dead: int = 0
    failed: bool = False
    more: bool = False
    """Work was left for the next pass (a pass is bounded so that destinations take turns)."""
    ran: bool = True
    """False when the destination was not due (or gone) after all: nothing was looked at."""


@dataclass
class _Pending:
    """An event of a pass not settled yet: its message to send, or (no message) one passed."""

    event: IndexedEvent
    message_id: str | None = None
    message: Message | None = None
    logged: bool = False
    lot: str | None = None
    """What its failure holds back (`kinds.held_back_by`)."""
    outcome: Outcome | None = None
    """The answer, for a kind that sends one message at a time (sent as soon as it is reached)."""


@dataclass
class _Forward:
    """Where one pass forward stands."""

    destination: Destination
    committable: Position
    """How far the cursor may move: just before the first unsettled message."""
    head: tuple[Outcome, float] | None = None
    """The failure of the first unsettled message, and when: the cursor may not pass it."""
    blocked: set[str | None] = field(default_factory=set)
    sent: int = 0
    dead: int = 0
    seen: int = 0
    after_failure: int = 0


class Deliverer:
    def __init__(
        self,
        store: DeliveryStore,
        kinds: Mapping[str, DestinationKind],
        *,
        chain_id: int,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        batch: int = 500,
        pass_limit: int = 2_000,
        failure_window: int = 200,
        commit_every: int = 32,
        commit_s: float = 0.25,
    ) -> None:
        self.store = store
        self.kinds = dict(kinds)
        self.chain_id = chain_id
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.batch = batch
        self.pass_limit = pass_limit
        self.failure_window = failure_window
        """Events a pass goes on past a failed message (other lots') before it ends."""
        self.commit_every = commit_every
        self.commit_s = commit_s
        """Outcomes of one-at-a-time sends recorded together: at most this many, or this long after
        the first was sent (what a crash may send again)."""
        self._idle: dict[str, tuple[Position, tuple[Position | None, int]]] = {}
        """Destinations that had nothing left to do: their cursor and the index's marker then."""
        self._matchers: dict[str, tuple[Position, int, Callable[[IndexedEvent], bool]]] = {}
        """Each destination's predicate, with the cursor it began at and the rollbacks it had
        answered: reused while the cursor is at or past that start (a predicate learns only by
        adding, so events it has seen may be fed again) and no rollback came."""

    # ---------------------------------------------------------------- one destination

    def deliver(self, destination_id: str) -> PassResult:
        """One bounded pass over one destination (nothing if its next attempt is not due)."""
        marker = self.store.marker()
        result = self._pass(destination_id)
        if result.ran and not (result.failed or result.more):
            after = self.store.get(destination_id)
            if after is not None:
                self._idle[destination_id] = (after.cursor, marker)
        return result

    def _pass(self, destination_id: str) -> PassResult:
        destination = self.store.get(destination_id)
        if destination is None or not destination.active or destination.next_attempt_at > self.clock():
            return PassResult(ran=False)
        kind = self.kinds.get(destination.kind)
        if kind is None:
            log.error("destination %s is of unknown kind %s", destination.id, destination.kind)
            return PassResult()
        try:
            return self._deliver(destination, kind)
        except CursorMoved as error:
            log.info("%s; reading it again", error)
            return PassResult(more=True)

    def _deliver(self, destination: Destination, kind: DestinationKind) -> PassResult:
        if self.store.answer_rollbacks(destination):
            reread = self.store.get(destination.id)
            assert reread is not None
            destination = reread
        retracted = 0
        while True:
            pending = self.store.pending_retractions(destination.id, self.batch)
            if not pending:
                break
            for entry in pending:
                outcome = kind.send(destination, kind.retraction(destination, entry.event))
                now = self.clock()
                if not outcome.acknowledged:
                    self._failed(destination, destination.cursor, outcome, now)
                    return PassResult(retracted=retracted, failed=True)
                self.store.record_retracted(destination, entry.message_id, destination.failures + 1, now)
                destination = replace(destination, failures=0, first_failure_at=None, next_attempt_at=0.0)
                retracted += 1
        return self._forward(destination, kind, retracted)

    def _forward(self, destination: Destination, kind: DestinationKind, retracted: int) -> PassResult:
        """Sends what the destination wants after its cursor. A message that fails holds back the
        later messages of its lot only (`blocked`): the other lots' go on for `failure_window` more
        events, logged as delivered while the cursor stays before the first unsettled message, and
        the next pass, after the back-off, sends the held ones again in order and skips the rest.
        A kind that takes batches is given up to its `batch_limit` messages at once, never two of
        one lot; outcomes are then recorded one by one in chain order, as if sent one at a time.
        Any other kind is sent each message as it is reached, and its outcomes are recorded in
        groups the same way (a group never holds two messages of one lot either, so that a failed
        message holds back its lot's next)."""
        forward = _Forward(destination, destination.cursor)
        wanted: Callable[[IndexedEvent], bool] | None = None
        batching = isinstance(kind, BatchingKind)
        limit = batch_limit(kind, destination) if batching else max(1, self.commit_every)
        batch: list[_Pending] = []
        """Events not settled yet, in chain order: messages to send (or sent), and events passed after them."""
        batch_lots: set[str | None] = set()
        messages_in_batch = 0
        batch_began = 0.0

        def flush() -> None:
            nonlocal messages_in_batch
            sends = [item for item in batch if item.message is not None]
            if batching:
                outcomes = iter(
                    send_all(kind, forward.destination, [item.message for item in sends if item.message])
                )
            else:
                outcomes = iter([item.outcome for item in sends if item.outcome is not None])
            now = self.clock()
            acknowledged: list[_Pending] = []
            for item in batch:
                if item.message is None:
                    if forward.head is None and not acknowledged:
                        forward.committable = item.event.position
                    elif forward.head is None:
                        acknowledged.append(item)  # passed after them: the cursor may follow
                    continue
                outcome = next(outcomes)
                if outcome.acknowledged:
                    acknowledged.append(item)
                    continue
                self._record_acknowledged(forward, acknowledged, now)
                acknowledged = []
                self._settle(forward, item, outcome, now)
            self._record_acknowledged(forward, acknowledged, now)
            batch.clear()
            batch_lots.clear()
            messages_in_batch = 0

        position = destination.cursor
        while forward.seen < self.pass_limit and forward.after_failure <= self.failure_window:
            events = self.store.events_after(position, self.batch)
            if not events:
                break
            if wanted is None:
                wanted = self._matcher(destination, kind)
            chosen = [event for event in events if wanted(event)]
            ids = {id(event): self._message_id(event) for event in chosen}
            known = self.store.known(destination.id, ids.values())
            for event in events:
                if forward.after_failure > self.failure_window:
                    break
                forward.seen += 1
                position = event.position
                forward.after_failure += forward.head is not None
                message_id = ids.get(id(event))
                if message_id is None or known.get(message_id) in SETTLED:
                    if batch:
                        batch.append(_Pending(event))
                    elif forward.head is None:
                        forward.committable = event.position
                    continue
                lot = held_back_by(kind, event)
                if lot in batch_lots:
                    flush()
                if lot in forward.blocked:
                    continue
                message = kind.message(forward.destination, event)
                item = _Pending(event, message_id, message, message_id in known, lot)
                if not batching:
                    if not messages_in_batch:
                        batch_began = self.clock()
                    item.outcome = kind.send(forward.destination, message)
                batch.append(item)
                batch_lots.add(lot)
                messages_in_batch += 1
                if messages_in_batch >= limit or (
                    not batching and self.clock() - batch_began >= self.commit_s
                ):
                    flush()
            if batch:
                flush()
        if forward.head is not None:
            self._failed(forward.destination, forward.committable, forward.head[0], forward.head[1])
            return PassResult(forward.sent, retracted, forward.dead, failed=True)
        if forward.committable != forward.destination.cursor:
            self.store.record_passed(forward.destination, forward.committable)
        return PassResult(forward.sent, retracted, forward.dead, more=forward.seen >= self.pass_limit)

    def _record_acknowledged(self, forward: _Forward, items: list[_Pending], now: float) -> None:
        """Acknowledged messages of a batch (with the events passed between them), in one
        transaction: logged, and the cursor moved past them while no earlier message is unsettled."""
        delivered = [item for item in items if item.message_id is not None]
        if not delivered:
            return
        destination = forward.destination
        advance = forward.head is None
        first_attempts = destination.failures + 1 if advance else 1
        rows = [
            (item.event, item.message_id, first_attempts if index == 0 else 1, item.logged)
            for index, item in enumerate(delivered)
            if item.message_id is not None
        ]
        reach = items[-1].event.position if advance else None
        self.store.record_delivered_many(destination, rows, now, advance_to=reach)
        forward.sent += len(rows)
        if reach is not None:
            forward.committable = reach
            forward.destination = replace(
                destination, cursor=reach, failures=0, first_failure_at=None, next_attempt_at=0.0
            )

    def _settle(self, forward: _Forward, item: _Pending, outcome: Outcome, now: float) -> None:
        """Records a message that was not acknowledged: dead-lettered once it has failed too long
        (the first unsettled one only), else failed, holding back its lot."""
        assert item.message is not None
        assert item.message_id is not None
        destination, event, message_id = forward.destination, item.event, item.message_id
        if forward.head is None and self.policy.gives_up(destination.first_failure_at or now, now):
            error = outcome.error or "not acknowledged"
            body = encode_body(item.message).decode("utf-8")
            self.store.record_dead(
                destination, event, message_id, destination.failures + 1, now, error, body, logged=item.logged
            )
            log.warning("destination %s: message %s dead-lettered: %s", destination.id, message_id, error)
            forward.dead += 1
            forward.committable = event.position
            forward.destination = replace(
                destination, cursor=event.position, failures=0, first_failure_at=None, next_attempt_at=0.0
            )
            return
        forward.blocked.add(item.lot)
        if forward.head is None:
            forward.head = (outcome, now)

    def _matcher(self, destination: Destination, kind: DestinationKind) -> Callable[[IndexedEvent], bool]:
        cached = self._matchers.get(destination.id)
        if cached is not None and cached[1] == destination.rollbacks_seen and cached[0] <= destination.cursor:
            return cached[2]
        wanted = kind.matcher(destination, self.store)
        self._matchers[destination.id] = (destination.cursor, destination.rollbacks_seen, wanted)
        return wanted

    def _failed(self, destination: Destination, position: Position, outcome: Outcome, now: float) -> None:
        failures = destination.failures + 1
        delay = self.policy.delay_s(failures, self.rng)
        self.store.record_failure(
            destination,
            position,
            failures=failures,
            first_failure_at=destination.first_failure_at or now,
            next_attempt_at=now + delay,
            error=outcome.error or "not acknowledged",
        )
        log.info(
            "destination %s: attempt %d failed (%s); next in %.1f s",
            destination.id,
            failures,
            outcome.error,
            delay,
        )

    def _message_id(self, event: IndexedEvent) -> str:
        return event_message_id(self.chain_id, event.block_hash, event.tx_hash, event.log_index)

    def close(self) -> None:
        for kind in self.kinds.values():
            kind.close()

    # ---------------------------------------------------------------- all destinations

    def _due(self) -> list[str]:
        """Due destinations, but those that had nothing to do and still have nothing."""
        marker = self.store.marker()
        return [
            destination_id
            for destination_id, cursor in self.store.due(self.clock())
            if self._idle.get(destination_id) != (cursor, marker)
        ]

    def step(self) -> bool:
        """One pass over every due destination, one after another; whether work was left."""
        more = False
        for destination_id in self._due():
            more = self.deliver(destination_id).more or more
        return more

    def run(self, stop: threading.Event, *, poll_s: float = 0.25, workers: int = 4) -> None:
        """Until `stop`: passes over due destinations, `workers` destinations at a time (a slow
        receiver holds up only its own), each destination in one pass at a time."""
        running: dict[str, Future[PassResult]] = {}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="delivery") as pool:
            while not stop.is_set():
                for destination_id, future in list(running.items()):
                    if future.done():
                        del running[destination_id]
                        try:
                            future.result()
                        except Exception:
                            log.exception("destination %s: the pass failed", destination_id)
                try:
                    due = self._due()
                except Exception as error:  # the database is out of reach: try again
                    log.warning("deliveries: %s", error)
                    stop.wait(min(5.0, poll_s * 8))
                    continue
                for destination_id in due:
                    if destination_id not in running:
                        running[destination_id] = pool.submit(self.deliver, destination_id)
                if running:  # a destination with more to do is due again as soon as its pass ends
                    wait(list(running.values()), timeout=poll_s, return_when=FIRST_COMPLETED)
                else:
                    stop.wait(poll_s)
            for future in running.values():
                future.cancel()
        self.close()

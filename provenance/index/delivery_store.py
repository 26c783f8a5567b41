"""Outbound deliveries' SQL: destinations and their cursors, the delivery log, the index's rollbacks.

Every change to a destination's cursor is a compare-and-set on the cursor the caller read, made in
the transaction that records what happened to the message (delivered, dead-lettered, failed, not
wanted): a crash leaves the cursor and the log agreeing, and a replay that moved the cursor
meanwhile makes the deliverer's next record fail (`CursorMoved`) instead of overwriting it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Float,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)

from provenance.domain.deliveries import (
    Destination,
    DestinationLag,
    IndexedEvent,
    LogEntry,
    Position,
    SubscriptionFilter,
)
from provenance.errors import ProvenanceError
from provenance.index.db import writer_lock
from provenance.index.models import Base

LAG_COUNT_BOUND = 1_000
"""`/health` counts a destination's pending events up to this many (a bounded index scan)."""

_destinations = Base.metadata.tables["delivery_destinations"]
_log = Base.metadata.tables["delivery_log"]
_rollbacks = Base.metadata.tables["index_rollbacks"]
_events = Base.metadata.tables["events"]
_times = Base.metadata.tables["block_times"]
_lots = Base.metadata.tables["lots"]
_custody = Base.metadata.tables["custody_moves"]
_edges = Base.metadata.tables["lineage_edges"]
_inputs = Base.metadata.tables["transform_inputs"]
_recorded = Base.metadata.tables["record_times"]


_d = _destinations.c
_AT_CURSOR = and_(
    _d.id == bindparam("d_id"),
    _d.cursor_block == bindparam("d_block"),
    _d.cursor_tx_index == bindparam("d_tx"),
    _d.cursor_log_index == bindparam("d_log"),
)
_NEW_CURSOR: dict[str, Any] = {
    "cursor_block": bindparam("n_block"),
    "cursor_tx_index": bindparam("n_tx"),
    "cursor_log_index": bindparam("n_log"),
}
# Built once: a delivery is two statements (the log's row, the cursor's move), and building them
# anew cost more than running them (SQLAlchemy's argument coercion, under cProfile).
_MOVE_ON = (
    update(_destinations)
    .where(_AT_CURSOR)
    .values(
        **_NEW_CURSOR,
        failures=0,
        first_failure_at=None,
        next_attempt_at=0.0,
        last_error=bindparam("n_error", type_=Text()),
        delivered_count=_d.delivered_count + bindparam("n_delivered", type_=BigInteger()),
        last_delivered_at=func.coalesce(bindparam("n_at", type_=Float(precision=53)), _d.last_delivered_at),
    )
)
_PASS = update(_destinations).where(_AT_CURSOR).values(**_NEW_CURSOR)
_COUNT_MANY = (
    update(_destinations)
    .where(_AT_CURSOR)
    .values(
        delivered_count=_d.delivered_count + bindparam("n_delivered", type_=BigInteger()),
        last_delivered_at=bindparam("n_at"),
    )
)
_FAIL = (
    update(_destinations)
    .where(_AT_CURSOR)
    .values(
        **_NEW_CURSOR,
        failures=bindparam("n_failures"),
        first_failure_at=bindparam("n_first"),
        next_attempt_at=bindparam("n_next"),
        last_error=bindparam("n_error"),
    )
)
_LOG_INSERT = insert(_log)


def _at(destination: Destination) -> dict[str, Any]:
    cursor = destination.cursor
    return {
        "d_id": destination.id,
        "d_block": cursor.block_number,
        "d_tx": cursor.tx_index,
        "d_log": cursor.log_index,
    }


def _to(position: Position) -> dict[str, int]:
    return {"n_block": position.block_number, "n_tx": position.tx_index, "n_log": position.log_index}


def _log_row(
    destination_id: str, event: IndexedEvent, message_id: str, state: str, attempts: int, now: float
) -> dict[str, Any]:
    return {
        "destination_id": destination_id,
        "message_id": message_id,
        "state": state,
        "event_name": event.name,
        "lot_id": event.lot_id,
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "tx_hash": event.tx_hash,
        "tx_index": event.tx_index,
        "log_index": event.log_index,
        "attempts": attempts,
        "recorded_at": now,
        "error": None,
        "body": None,
    }


class CursorMoved(ProvenanceError):
    """A destination's cursor is not where the deliverer read it (a replay moved it): re-read."""


def _position_after(position: Position) -> Any:
    e = _events.c
    return tuple_(e.block_number, e.tx_index, e.log_index) > tuple_(
        position.block_number, position.tx_index, position.log_index
    )


def _event(row: Any) -> IndexedEvent:
    args = row.args if not isinstance(row.args, str) else json.loads(row.args)
    return IndexedEvent(
        name=row.name,
        lot_id=row.lot_id,
        args=args,
        block_number=row.block_number,
        block_hash=row.block_hash,
        tx_hash=row.tx_hash,
        tx_index=row.tx_index,
        log_index=row.log_index,
        block_time=row.timestamp,
    )


def _destination(row: Any) -> Destination:
    return Destination(
        id=row.id,
        kind=row.kind,
        owner=row.owner,
        url=row.url,
        secret=row.secret,
        filter=SubscriptionFilter.from_json(row.filter),
        active=row.active,
        created_at=row.created_at,
        start_block=row.start_block,
        cursor=Position(row.cursor_block, row.cursor_tx_index, row.cursor_log_index),
        rollbacks_seen=row.rollbacks_seen,
        failures=row.failures,
        first_failure_at=row.first_failure_at,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        delivered_count=row.delivered_count,
        last_delivered_at=row.last_delivered_at,
    )


def _entry(row: Any) -> LogEntry:
    return LogEntry(
        destination_id=row.destination_id,
        message_id=row.message_id,
        state=row.state,
        event=IndexedEvent(
            name=row.event_name,
            lot_id=row.lot_id,
            args={},
            block_number=row.block_number,
            block_hash=row.block_hash,
            tx_hash=row.tx_hash,
            tx_index=row.tx_index,
            log_index=row.log_index,
        ),
        attempts=row.attempts,
        recorded_at=row.recorded_at,
        error=row.error,
        body=row.body,
    )


def _cursor_values(position: Position) -> dict[str, int]:
    return {
        "cursor_block": position.block_number,
        "cursor_tx_index": position.tx_index,
        "cursor_log_index": position.log_index,
    }


def _at_cursor(destination: Destination) -> Any:
    d = _destinations.c
    return and_(
        d.id == destination.id,
        d.cursor_block == destination.cursor.block_number,
        d.cursor_tx_index == destination.cursor.tx_index,
        d.cursor_log_index == destination.cursor.log_index,
    )


class DeliveryStore:
    """Destinations, cursors and the delivery log of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite behind the engine's writer lock (shared
        with the indexer and the outbox of this process), so writers queue instead of failing."""
        with writer_lock(self.engine), self.engine.connect() as connection:
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection

    # ---------------------------------------------------------------- destinations

    def create(
        self,
        *,
        kind: str,
        url: str,
        secret: str,
        filter: SubscriptionFilter,
        owner: str | None,
        credential_id: str | None,
        now: float,
        prefix: str = "sub_",
        recorded_from_ms: int | None = None,
    ) -> Destination:
        """A new destination whose cursor is the index's newest event: it is sent what happens
        from now on; with `recorded_from_ms`, also what the index stored since then (the cursor
        starts before the first block recorded at or after it)."""
        destination_id = prefix + secrets.token_hex(12)
        with self._writing() as connection:
            e = _events.c
            last = connection.execute(
                select(e.block_number, e.tx_index, e.log_index)
                .order_by(e.block_number.desc(), e.tx_index.desc(), e.log_index.desc())
                .limit(1)
            ).first()
            start = Position(*last) if last is not None else Position(-1, 0, 0)
            if recorded_from_ms is not None:
                first = connection.execute(
                    select(func.min(_recorded.c.number)).where(_recorded.c.recorded_ms >= recorded_from_ms)
                ).scalar_one()
                if first is not None:
                    start = min(start, Position.after_block(int(first) - 1))
            seen = connection.execute(select(func.coalesce(func.max(_rollbacks.c.id), 0))).scalar_one()
            connection.execute(
                insert(_destinations),
                [
                    {
                        "id": destination_id,
                        "kind": kind,
                        "owner": owner,
                        "credential_id": credential_id,
                        "url": url,
                        "secret": secret,
                        "filter": filter.as_json(),
                        "active": True,
                        "created_at": now,
                        "deleted_at": None,
                        "start_block": start.block_number,
                        **_cursor_values(start),
                        "rollbacks_seen": seen,
                        "failures": 0,
                        "first_failure_at": None,
                        "next_attempt_at": 0.0,
                        "last_error": None,
                        "delivered_count": 0,
                        "last_delivered_at": None,
                    }
                ],
            )
        found = self.get(destination_id)
        assert found is not None
        return found

    def get(self, destination_id: str) -> Destination | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(_destinations).where(_destinations.c.id == destination_id)
            ).first()
        return _destination(row) if row is not None else None

    def destinations(self, *, owner: str | None = None, active_only: bool = True) -> list[Destination]:
        query = select(_destinations).order_by(_destinations.c.created_at, _destinations.c.id)
        if owner is not None:
            query = query.where(func.lower(_destinations.c.owner) == owner.lower())
        if active_only:
            query = query.where(_destinations.c.active.is_(True))
        with self.engine.connect() as connection:
            return [_destination(row) for row in connection.execute(query)]

    def count_active(self, owner: str) -> int:
        d = _destinations.c
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(func.lower(d.owner) == owner.lower(), d.active.is_(True))
                ).scalar_one()
            )

    def deactivate(self, destination_id: str, now: float) -> bool:
        d = _destinations.c
        with self._writing() as connection:
            result = connection.execute(
                update(_destinations)
                .where(d.id == destination_id, d.active.is_(True))
                .values(active=False, deleted_at=now)
            )
        return result.rowcount == 1

    def due(self, now: float) -> list[tuple[str, Position]]:
        """Active destinations whose next attempt is due, the longest waiting first, with their
        cursors."""
        d = _destinations.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(d.id, d.cursor_block, d.cursor_tx_index, d.cursor_log_index)
                .where(d.active.is_(True), d.next_attempt_at <= now)
                .order_by(d.next_attempt_at, d.id)
            )
            return [(row[0], Position(row[1], row[2], row[3])) for row in rows]

    def marker(self) -> tuple[Position | None, int]:
        """The index's newest event and newest rollback: while both stay the same, a destination
        that had nothing left to do still has nothing (two index lookups)."""
        e = _events.c
        with self.engine.connect() as connection:
            last = connection.execute(
                select(e.block_number, e.tx_index, e.log_index)
                .order_by(e.block_number.desc(), e.tx_index.desc(), e.log_index.desc())
                .limit(1)
            ).first()
            rollback = connection.execute(select(func.max(_rollbacks.c.id))).scalar()
        return (Position(*last) if last is not None else None, int(rollback or 0))

    def next_due_at(self) -> float | None:
        d = _destinations.c
        with self.engine.connect() as connection:
            value = connection.execute(select(func.min(d.next_attempt_at)).where(d.active.is_(True))).scalar()
        return float(value) if value is not None else None

    # ---------------------------------------------------------------- reorgs

    def answer_rollbacks(self, destination: Destination) -> bool:
        """Marks for retraction what this destination was sent of the events that the index's
        rollbacks since it last looked have undone (and that are not back, identical, since), and
        moves its cursor back to the oldest such rollback's common ancestor. Returns whether there
        were rollbacks to answer. Dead letters of undone events are set aside as retracted: they
        were never acknowledged, and their events are gone."""
        with self.engine.connect() as connection:  # most passes: nothing new, and no write
            newest_known = connection.execute(select(func.max(_rollbacks.c.id))).scalar()
        if newest_known is None or newest_known <= destination.rollbacks_seen:
            return False
        with self._writing() as connection:
            rows = connection.execute(
                select(_rollbacks.c.id, _rollbacks.c.ancestor_block).where(
                    _rollbacks.c.id > destination.rollbacks_seen
                )
            ).all()
            if not rows:
                return False
            ancestor = min(row.ancestor_block for row in rows)
            newest = max(row.id for row in rows)
            e, log = _events.c, _log.c
            still_indexed = exists().where(
                e.tx_hash == log.tx_hash, e.log_index == log.log_index, e.block_hash == log.block_hash
            )
            undone = and_(log.destination_id == destination.id, log.block_number > ancestor, ~still_indexed)
            connection.execute(
                update(_log).where(undone, log.state == "delivered").values(state="retracting")
            )
            connection.execute(
                update(_log)
                .where(undone, log.state == "dead")
                .values(
                    state="retracted", error="its event was rolled back by a reorg before it was delivered"
                )
            )
            rewound = min(destination.cursor, Position.after_block(ancestor))
            result = connection.execute(
                update(_destinations)
                .where(_at_cursor(destination), _destinations.c.rollbacks_seen == destination.rollbacks_seen)
                .values(rollbacks_seen=newest, **_cursor_values(rewound))
            )
            if result.rowcount != 1:
                raise CursorMoved(f"destination {destination.id} moved while its rollbacks were answered")
        return True

    def pending_retractions(self, destination_id: str, limit: int) -> list[LogEntry]:
        """Messages to retract, the newest event first (undone in the reverse of chain order)."""
        log = _log.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_log)
                .where(log.destination_id == destination_id, log.state == "retracting")
                .order_by(log.block_number.desc(), log.tx_index.desc(), log.log_index.desc())
                .limit(limit)
            )
            return [_entry(row) for row in rows]

    def record_retracted(self, destination: Destination, message_id: str, attempts: int, now: float) -> None:
        with self._writing() as connection:
            connection.execute(
                update(_log)
                .where(
                    _log.c.destination_id == destination.id,
                    _log.c.message_id == message_id,
                    _log.c.state == "retracting",
                )
                .values(state="retracted", attempts=attempts, recorded_at=now, error=None)
            )
            self._move_on(connection, destination, destination.cursor)

    # ---------------------------------------------------------------- forward

    def events_after(self, position: Position, limit: int) -> list[IndexedEvent]:
        """The index's events after `position`, in chain order, with their blocks' times."""
        e = _events.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    e.name,
                    e.lot_id,
                    e.args,
                    e.block_number,
                    e.block_hash,
                    e.tx_hash,
                    e.tx_index,
                    e.log_index,
                    _times.c.timestamp,
                )
                .outerjoin(_times, _times.c.number == e.block_number)
                .where(_position_after(position))
                .order_by(e.block_number, e.tx_index, e.log_index)
                .limit(limit)
            )
            return [_event(row) for row in rows]

    def known(self, destination_id: str, message_ids: Iterable[str]) -> dict[str, str]:
        """The log's state of each of these messages that it has a row for."""
        wanted = sorted(set(message_ids))
        found: dict[str, str] = {}
        log = _log.c
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    select(log.message_id, log.state).where(
                        log.destination_id == destination_id,
                        log.message_id.in_(wanted[start : start + 500]),
                    )
                )
                found.update((row[0], row[1]) for row in rows)
        return found

    def watched(self, filter: SubscriptionFilter, up_to_block: int) -> tuple[set[str], set[int]]:
        """The lots a subscription watched as of block `up_to_block` (those its holder held by
        then, those it names, and with descendants every lot made from them by then), and the
        transformations that had consumed one of them: where a pass over the events after that
        block starts (`provenance.domain.deliveries.Watch` learns the rest in chain order), so
        which events are sent does not depend on when the deliverer runs."""
        lots: set[str] = set(filter.lot_ids)
        with self.engine.connect() as connection:
            if filter.holder:
                holder = filter.holder.lower()
                lot, c = _lots.c, _custody.c
                lots.update(
                    row[0]
                    for row in connection.execute(
                        select(lot.lot_id).where(
                            func.lower(lot.creator) == holder, lot.block_number <= up_to_block
                        )
                    )
                )
                lots.update(
                    row[0]
                    for row in connection.execute(
                        select(c.lot_id).where(
                            c.action == "accepted",
                            func.lower(c.to_address) == holder,
                            c.block_number <= up_to_block,
                        )
                    )
                )
            if filter.descendants and lots:
                frontier = set(lots)
                while frontier:
                    chunk = sorted(frontier)[:500]
                    frontier.difference_update(chunk)
                    found = {
                        row[0]
                        for row in connection.execute(
                            select(_edges.c.output_lot_id).where(
                                _edges.c.input_lot_id.in_(chunk), _edges.c.block_number <= up_to_block
                            )
                        )
                    }
                    frontier.update(found - lots)
                    lots.update(found)
            transforms: set[int] = set()
            if filter.descendants and lots:
                ordered = sorted(lots)
                for start in range(0, len(ordered), 500):
                    transforms.update(
                        int(row[0])
                        for row in connection.execute(
                            select(_inputs.c.transform_id).where(
                                _inputs.c.lot_id.in_(ordered[start : start + 500]),
                                _inputs.c.block_number <= up_to_block,
                            )
                        )
                    )
        return lots, transforms

    def record_delivered_many(
        self,
        destination: Destination,
        delivered: Sequence[tuple[IndexedEvent, str, int, bool]],
        now: float,
        *,
        advance_to: Position | None,
    ) -> None:
        """Acknowledged messages (event, message id, attempts, logged: the log has a row for it
        already, retracted and now sent again), in one transaction: logged as delivered, and the
        cursor moved to `advance_to` (the last of them, or an event passed after it) or, with None,
        left where the deliverer read it (an earlier message is unsettled), which it must still be."""
        with self._writing() as connection:
            fresh = []
            for event, message_id, attempts, logged in delivered:
                if logged:
                    self._log_event(
                        connection,
                        destination.id,
                        event,
                        message_id,
                        "delivered",
                        attempts,
                        now,
                        None,
                        None,
                        True,
                    )
                else:
                    fresh.append(_log_row(destination.id, event, message_id, "delivered", attempts, now))
            if fresh:
                connection.execute(_LOG_INSERT, fresh)
            if advance_to is not None:
                self._move_on(connection, destination, advance_to, delivered=len(delivered), at=now)
            else:
                counted = {**_at(destination), "n_at": now, "n_delivered": len(delivered)}
                self._checked(connection.execute(_COUNT_MANY, counted), destination)

    def record_dead(
        self,
        destination: Destination,
        event: IndexedEvent,
        message_id: str,
        attempts: int,
        now: float,
        error: str,
        body: str,
        *,
        logged: bool = False,
    ) -> None:
        """`event`'s message failed for too long: a dead letter; the cursor moves on past it."""
        with self._writing() as connection:
            self._log_event(
                connection, destination.id, event, message_id, "dead", attempts, now, error, body, logged
            )
            self._move_on(connection, destination, event.position, error=error)

    def record_passed(self, destination: Destination, position: Position) -> None:
        """Events up to `position` are not for this destination (or were settled already)."""
        with self._writing() as connection:
            self._checked(connection.execute(_PASS, {**_at(destination), **_to(position)}), destination)

    def record_failure(
        self,
        destination: Destination,
        position: Position,
        *,
        failures: int,
        first_failure_at: float,
        next_attempt_at: float,
        error: str,
    ) -> None:
        """A message failed: the cursor moves to just before it, the next try is scheduled."""
        with self._writing() as connection:
            result = connection.execute(
                _FAIL,
                {
                    **_at(destination),
                    **_to(position),
                    "n_failures": failures,
                    "n_first": first_failure_at,
                    "n_next": next_attempt_at,
                    "n_error": error[:2000],
                },
            )
            self._checked(result, destination)

    def _move_on(
        self,
        connection: Connection,
        destination: Destination,
        position: Position,
        *,
        delivered: int = 0,
        at: float | None = None,
        error: str | None = None,
    ) -> None:
        parameters = {
            **_at(destination),
            **_to(position),
            "n_error": error,
            "n_delivered": delivered,
            "n_at": at,
        }
        self._checked(connection.execute(_MOVE_ON, parameters), destination)

    @staticmethod
    def _checked(result: Any, destination: Destination) -> None:
        if result.rowcount != 1:
            raise CursorMoved(f"destination {destination.id}'s cursor moved (a replay?)")

    @staticmethod
    def _log_event(
        connection: Connection,
        destination_id: str,
        event: IndexedEvent,
        message_id: str,
        state: str,
        attempts: int,
        now: float,
        error: str | None,
        body: str | None,
        logged: bool,
    ) -> None:
        values = {
            "state": state,
            "event_name": event.name,
            "lot_id": event.lot_id,
            "block_number": event.block_number,
            "block_hash": event.block_hash,
            "tx_hash": event.tx_hash,
            "tx_index": event.tx_index,
            "log_index": event.log_index,
            "attempts": attempts,
            "recorded_at": now,
            "error": error,
            "body": body,
        }
        if logged:  # an event back after its retraction keeps its one row
            connection.execute(
                update(_log)
                .where(_log.c.destination_id == destination_id, _log.c.message_id == message_id)
                .values(values)
            )
        else:
            connection.execute(
                _LOG_INSERT, {"destination_id": destination_id, "message_id": message_id, **values}
            )

    # ---------------------------------------------------------------- operators

    def replay(self, destination_id: str, from_block: int) -> int:
        """Sends again everything from `from_block` on (dead letters too): forgets the log's
        settled entries from there and moves the cursor back. Returns the entries forgotten."""
        with self._writing() as connection:
            row = connection.execute(
                select(_destinations).where(_destinations.c.id == destination_id)
            ).first()
            if row is None:
                raise LookupError(destination_id)
            destination = _destination(row)
            log = _log.c
            forgotten = connection.execute(
                delete(_log).where(
                    log.destination_id == destination_id,
                    log.block_number >= from_block,
                    log.state.in_(("delivered", "dead", "retracted")),
                )
            ).rowcount
            rewound = min(destination.cursor, Position.after_block(from_block - 1))
            connection.execute(
                update(_destinations)
                .where(_destinations.c.id == destination_id)
                .values(
                    **_cursor_values(rewound),
                    failures=0,
                    first_failure_at=None,
                    next_attempt_at=0.0,
                )
            )
        return int(forgotten)

    def dead_letters(self, destination_id: str | None = None, limit: int = 100) -> list[LogEntry]:
        log = _log.c
        query = (
            select(_log).where(log.state == "dead").order_by(log.block_number, log.tx_index, log.log_index)
        )
        if destination_id is not None:
            query = query.where(log.destination_id == destination_id)
        with self.engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query.limit(limit))]

    def log_entries(self, destination_id: str, states: Sequence[str] = ("delivered",)) -> list[LogEntry]:
        log = _log.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_log)
                .where(log.destination_id == destination_id, log.state.in_(tuple(states)))
                .order_by(log.block_number, log.tx_index, log.log_index)
            )
            return [_entry(row) for row in rows]

    def lags(self, destinations: Sequence[Destination] | None = None) -> list[DestinationLag]:
        """How far behind each active destination is."""
        chosen = self.destinations() if destinations is None else destinations
        found: list[DestinationLag] = []
        e, log = _events.c, _log.c
        with self.engine.connect() as connection:
            states: dict[tuple[str, str], int] = {
                (row[0], row[1]): int(row[2])
                for row in connection.execute(
                    select(log.destination_id, log.state, func.count())
                    .where(log.state.in_(("retracting", "dead")))
                    .group_by(log.destination_id, log.state)
                )
            }
            for destination in chosen:
                pending = (
                    select(e.block_number)
                    .where(_position_after(destination.cursor))
                    .limit(LAG_COUNT_BOUND)
                    .subquery()
                )
                count = connection.execute(select(func.count()).select_from(pending)).scalar_one()
                oldest = connection.execute(
                    select(_times.c.timestamp)
                    .join(_events, _times.c.number == e.block_number)
                    .where(_position_after(destination.cursor))
                    .order_by(e.block_number)
                    .limit(1)
                ).scalar()
                found.append(
                    DestinationLag(
                        destination_id=destination.id,
                        kind=destination.kind,
                        cursor_block=destination.cursor.block_number,
                        pending_events=int(count),
                        oldest_pending_block_time=None if oldest is None else int(oldest),
                        retractions_pending=states.get((destination.id, "retracting"), 0),
                        dead_letters=states.get((destination.id, "dead"), 0),
                        failures=destination.failures,
                        last_error=destination.last_error,
                    )
                )
        return found

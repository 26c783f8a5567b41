"""Group commit: many threads' small writes share one database transaction.

The API's request threads each store one operation. Committed one by one, every insert takes the
index's single-writer lock (SQLite) and a BEGIN/COMMIT of its own, and the outbox worker, which
needs the same lock a few times per step, queues behind dozens of them. Here the first thread to arrive leads: it runs every write queued
so far in one transaction, commits once, and hands each thread its own result. If one write of
the group fails (e.g. a unique-key race), the transaction is rolled back and the group runs again
with a SAVEPOINT around each write, so that write fails alone (SAVEPOINTs for every write, always,
would cost two more statements each). Figures: docs/benchmarks.md, "Profiles behind the code".
A thread returns
only after the commit that holds its write, so an acknowledged write is as durable as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

T = TypeVar("T")

MAX_GROUP = 64
"""Writes in one transaction at most: bounds how long the writer lock is held at once."""


@dataclass(eq=False)
class _Slot(Generic[T]):
    work: Callable[[Connection], T]
    signal: threading.Event = field(default_factory=threading.Event)
    """Set once: when the slot's write is committed (or failed), or when it is made the leader."""
    lead: bool = False
    finished: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, transaction: Callable[[], AbstractContextManager[Connection]]) -> None:
        """`transaction()` opens one write transaction (with the writer lock, on SQLite)."""
        self._transaction = transaction
        self._lock = threading.Lock()
        self._queue: list[_Slot[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` run in a committed transaction, possibly shared with other threads'
        work; its result, or its exception raised here."""
        slot: _Slot[T] = _Slot(work)
        with self._lock:
            self._queue.append(slot)
            if not self._leading:
                self._leading = slot.lead = True
        if not slot.lead:
            slot.signal.wait()
        if not slot.finished:  # it leads (from the start, or handed the lead by the last leader)
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        result: T = slot.result
        return result

    def _lead(self, own: _Slot[Any]) -> None:
        """Commits groups until its own write is in one, then hands the lead to the oldest waiting
        slot (so no thread leads for longer than it has to)."""
        try:
            while not own.finished:
                with self._lock:
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._commit(group)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.signal.set()
                else:
                    self._leading = False

    def _commit(self, group: list[_Slot[Any]]) -> None:
        try:
            if not self._all_at_once(group):
                self._one_by_one(group)
        except BaseException as error:  # the transaction failed: nothing of the group is stored
            for slot in group:
                slot.error, slot.result = error, None
        for slot in group:
            slot.finished = True
            slot.signal.set()

    def _all_at_once(self, group: list[_Slot[Any]]) -> bool:
        """The usual case: every write of the group succeeds. False, with nothing stored, if one
        of them failed."""

        class _Failed(Exception):
            pass

        try:
            with self._transaction() as connection:
                results = []
                for slot in group:
                    try:
                        results.append(slot.work(connection))
                    except Exception as error:
                        raise _Failed from error
        except _Failed:
            return False
        for slot, result in zip(group, results, strict=True):
            slot.result = result
        return True

    def _one_by_one(self, group: list[_Slot[Any]]) -> None:
        with self._transaction() as connection:
            for slot in group:
                try:
                    with connection.begin_nested():
                        slot.result = slot.work(connection)
                except Exception as error:  # this write alone fails; the others go on
                    slot.error = error

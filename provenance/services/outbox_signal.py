"""The outbox's signal within one process: an idle worker wakes when work is stored, and the API's
waiters learn which operations became final, without polling the database.

Between processes the same news travels by PostgreSQL NOTIFY (`provenance.index.wakeups`) or by
serve's pipes; whoever hears it passes it on here (`poke`, `wake`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


class OutboxSignal:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0
        self._final_listeners: list[Callable[[Sequence[str]], None]] = []

    def add_final_listener(self, listener: Callable[[Sequence[str]], None]) -> None:
        """`listener(operation_ids)` is called, from whichever thread learnt it, with operations
        made final by a worker in this process or named by `wake` (a worker in another process)."""
        with self._changed:
            self._final_listeners.append(listener)

    def work_generation(self) -> int:
        """Counts what was submitted or recorded (or poked from elsewhere)."""
        with self._changed:
            return self._generation

    def wait_for_work(self, timeout_s: float, since: int | None = None) -> None:
        """Returns once something is submitted or recorded after generation `since` (default:
        now), or after `timeout_s`: an idle worker starts on new work at once. A worker passes the
        generation it saw *before* its step, so work that arrived during the step wakes it at once."""
        with self._changed:
            generation = self._generation if since is None else since
            self._changed.wait_for(lambda: self._generation != generation, timeout_s)

    def poke(self) -> None:
        """Wakes an idle worker (work was stored by another process)."""
        self.notify()

    def wake(self, operation_ids: Sequence[str]) -> None:
        """Tells the final listeners of `operation_ids` (made final by a worker in another process)."""
        self.notify(operation_ids)

    def notify(self, operation_ids: Sequence[str] = ()) -> None:
        """Wakes an idle worker, and tells the final listeners of `operation_ids` (now final)."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()
            listeners = list(self._final_listeners) if operation_ids else []
        for listener in listeners:
            listener(operation_ids)

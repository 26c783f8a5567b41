"""`?wait=true`: a write's answer held back until its operation is final, waited for on the event loop.

A waiting request used to hold a thread of the pool: it read its operation's status, slept on an
event until the worker named the operation, then read the whole operation, three reads and two
thread wake-ups per write, each queued for the GIL behind 32 other request threads
(bench/api_write.py: most of the API's time at 32 clients). Here a waiting request is a future on
the event loop. When the outbox names operations that became final (the worker's commit in this
process, or its message from the worker process), the futures of those operations are resolved
by one read of all of them, whole (`OutboxStore.final_views`). A request registers its future
before its operation is stored (`expect`), so no notice can slip by between the two.

Notices are best effort (a restarting worker loses some): while anything waits, one task per
event loop also reads the waited operations every `poll_s`, in one query for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection, Sequence

from fastapi.concurrency import run_in_threadpool

from provenance.domain.operations import OperationView
from provenance.index.outbox import OutboxStore

log = logging.getLogger("provenance.api")

POLL_S = 0.25
"""How often the waited operations are read when no notice names them first."""


class FinalWaits:
    """The operations that requests wait for, by id, and the futures that wait for them."""

    def __init__(self, outbox: OutboxStore, poll_s: float = POLL_S) -> None:
        self._outbox = outbox
        self._poll_s = poll_s
        self._lock = threading.Lock()
        """Guards `_waiting` and `_pollers`: notices arrive on other threads."""
        self._waiting: dict[str, list[asyncio.Future[OperationView]]] = {}
        self._pollers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._resolving: set[asyncio.Task[None]] = set()
        """Running reads: the event loop keeps only weak references to its tasks."""
        outbox.signal.add_final_listener(self._noticed)

    def expect(self, operation_id: str) -> asyncio.Future[OperationView]:
        """A future resolved with the operation once it is final; call `forget` when done with it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[OperationView] = loop.create_future()
        with self._lock:
            self._waiting.setdefault(operation_id, []).append(future)
            if loop not in self._pollers:
                for closed in [other for other in self._pollers if other.is_closed()]:
                    del self._pollers[closed]  # a loop that ended while its requests waited
                self._pollers[loop] = loop.create_task(self._poll(loop))
        return future

    def waiting(self) -> int:
        """How many requests wait."""
        with self._lock:
            return sum(len(futures) for futures in self._waiting.values())

    def forget(self, operation_id: str, future: asyncio.Future[OperationView]) -> None:
        with self._lock:
            futures = self._waiting.get(operation_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(operation_id, None)
        future.cancel()

    async def until_final(
        self, operation_id: str, future: asyncio.Future[OperationView], timeout_s: float
    ) -> OperationView | None:
        """The operation once final (through `future`, from `expect`), or as it stands after
        `timeout_s`; None if it does not exist. Forgets `future` either way."""
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return await run_in_threadpool(self._outbox.get, operation_id)
        finally:
            self.forget(operation_id, future)

    # ------------------------------------------------------------------ notices and polls

    def _noticed(self, operation_ids: Sequence[str]) -> None:
        """From any thread: hands the operations someone waits for to their event loops."""
        by_loop: dict[asyncio.AbstractEventLoop, list[str]] = {}
        with self._lock:
            for operation_id in operation_ids:
                for future in self._waiting.get(operation_id, ()):
                    by_loop.setdefault(future.get_loop(), []).append(operation_id)
        for loop, ids in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._resolve_soon, ids)
            except RuntimeError:  # that loop is closed: its requests are gone
                continue

    def _resolve_soon(self, operation_ids: list[str]) -> None:
        task = asyncio.get_running_loop().create_task(self._resolve(dict.fromkeys(operation_ids)))
        self._resolving.add(task)
        task.add_done_callback(self._resolved)

    def _resolved(self, task: asyncio.Task[None]) -> None:
        self._resolving.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the poll answers them instead
            log.warning("waiting requests could not read their operations: %s", task.exception())

    async def _resolve(self, operation_ids: Collection[str]) -> None:
        views = await run_in_threadpool(self._outbox.final_views, operation_ids)
        with self._lock:
            for view in views:
                for future in self._waiting.get(view.id, ()):
                    if not future.done():
                        future.set_result(view)

    async def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reads what this loop's requests wait for every `poll_s`, until none wait."""
        try:
            while True:
                await asyncio.sleep(self._poll_s)
                with self._lock:
                    ids = [
                        operation_id
                        for operation_id, futures in self._waiting.items()
                        if any(future.get_loop() is loop for future in futures)
                    ]
                    if not ids:
                        del self._pollers[loop]
                        return
                try:
                    await self._resolve(ids)
                except Exception as error:  # the database is away: the next poll tries again
                    log.warning("waiting requests could not read their operations: %s", error)
        except BaseException:
            with self._lock:
                if self._pollers.get(loop) is asyncio.current_task():
                    del self._pollers[loop]
            raise

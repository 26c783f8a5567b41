"""The chain's head as the API last heard it, so a read can say how far the index is behind.

A read answers from the index alone; asking the node inside a read makes reads as slow, and as
fragile, as the node (a node busy saving its state held every such read). In the
server the head is watched: a thread of its own asks the node once a second, and reads and
`/health` copy what it last heard. Without a watcher (an app built for a test), at most one read a
second asks, and the others copy what was last heard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from provenance.bootstrap import brief_error

UNREACHABLE_AFTER_S = 3.0
"""No answer from the node for this long, and reads say it is unreachable."""


@dataclass(frozen=True)
class HeadSeen:
    block: int | None
    """The last head the node reported; None before its first answer."""
    reachable: bool
    error: str | None = None
    """Why the last question failed, if it did."""
    index_cursor: int | None = None
    """The index's cursor read just before that head: on a healthy chain never above it."""


class ChainHead:
    def __init__(
        self,
        read_head: Callable[[], int],
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        read_index: Callable[[], int | None] | None = None,
    ) -> None:
        self._read_head = read_head
        self._read_index = read_index
        self._interval_s = interval_s
        self._clock = clock
        self._block: int | None = None
        self._cursor: int | None = None
        self._error: str | None = None
        self._answered_at: float | None = None
        self._asked_at: float | None = None
        self._asking = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def watched(self) -> bool:
        return self._thread is not None

    def watch(self) -> None:
        """Asks the node once per interval on a thread of its own, until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watching, name="chain-head", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=5)

    def _watching(self) -> None:
        while not self._stop.is_set():
            self.ask()
            self._stop.wait(self._interval_s)

    def ask(self, index_cursor: int | None = None) -> None:
        """One question to the node (and, first, the index's cursor, unless the caller read it just
        now: `index_cursor`); skipped if one is under way."""
        if not self._asking.acquire(blocking=False):
            return
        try:
            self._asked_at = self._clock()
            cursor = index_cursor
            try:
                if cursor is None and self._read_index is not None:
                    cursor = self._read_index()
                block = self._read_head()
            except Exception as error:  # the node's or database's errors, whatever the transport
                self._error = brief_error(error)
            else:
                self._block, self._cursor, self._error = block, cursor, None
                self._answered_at = self._clock()
        finally:
            self._asking.release()

    def seen(self, index_cursor: int | None = None) -> HeadSeen:
        """What was last heard; never waits on the node while watched. A read passes the index
        block it read on its own connection, so an unwatched app's question takes no other one."""
        if self._thread is None:
            due = self._asked_at is None or self._clock() - self._asked_at >= self._interval_s
            if due:
                self.ask(index_cursor)
        answered_at = self._answered_at
        fresh = answered_at is not None and self._clock() - answered_at < UNREACHABLE_AFTER_S
        error = self._error
        if error is None and not fresh:
            error = f"no answer for {UNREACHABLE_AFTER_S:.0f} s"
        return HeadSeen(self._block, fresh and self._error is None, error, self._cursor)

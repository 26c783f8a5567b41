"""The chain's head as the API last saw it, so a read can say how far the index is behind.

A read answers from the index alone; asking the node on every read would make reads as slow, and
as fragile, as the node. At most one read a second asks it (the others, and any read while that
one waits, copy what was last heard), so a node that hangs holds up one read, never all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

UNREACHABLE_AFTER_S = 3.0
"""No answer from the node for this long, and reads say it is unreachable."""


@dataclass(frozen=True)
class HeadSeen:
    block: int | None
    """The last head the node reported; None before its first answer."""
    reachable: bool


class ChainHead:
    def __init__(
        self,
        read_head: Callable[[], int],
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_head = read_head
        self._interval_s = interval_s
        self._clock = clock
        self._block: int | None = None
        self._answered_at: float | None = None
        self._asked_at: float | None = None
        self._failed = False
        self._asking = threading.Lock()

    def seen(self) -> HeadSeen:
        now = self._clock()
        due = self._asked_at is None or now - self._asked_at >= self._interval_s
        if due and self._asking.acquire(blocking=False):
            try:
                self._asked_at = now
                try:
                    block = self._read_head()
                except Exception:  # the node's transport errors, whatever the provider
                    self._failed = True
                else:
                    self._block, self._answered_at, self._failed = block, self._clock(), False
            finally:
                self._asking.release()
        answered_at = self._answered_at
        fresh = answered_at is not None and self._clock() - answered_at < UNREACHABLE_AFTER_S
        return HeadSeen(self._block, fresh and not self._failed)

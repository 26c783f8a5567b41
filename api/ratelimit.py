"""Write rate limits per credential: a token bucket each, in memory.

Each credential may make `burst` writes at once and `rate_per_s` a second after that; a write over
the limit is a 429 with `Retry-After`. The buckets live in this process: with several API replicas
each enforces its own limit (a shared limit belongs in front of the API). Keyed by credential id,
so there is one bucket per credential ever created, never one per request or per address.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from provenance.errors import ProvenanceError


class RateLimited(ProvenanceError):
    """A credential made more writes than its limit allows; `retry_after_s` says when to try again."""

    def __init__(self, rate_per_s: float, burst: int, retry_after_s: int) -> None:
        super().__init__(
            f"write rate limit exceeded: {rate_per_s:g} writes/s per credential, bursts of {burst}; "
            f"retry after {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


@dataclass
class _Bucket:
    tokens: float
    updated: float


class WriteRateLimiter:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate_per_s > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spends one write of `key`'s bucket; raises RateLimited if it is empty."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate_per_s)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait_s = (1.0 - bucket.tokens) / self.rate_per_s
        raise RateLimited(self.rate_per_s, self.burst, max(1, math.ceil(wait_s)))

"""Leading a role that must have one holder across replicas: the indexer, the outbox worker.

Every replica that may run the role runs `Leadership.run`: it tries for the role's lease, and
while it holds it, runs the role (`lead`) and renews the lease on a thread of its own. When a
renewal fails (another replica took the lease after this one was paused, or the database was out
of reach for longer than the lease), `lead` is told to stop, and the replica goes back to trying.
What keeps a former leader from writing after that is not this loop but the fence on its commits
(`provenance.index.leases.fence_commits`): a leader that does not yet know it lost still cannot
commit. A clean stop releases the lease, so a standby takes over at its next try.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from provenance.errors import LeaseLost

log = logging.getLogger("provenance.leadership")

INDEXER = "indexer"
OUTBOX_WORKER = "outbox-worker"
DELIVERIES = "deliveries"
"""The roles: one lease each. The outbox worker's one lease covers every sender it signs for;
the deliverer's every destination."""


class LeaseTable(Protocol):
    def acquire(self, name: str, holder: str, ttl_s: float) -> int | None: ...
    def renew(self, name: str, token: int, ttl_s: float) -> bool: ...
    def release(self, name: str, token: int) -> None: ...


def holder_name(role: str, pid: int | None = None) -> str:
    """Who holds a lease, as operators read it: host, process (this one by default) and role."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}:{role}"


class Leadership:
    """Runs a role only while this process holds its lease."""

    def __init__(
        self,
        leases: LeaseTable,
        role: str,
        *,
        ttl_s: float,
        holder: str | None = None,
        retry_s: float | None = None,
    ) -> None:
        self.leases = leases
        self.role = role
        self.ttl_s = ttl_s
        self.holder = holder or holder_name(role)
        self.retry_s = retry_s if retry_s is not None else min(1.0, ttl_s / 5)
        """How often a standby tries for the lease: with the lease's length, bounds a takeover."""
        self._token: int | None = None
        self.terms = 0
        """How many times this process became the leader."""

    @property
    def token(self) -> int | None:
        """The fencing token while this process leads; None otherwise (every commit is refused)."""
        return self._token

    def run(self, stop: threading.Event, lead: Callable[[threading.Event], None]) -> None:
        """Until `stop`: wait for the lease, then `lead(leading)` until `leading` is set (the lease
        was lost or `stop` came). `lead` builds its role afresh each time: nothing it cached while
        it led before may be trusted after another replica led."""
        while not stop.is_set():
            token = self._try_acquire()
            if token is None:
                stop.wait(self.retry_s)
                continue
            self._token = token
            self.terms += 1
            log.info("%s: %s leads with token %d", self.role, self.holder, token)
            leading = threading.Event()
            renewer = threading.Thread(
                target=self._keep, args=(token, stop, leading), name=f"{self.role}-lease", daemon=True
            )
            renewer.start()
            try:
                lead(leading)
            except LeaseLost as error:
                log.warning("%s: %s", self.role, error)
            finally:
                leading.set()
                renewer.join()
                if self._token == token:
                    self._token = None
                    self._release(token)

    def _try_acquire(self) -> int | None:
        try:
            return self.leases.acquire(self.role, self.holder, self.ttl_s)
        except Exception as error:  # the database is out of reach: a standby tries again
            log.warning("%s: could not ask for the lease: %s", self.role, error)
            return None

    def _release(self, token: int) -> None:
        try:
            self.leases.release(self.role, token)
        except Exception as error:  # it ends by itself anyway
            log.warning("%s: could not release the lease: %s", self.role, error)

    def _keep(self, token: int, stop: threading.Event, leading: threading.Event) -> None:
        """Renews every third of the lease; says it is lost when a renewal is refused, or when
        none succeeded for a whole lease (the database out of reach: the lease has ended)."""
        renewed_at = time.monotonic()
        interval = self.ttl_s / 3
        while not leading.is_set():
            if stop.wait(min(0.2, interval)):
                break
            now = time.monotonic()
            if now - renewed_at < interval:
                continue
            try:
                held = self.leases.renew(self.role, token, self.ttl_s)
            except Exception as error:
                held = now - renewed_at < self.ttl_s
                log.warning("%s: could not renew the lease: %s", self.role, error)
            else:
                if held:
                    renewed_at = now
            if not held:
                log.warning("%s: %s lost the lease of token %d; standing by", self.role, self.holder, token)
                self._token = None
                break
        leading.set()

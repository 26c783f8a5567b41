"""Wake-ups across replicas through PostgreSQL's LISTEN/NOTIFY: an operation stored on one API
replica wakes the outbox worker on another host at once, and operations made final there end the
`?wait=true` waits of every replica, instead of at their next poll.

A notification is sent inside the transaction that stores what it announces, so it is delivered
if and only if that commits; it is only a wake-up: every listener reads the database afterwards,
and the polls stay as the backstop for a notification missed while a listener reconnected.
Every payload starts with its sender's origin (one per `serve` process tree): a listener skips
its own tree's notices, whose processes already told each other through pipes.
SQLite has one host and no NOTIFY: there the processes of one `serve` use pipes (background.py).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("provenance.wakeups")

WORK_CHANNEL = "provenance_outbox_work"
"""Something was stored for the outbox worker to send."""
FINAL_CHANNEL = "provenance_outbox_final"
"""Operations were made final; the payload is the origin and their ids, separated by spaces."""
MAX_PAYLOAD_BYTES = 7900
"""PostgreSQL refuses a payload of 8000 bytes or more: longer lists of ids go in several."""

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def new_origin() -> str:
    """A name for one `serve` process tree in its notices (no spaces: it heads the payload)."""
    return secrets.token_hex(8)


def notifies(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def announce_work(connection: Connection, origin: str) -> None:
    """In the storing transaction: a worker listening anywhere wakes when it commits. PostgreSQL
    sends the same notice once per transaction, however many operations a group commit stores."""
    if notifies(connection):
        connection.execute(_NOTIFY, {"channel": WORK_CHANNEL, "payload": origin})


def announce_final(connection: Connection, operation_ids: Sequence[str], origin: str) -> None:
    """In the transaction that made `operation_ids` final: every replica's waiters are told."""
    if not operation_ids or not notifies(connection):
        return
    for payload in final_payloads(operation_ids, origin):
        connection.execute(_NOTIFY, {"channel": FINAL_CHANNEL, "payload": payload})


def final_payloads(operation_ids: Sequence[str], origin: str) -> list[str]:
    """`origin` and the ids, in payloads PostgreSQL accepts (an id is never split)."""
    payloads: list[str] = []
    current: list[str] = []
    size = len(origin)
    for operation_id in operation_ids:
        if current and size + 1 + len(operation_id) > MAX_PAYLOAD_BYTES:
            payloads.append(" ".join([origin, *current]))
            current, size = [], len(origin)
        size += 1 + len(operation_id)
        current.append(operation_id)
    if current:
        payloads.append(" ".join([origin, *current]))
    return payloads


class WakeupListener:
    """A thread holding one PostgreSQL session that LISTENs on both channels and calls `on_work()`
    or `on_final(ids)` for the notices of other origins than `origin`. It reconnects with back-off
    when the session is lost; on every (re)connect it calls `on_work()` once, since a wake-up may
    have been missed while it was away."""

    def __init__(
        self,
        engine: Engine,
        *,
        origin: str,
        on_work: Callable[[], None] | None = None,
        on_final: Callable[[Sequence[str]], None] | None = None,
        poll_s: float = 1.0,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("LISTEN/NOTIFY needs PostgreSQL")
        if not origin or origin.split() != [origin]:
            raise ValueError("an origin is one word")
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._origin = origin
        self._on_work = on_work
        self._on_final = on_final
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-wakeups", daemon=True)
        self.listening = threading.Event()
        """Set while a session listens (for tests and /health); cleared while it reconnects."""
        self.session_pid: int | None = None
        """The listening session's backend pid (`pg_stat_activity`)."""

    def start(self) -> WakeupListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._poll_s + 5)

    def _run(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, application_name="provenance-wakeups"
                ) as session:
                    session.execute(f"LISTEN {WORK_CHANNEL}")
                    session.execute(f"LISTEN {FINAL_CHANNEL}")
                    self.session_pid = session.info.backend_pid
                    self.listening.set()
                    backoff = 0.5
                    self._deliver(WORK_CHANNEL, "")  # from no origin: never skipped
                    while not self._stop.is_set():
                        for notice in session.notifies(timeout=self._poll_s):
                            self._deliver(notice.channel, notice.payload)
            except Exception as error:  # lost session or server: listen again, the polls cover the gap
                self.listening.clear()
                if self._stop.is_set():
                    return
                log.warning(
                    "wake-ups: PostgreSQL session lost (%s); listening again in %.1f s", error, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.listening.clear()

    def _deliver(self, channel: str, payload: str) -> None:
        origin, *operation_ids = payload.split() or [""]
        if origin == self._origin:
            return
        try:
            if channel == WORK_CHANNEL and self._on_work is not None:
                self._on_work()
            elif channel == FINAL_CHANNEL and self._on_final is not None:
                self._on_final(operation_ids)
        except Exception:  # a listener's bug must not end the wake-ups of the others
            log.exception("wake-ups: a listener failed on %s", channel)

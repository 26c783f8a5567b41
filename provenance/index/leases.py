"""Leases in SQL: one holder per role across replicas, and commits fenced by the holder's token.

A role that must have exactly one holder at a time (the indexer, the outbox worker) has a row in
`leases`: its holder, its fencing token and when the lease ends, in the database's clock (replicas'
own clocks may disagree; the database's is the one they share). Acquiring takes a row whose lease
has ended and adds one to its token; renewing moves the end while the token is still ours and the
end has not passed; releasing ends it now, so a standby need not wait.

A lease alone cannot stop a leader that was paused (SIGSTOP, a long GC, a VM migration) from
committing after its lease ended: it does not know it was paused. `fence_commits` makes every
commit of the leader's engine check, in the commit's own transaction, that the token is still the
lease's and the lease has not ended. On PostgreSQL the check takes the row `FOR SHARE`, so a
takeover's UPDATE waits until that commit is done, and a commit either lands while the lease was
held or not at all. On SQLite the writer's lock (`BEGIN IMMEDIATE`) orders the two the same way.

A leader paused while it holds that row lock would keep a standby waiting, so the leader's
PostgreSQL sessions end any transaction left idle for longer than the lease
(`idle_in_transaction_session_timeout`): the paused leader's transaction is rolled back, its locks
freed, and the standby takes over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, TextClause, event, text
from sqlalchemy.engine import Connection

from provenance.errors import LeaseLost
from provenance.index.db import writer_lock

log = logging.getLogger("provenance.leases")

LOCK_TIMEOUT_MS = 2_000
"""How long an acquire or renew waits for a leader's commit in flight before trying again later."""


def _now(engine: Engine) -> str:
    """The database's clock, in seconds since the epoch, as SQL."""
    if engine.dialect.name == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def _sql(engine: Engine, template: str) -> TextClause:
    """`template` with NOW as the database's clock and FOR_SHARE as a shared row lock (PostgreSQL;
    SQLite's one writer orders commits anyway): constant SQL of ours, values stay bound."""
    for_share = " FOR SHARE" if engine.dialect.name == "postgresql" else ""
    return text(template.replace("NOW", _now(engine)).replace(" FOR_SHARE", for_share))


@dataclass(frozen=True)
class LeaseState:
    """A lease as the database holds it; `remaining_s` is negative once it has ended."""

    name: str
    holder: str
    token: int
    remaining_s: float


class Leases:
    """The `leases` table, on an engine of its own: a lease's statements must never wait in the
    pool behind the leader's own work, and are never fenced."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = writer_lock(engine)
        if engine.dialect.name == "postgresql":
            _end_idle_transactions(engine, LOCK_TIMEOUT_MS / 1000)  # a holder paused mid-renewal

    def _writing(self) -> Any:
        return _LeaseTransaction(self.engine, self._lock)

    def acquire(self, name: str, holder: str, ttl_s: float) -> int | None:
        """The new fencing token if `holder` now leads `name`; None while another's lease runs."""
        with self._writing() as connection:
            token = connection.execute(
                _sql(
                    self.engine,
                    "INSERT INTO leases (name, holder, token, acquired_at, expires_at) "
                    "VALUES (:name, :holder, 1, NOW, NOW + :ttl) "
                    "ON CONFLICT (name) DO NOTHING RETURNING token",
                ),
                {"name": name, "holder": holder, "ttl": ttl_s},
            ).scalar()
            if token is None:
                token = connection.execute(
                    _sql(
                        self.engine,
                        "UPDATE leases SET holder = :holder, token = token + 1, acquired_at = NOW, "
                        "expires_at = NOW + :ttl WHERE name = :name AND expires_at <= NOW "
                        "RETURNING token",
                    ),
                    {"name": name, "holder": holder, "ttl": ttl_s},
                ).scalar()
        return None if token is None else int(token)

    def renew(self, name: str, token: int, ttl_s: float) -> bool:
        """Whether the lease of `token` runs on for `ttl_s` more. A lease that already ended is not
        renewed even if nobody took it: the holder may have been paused, and commits it had in
        flight were refused; it must acquire again (a new token)."""
        with self._writing() as connection:
            renewed = connection.execute(
                _sql(
                    self.engine,
                    "UPDATE leases SET expires_at = NOW + :ttl "
                    "WHERE name = :name AND token = :token AND expires_at > NOW RETURNING token",
                ),
                {"name": name, "token": token, "ttl": ttl_s},
            ).scalar()
        return renewed is not None

    def release(self, name: str, token: int) -> None:
        """Ends the lease of `token` now (a clean stop), so a standby takes over at its next try."""
        with self._writing() as connection:
            connection.execute(
                _sql(self.engine, "UPDATE leases SET expires_at = NOW WHERE name = :name AND token = :token"),
                {"name": name, "token": token},
            )

    def release_holder(self, name: str, holder: str) -> bool:
        """Ends `holder`'s lease of `name` now, whatever its token: for a supervisor that saw the
        holder's process exit (a dead process commits nothing), so its standby need not wait for
        the lease to run out. Whether there was such a lease."""
        with self._writing() as connection:
            released = connection.execute(
                _sql(
                    self.engine,
                    "UPDATE leases SET expires_at = NOW "
                    "WHERE name = :name AND holder = :holder AND expires_at > NOW RETURNING token",
                ),
                {"name": name, "holder": holder},
            ).scalar()
        return released is not None

    def states(self) -> list[LeaseState]:
        return read_leases(self.engine)

    def state(self, name: str) -> LeaseState | None:
        return next((state for state in self.states() if state.name == name), None)


def read_leases(engine: Engine) -> list[LeaseState]:
    """Every lease, as /health and operators read it; on any engine (no hooks are added)."""
    with engine.connect() as connection:
        rows = connection.execute(
            _sql(engine, "SELECT name, holder, token, expires_at - NOW FROM leases ORDER BY name")
        ).all()
    return [LeaseState(row[0], row[1], int(row[2]), float(row[3])) for row in rows]


class _LeaseTransaction:
    """A short write transaction that never waits long on a leader's row lock (PostgreSQL)."""

    def __init__(self, engine: Engine, lock: Any) -> None:
        self._engine = engine
        self._lock = lock
        self._connection: Connection | None = None

    def __enter__(self) -> Connection:
        self._lock.__enter__()
        try:
            connection = self._engine.connect()
            connection.execution_options(sqlite_begin="IMMEDIATE")
            connection.begin()
            if self._engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self._connection = connection
        return connection

    def __exit__(self, kind: object, *_rest: object) -> None:
        assert self._connection is not None
        try:
            if kind is None:
                self._connection.commit()
            else:
                self._connection.rollback()
        finally:
            self._connection.close()
            self._lock.__exit__(None, None, None)


def fence_commits(
    engine: Engine, name: str, token: Callable[[], int | None], idle_s: float, holder: str | None = None
) -> None:
    """Every commit on `engine` from now on first checks that `token()` still holds lease `name`,
    in the same transaction; a commit that does not hold it raises LeaseLost and lands nothing.
    `idle_s`: how long a PostgreSQL transaction of this engine may sit idle before the server
    ends it (a paused leader's); `holder` names its sessions (`application_name`, as
    `pg_stat_activity` shows them). Connections already pooled are closed, so every session gets
    both."""
    check = _sql(
        engine,
        "SELECT token FROM leases WHERE name = :name AND token = :token AND expires_at > NOW FOR_SHARE",
    )

    def before_commit(connection: Connection) -> None:
        held = token()
        if held is None or connection.execute(check, {"name": name, "token": held}).scalar() is None:
            raise LeaseLost(f"this process no longer holds the {name} lease (token {held}): commit refused")

    event.listen(engine, "commit", before_commit)
    if engine.dialect.name == "postgresql":
        _end_idle_transactions(engine, idle_s, holder)


def _end_idle_transactions(engine: Engine, idle_s: float, application_name: str | None = None) -> None:
    """Every PostgreSQL session of `engine` ends a transaction left idle for `idle_s` (its process
    was paused holding locks); pooled connections are closed so that every session has it."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {max(1, int(idle_s * 1000))}")
        if application_name is not None:
            cursor.execute("SELECT set_config('application_name', %s, false)", (application_name[:63],))
        cursor.close()
        dbapi_connection.commit()

    event.listen(engine, "connect", on_connect)
    engine.dispose()

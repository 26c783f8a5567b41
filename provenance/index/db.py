"""Engines and schema versions of the index database (SQLite or PostgreSQL).

SQLite runs in WAL mode with foreign keys on and a busy timeout, and SQLAlchemy (not the
sqlite3 module) decides where transactions begin, so a read followed by writes is one
transaction; writers ask for `BEGIN IMMEDIATE` (execution option `sqlite_begin`) so two of them
queue instead of failing half-way.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from provenance.errors import IndexBehind, IndexStateError

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
UPGRADE_HINT = "run `provenance db upgrade`"


def normalize_url(url: str) -> str:
    """PostgreSQL URLs without a driver get psycopg 3 (the driver we ship), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


POOL_SIZE = 16
POOL_OVERFLOW = 48
"""Connections kept, and extra ones allowed: the API's 40 request threads, the outbox worker and
the indexer share one engine in `provenance serve`; with SQLAlchemy's default 5 kept, busy
moments opened and closed a SQLite connection (and its PRAGMAs) per request."""


REPLICA_CONNECT_TIMEOUT_S = 2
"""libpq's `connect_timeout` for a read replica: reads fall back to the primary when it fails."""
REPLICA_TCP_USER_TIMEOUT_MS = 5000
"""libpq's `tcp_user_timeout` for a read replica: a partitioned replica's open connection fails
instead of hanging a read for the kernel's TCP retry time (about 15 minutes)."""


def make_engine(url: str, *, replica: bool = False) -> Engine:
    """An engine for the index at `url`; nothing connects until first use. A `replica`'s
    connections give up quickly (a URL's own settings win), since the primary can answer instead."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, int] = {}
        if replica and parsed.get_backend_name() == "postgresql":
            asked = parsed.query
            if "connect_timeout" not in asked:
                connect_args["connect_timeout"] = REPLICA_CONNECT_TIMEOUT_S
            if "tcp_user_timeout" not in asked:
                connect_args["tcp_user_timeout"] = REPLICA_TCP_USER_TIMEOUT_MS
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            connect_args=connect_args,
        )
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class WriterLock:
    """One writer at a time on a SQLite index, across threads *and* processes, queued outside SQLite.

    SQLite makes a second writer sleep in its busy handler (1, 2, 5, 10 ... 100 ms steps) and try
    again; with the API, the outbox worker and the indexer in three processes, request threads
    slept there while the lock was long free (bench/api_write.py: most of a request's time).
    Waiting on a thread lock, then on `flock` of a file beside the database, hands the lock over
    the moment it is released. Engines other than a SQLite file need none of this: no-op.
    """

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = (
            Path(f"{database}.writer-lock")
            if database and database != ":memory:" and not database.startswith("file:")
            else None
        )
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._path is None:
            return
        self._thread_lock.acquire()
        try:
            # opened per transaction (microseconds): nothing is left open when the engine goes
            self._fd = os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._thread_lock.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        if self._path is None:
            return
        try:
            if self._fd is not None:
                os.close(self._fd)  # closing the descriptor releases the flock
                self._fd = None
        finally:
            self._thread_lock.release()


_writer_locks: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()
_writer_locks_guard = threading.Lock()


def writer_lock(engine: Engine) -> WriterLock:
    """The one `WriterLock` of `engine` in this process (the outbox and the indexer share it)."""
    with _writer_locks_guard:
        lock = _writer_locks.get(engine)
        if lock is None:
            lock = _writer_locks[engine] = WriterLock(engine)
        return lock


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # in WAL: durable against a process crash
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "")
    if mode not in ("", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"sqlite_begin must be IMMEDIATE or EXCLUSIVE, not {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(url: str) -> None:
    """Brings the database at `url` to the newest schema (alembic upgrade head)."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except (SQLAlchemyError, CommandError) as error:
        raise IndexStateError(f"cannot upgrade the index database {describe(engine)}: {error}") from error
    finally:
        engine.dispose()


def current_revisions(engine: Engine) -> set[str]:
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        raise IndexStateError(f"cannot open the index database {describe(engine)}: {error}") from error


def check_current(engine: Engine) -> None:
    """Raises IndexBehind unless the database's schema is exactly the code's newest migration."""
    current = current_revisions(engine)
    heads = head_revisions()
    if current == heads:
        return
    where = describe(engine)
    if not current:
        raise IndexBehind(f"the index database {where} has no schema yet: {UPGRADE_HINT}")
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    if not current <= known:
        raise IndexBehind(
            f"the index database {where} is at revision {', '.join(sorted(current))}, which this version "
            f"does not know: it was upgraded by a newer version of provenance; run that version"
        )
    raise IndexBehind(
        f"the index database {where} is at revision {', '.join(sorted(current))}, behind "
        f"{', '.join(sorted(heads))}: {UPGRADE_HINT}"
    )

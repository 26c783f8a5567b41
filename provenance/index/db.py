"""Engines and schema versions of the index database (SQLite or PostgreSQL).

SQLite runs in WAL mode with foreign keys on and a busy timeout, and SQLAlchemy (not the
sqlite3 module) decides where transactions begin, so a read followed by writes is one
transaction; writers ask for `BEGIN IMMEDIATE` (execution option `sqlite_begin`) so two of them
queue instead of failing half-way.
"""

from __future__ import annotations

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


def make_engine(url: str) -> Engine:
    """An engine for the index at `url`; nothing connects until first use."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


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

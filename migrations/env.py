"""Alembic environment of the index database.

`provenance db upgrade` passes an open connection in `config.attributes["connection"]`; the
`alembic` command line (for `alembic revision --autogenerate`) falls back to the configured URL,
then to the Settings' database (PROVENANCE_DATABASE_URL, or SQLite in the data directory).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from provenance.index import write_models  # noqa: F401  (its tables join Base.metadata)
from provenance.index.db import make_engine, normalize_url
from provenance.index.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return normalize_url(url)
    from provenance.config import Settings

    return Settings().effective_database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

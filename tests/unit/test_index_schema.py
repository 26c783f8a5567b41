"""The schema: migrations and models agree, upgrades are repeatable, a database that is behind is
refused with the command that fixes it, and SQLite runs with the settings the indexer relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from provenance.errors import IndexBehind
from provenance.index.db import (
    alembic_config,
    check_current,
    head_revisions,
    make_engine,
    normalize_url,
    upgrade,
)
from provenance.index.models import Base
from provenance.index.tables import INDEX_TABLES


def test_the_migrations_build_exactly_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_an_upgraded_database_is_current_and_upgrading_again_changes_nothing(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        check_current(engine)
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_the_migrations_downgrade_to_nothing_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(db_url)
        check_current(engine)
    finally:
        engine.dispose()


def test_a_database_without_the_schema_is_behind(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        with pytest.raises(IndexBehind, match=r"has no schema yet: run `provenance db upgrade`"):
            check_current(engine)
    finally:
        engine.dispose()


def test_a_database_at_an_older_or_unknown_revision_is_refused(db_url: str) -> None:
    older = [
        revision.revision
        for revision in ScriptDirectory.from_config(alembic_config()).walk_revisions()
        if revision.revision not in head_revisions()
    ]
    engine = make_engine(db_url)
    try:
        for stamp in older[:1]:
            with engine.begin() as connection:
                connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": stamp})
            with pytest.raises(
                IndexBehind, match=rf"at revision {stamp}, behind .*: run `provenance db upgrade`"
            ):
                check_current(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(IndexBehind, match="upgraded by a newer version"):
            check_current(engine)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM alembic_version"))
        with pytest.raises(IndexBehind, match=r"run `provenance db upgrade`"):
            check_current(engine)
    finally:
        engine.dispose()


def test_there_is_one_head_revision() -> None:
    assert len(head_revisions()) == 1


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'index.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5_000
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgresql_urls_without_a_driver_use_psycopg_3(given: str, used: str) -> None:
    assert normalize_url(given) == used


def test_the_snapshot_covers_every_table_the_index_models_define() -> None:
    import provenance.index.epcis_models as epcis_models
    import provenance.index.models as models

    defined = {
        value.__tablename__
        for module in (models, epcis_models)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Base)
        and value.__module__ == module.__name__
        and hasattr(value, "__tablename__")
    }
    # the query interface's own tables that the chain does not determine (epcis_models' docstring)
    defined -= {"record_times", "epcis_named_queries"}

    assert set(INDEX_TABLES) == defined

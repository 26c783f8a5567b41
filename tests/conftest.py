"""Fixtures every test folder may use: empty index databases on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbs import empty_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Each test that asks runs once per engine."""
    kind: str = request.param
    return kind


@pytest.fixture
def empty_db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A new database with no schema (the indexer must refuse it until `provenance db upgrade`)."""
    with empty_database(db_kind, tmp_path) as url:
        yield url


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A new database at the newest schema."""
    from provenance.index.db import upgrade

    upgrade(empty_db_url)
    return empty_db_url


def pytest_addoption(parser: pytest.Parser) -> None:
    """`pytest tests/audit --rpc URL --registry ADDRESS [--database URL]`: the auditor's suite
    replays that chain instead of the histories it builds itself (tests/audit/conftest.py)."""
    group = parser.getgroup("audit", "auditor's replay (tests/audit)")
    group.addoption("--rpc", default=None, help="JSON-RPC URL of the chain to audit")
    group.addoption("--registry", default=None, help="address of the OreLotRegistry to audit")
    group.addoption("--database", default=None, help="the live index to compare (SQLAlchemy URL)")

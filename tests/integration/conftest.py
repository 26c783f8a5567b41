"""Integration fixtures: a real anvil with the registry deployed, and index databases on both engines.

Every index test runs on SQLite and on PostgreSQL. PostgreSQL is part of the suite, not an
option: when the server cannot be reached the tests fail, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.chain.node import AnvilNode
from tests.histories import Actors, deploy_for_history
from tests.integration.support import Chain, Databases


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    """One anvil per test: reorg and crash tests rewrite the chain, so none is shared."""
    node = AnvilNode()  # no log_path: AnvilNode leaves its log file open (a ResourceWarning)
    w3 = node.start()
    try:
        actors = Actors.generate()
        deployment, writer = deploy_for_history(w3, actors)
        yield Chain(node, w3, deployment, actors, writer)
    finally:
        node.kill()


@pytest.fixture
def databases(db_kind: str, tmp_path: Path) -> Iterator[Databases]:
    """A factory of index databases, on SQLite (files) and on PostgreSQL (uniquely named databases);
    `db_kind` (tests/conftest.py) runs each test once per engine."""
    factory = Databases(db_kind, tmp_path)
    try:
        yield factory
    finally:
        factory.close()

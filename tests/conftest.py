"""Fixtures every test folder may use: empty index databases on SQLite and PostgreSQL. And how the
suite is shared between `make test`'s two workers (pytest-xdist, `--dist loadgroup`)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import web3.providers.eth_tester.main as eth_tester_provider
from eth_abi import abi
from eth_abi.exceptions import DecodingError
from sqlalchemy import Engine

from provenance.index.db import make_engine
from tests.dbs import empty_database


def _decode_or_decoding_error(types_: Any, data: bytes) -> Any:
    try:
        return abi.decode(types_, data)
    except OverflowError as error:
        raise DecodingError(str(error)) from error


# web3 8.0's eth-tester provider reads every revert as Error(string) and catches only DecodingError;
# eth_abi raises OverflowError instead when a custom error's first word reads as a short unaligned
# offset (MassNotConserved(60, 11, 48): Hypothesis found it in test_registry_property), and the
# revert escaped as an OverflowError instead of the custom error. The tests' chain only; a real
# node's answer never goes through that provider.
eth_tester_provider.abi = types.SimpleNamespace(decode=_decode_or_decoding_error)  # type: ignore[assignment]


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
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on `db_url` (a new database at the newest schema), disposed afterwards."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


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


SLOWEST_FIRST = (
    "tests/faults/",
    "tests/bench/",
    "tests/integration/",
    "tests/unit/test_registry_property.py",
)
"""Folders whose tests run for tens of seconds each (processes killed and restarted, benchmarks at
their smoke size), and the one unit module that runs for minutes (Hypothesis's stateful test of the
registry): handed out first, so that the two workers do not end on one long test while the other is
idle."""

SPLIT_MODULES = frozenset(
    {
        "tests/bench/test_smoke.py",  # each benchmark's smoke run: its own processes, tens of seconds
        "tests/integration/test_audit_tamper.py",  # 25 audits of ~8 s; the module's chain takes ~3 s
        "tests/integration/test_crash_safety.py",  # one backfill killed 12 times per engine, ~45 s each
        "tests/integration/test_main_job.py",  # serve and the CLI as processes, one test of a minute
    }
)
"""Modules whose tests are each a unit of work of their own: long tests whose module-scoped
resources (if any) cost little beside them, so the two workers share them."""


def unit_of_work(nodeid: str) -> str:
    """What one xdist worker runs as a whole: a module (its module-scoped servers, chains and
    compiles are made once), or a single test of SPLIT_MODULES."""
    module = nodeid.split("::")[0]
    return nodeid if module in SPLIT_MODULES else module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest first; the order within a module and within each rank is kept. Every worker
    collects in this order, and the scheduler below hands out the units in it."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0]
        return next(
            (i for i, folder in enumerate(SLOWEST_FIRST) if module.startswith(folder)), len(SLOWEST_FIRST)
        )

    items.sort(key=rank)  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` by `unit_of_work`, in collection order.

    Not xdist's own loadgroup: it groups by an `xdist_group` mark that it appends to each nodeid
    (`item._nodeid`), which pytest 9 no longer has (a node's id is `item._id`), so every test was a
    unit of its own: modules were split between the workers and each built the module's fixtures.
    And xdist's loadscope sorts the units by their number of tests, largest first, which would put
    the one-test units of SLOWEST_FIRST last."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnitOfWork(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

    config.option.loadscopereorder = False
    return ByUnitOfWork(config, log)

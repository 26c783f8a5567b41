"""The auditor's suite: `pytest tests/audit --rpc URL --registry ADDRESS [--database URL]` replays and
checks any chain (and, with --database, the index that claims to mirror it).

Without options it audits two histories it builds itself: one written through the HTTP API on the
in-process eth-tester chain (tests/e2e's stack: the outbox, the worker, the real write path), and a
realistic multi-actor history on anvil (tests/histories.py); each with a live SQLite index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from provenance.chain.connection import connect
from provenance.chain.deployment import Deployment
from provenance.chain.logsource import RpcLogSource
from provenance.chain.node import AnvilNode
from provenance.index.db import make_engine, upgrade
from provenance.index.indexer import Indexer


@dataclass(frozen=True)
class AuditTarget:
    name: str
    w3: Web3
    registry: str
    database_url: str | None


def _index(w3: Web3, deployment: Any, url: str) -> str:
    upgrade(url)
    engine = make_engine(url)
    try:
        Indexer(engine, RpcLogSource(w3, deployment.registry), deployment).sync()
    finally:
        engine.dispose()
    return url


def _digest(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def _api_history(directory: Path) -> Iterator[AuditTarget]:
    """Lots registered, split, merged, handed over, accepted and assayed through the HTTP API."""
    from tests.e2e.conftest import SITE, lot_body, start_stack

    for stack in start_stack(directory, "AUDIT"):
        a, b, c = (stack.lot_id() for _ in range(3))
        assert (
            stack.write(
                "/v1/lots/batch",
                stack.operator,
                {
                    "site": SITE,
                    "lots": [
                        {
                            key: value
                            for key, value in lot_body(lot_id, mass_g=1_000_000).items()
                            if key != "site"
                        }
                        for lot_id in (a, b, c)
                    ],
                },
            )["status"]
            == "confirmed"
        )
        left, right, merged = stack.lot_id(), stack.lot_id(), stack.lot_id()
        split = {
            "kind": "split",
            "site": SITE,
            "inputs": [{"lot_id": a, "mass_g": 1_000_000}],
            "outputs": [
                {
                    "lot_id": left,
                    "commodity": "COAL",
                    "mass_g": 600_000,
                    "grade_ppm": 12_000,
                    "record_hash": _digest(left),
                },
                {
                    "lot_id": right,
                    "commodity": "COAL",
                    "mass_g": 399_000,
                    "grade_ppm": 12_000,
                    "record_hash": _digest(right),
                },
            ],
            "loss_g": 1_000,
            "record_hash": _digest("split"),
        }
        assert stack.write("/v1/transformations", stack.operator, split)["status"] == "confirmed"
        merge = {
            "kind": "merge",
            "site": SITE,
            "inputs": [{"lot_id": b, "mass_g": 500_000}, {"lot_id": right, "mass_g": 399_000}],
            "outputs": [
                {
                    "lot_id": merged,
                    "commodity": "COAL",
                    "mass_g": 890_000,
                    "grade_ppm": 11_000,
                    "record_hash": _digest(merged),
                }
            ],
            "loss_g": 9_000,
            "record_hash": _digest("merge"),
        }
        assert stack.write("/v1/transformations", stack.operator, merge)["status"] == "confirmed"
        assert (
            stack.write("/v1/handovers", stack.operator, {"lot_ids": [merged, c], "to": stack.buyer.address})[
                "status"
            ]
            == "confirmed"
        )
        assert (
            stack.write("/v1/handovers/accept", stack.buyer, {"lot_ids": [merged]})["status"] == "confirmed"
        )
        signed = stack.post(
            "/v1/assays/sign",
            stack.lab,
            {
                "lot_id": merged,
                "grade_ppm": 11_800,
                "method": "XRF",
                "certificate_hash": _digest("certificate"),
                "assayed_at": 1_700_003_600,
            },
        ).json()
        assert (
            stack.write(
                "/v1/assays", stack.buyer, {"assay": signed["assay"], "signature": signed["signature"]}
            )["status"]
            == "confirmed"
        )
        deployment = Deployment.load(stack.settings.deployment_path)
        url = _index(stack.w3, deployment, f"sqlite:///{directory / 'live-audit.sqlite3'}")
        yield AuditTarget("eth-tester, written through the API", stack.w3, deployment.registry, url)


def _anvil_history(directory: Path) -> Iterator[AuditTarget]:
    from tests.histories import SMALL, Actors, HistoryBuilder, deploy_for_history

    node = AnvilNode()
    w3 = node.start()
    try:
        actors = Actors.generate()
        deployment, writer = deploy_for_history(w3, actors)
        history = HistoryBuilder(writer, actors, seed=6, tag="AUD")
        history.setup()
        history.run(SMALL, rounds=4)
        url = _index(w3, deployment, f"sqlite:///{directory / 'live-anvil.sqlite3'}")
        yield AuditTarget("anvil, a multi-actor history", w3, deployment.registry, url)
    finally:
        node.kill()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--rpc") and not config.getoption("--registry"):
        raise pytest.UsageError("--rpc needs --registry ADDRESS (the OreLotRegistry to audit)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "audit_target" in metafunc.fixturenames:
        given = metafunc.config.getoption("--rpc")
        metafunc.parametrize(
            "audit_target", ["given"] if given else ["eth-tester-api", "anvil"], indirect=True
        )


@pytest.fixture(scope="module")
def audit_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuditTarget]:
    config = request.config
    if request.param == "given":
        registry = config.getoption("--registry")
        yield AuditTarget(
            config.getoption("--rpc"),
            connect(config.getoption("--rpc"), 60.0),
            registry,
            config.getoption("--database"),
        )
        return
    directory = tmp_path_factory.mktemp("audit")
    builder = _api_history if request.param == "eth-tester-api" else _anvil_history
    yield from builder(directory)

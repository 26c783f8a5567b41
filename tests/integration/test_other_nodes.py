"""The write path on more than one EVM implementation, anvil and Hardhat's node (EDR): operations go
from the outbox to the chain through the worker's raw JSON-RPC calls (simulation, signing, sending,
receipts, a refusal decoded), are indexed, verify from the chain alone and audit clean. Hardhat
refused the worker's call objects once (`data` and `input` both named: -32602), and every
operation stayed pending forever; this is what decides the call object's form."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner
from web3 import Web3

from provenance.chain.client import RegistryClient
from provenance.chain.deployment import Deployment, deploy_registry
from provenance.chain.logsource import RpcLogSource
from provenance.chain.node import AnvilNode
from provenance.chain.node_calls import HttpNodeCalls
from provenance.chain.outbox import OutboxWorker
from provenance.cli.main import app
from provenance.domain.commands import command_of
from provenance.domain.operations import OperationKind, OperationStatus
from provenance.index.credentials_store import CredentialStore
from provenance.index.db import make_engine, upgrade
from provenance.index.indexer import Indexer
from provenance.index.outbox import OutboxStore
from tests.nodes import HardhatNode, fund_from_a_dev_account
from tests.outbox_support import record_hash, register_payload, settle

pytestmark = pytest.mark.anvil

SITE = "SH2"


@pytest.fixture(params=["anvil", "hardhat"])
def node(request: pytest.FixtureRequest) -> Iterator[tuple[str, Web3]]:
    """(URL, web3) of a fresh node of each implementation."""
    started: AnvilNode | HardhatNode = AnvilNode() if request.param == "anvil" else HardhatNode()
    w3 = started.start()
    try:
        yield started.url, w3
    finally:
        if isinstance(started, AnvilNode):
            started.kill()
        else:
            started.stop()


def test_a_call_names_its_input_as_the_specification_does_and_the_node_reads_it(
    node: tuple[str, Web3],
) -> None:
    url, _ = node
    calls = HttpNodeCalls(url)
    try:
        identity = "0x0000000000000000000000000000000000000004"  # the identity precompile echoes its input
        assert calls.call({"to": identity, "data": b"\x12\x34"}) == b"\x12\x34"
        assert calls.estimate_gas({"to": identity, "data": b"\x12\x34"}) > 21_000
    finally:
        calls.close()


def split(lot_id: str) -> dict[str, object]:
    return {
        "kind": "split",
        "site": SITE,
        "inputs": [{"lot_id": lot_id, "mass_g": 24_500_000}],
        "outputs": [
            {"lot_id": f"{lot_id}-A", "commodity": "COAL", "mass_g": 12_000_000, "grade_ppm": 11_000, "record_hash": record_hash("A")},
            {"lot_id": f"{lot_id}-B", "commodity": "COAL", "mass_g": 12_000_000, "grade_ppm": 13_000, "record_hash": record_hash("B")},
        ],
        "loss_g": 500_000,
        "record_hash": record_hash("split"),
    }  # fmt: skip


def test_writes_land_are_indexed_verify_and_audit_clean(node: tuple[str, Web3], tmp_path: Path) -> None:
    url, w3 = node
    admin, registrar, processor = (Account.create() for _ in range(3))
    for key in (admin, registrar, processor):
        fund_from_a_dev_account(w3, key.address)
    client, deployment = deploy_registry(w3, admin)
    client.grant_role(admin, client.registrar_role(SITE), registrar.address)
    client.grant_role(admin, client.role("PROCESSOR_ROLE"), processor.address)
    database = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    upgrade(database)
    engine = make_engine(database)
    try:
        store, credentials = OutboxStore(engine), CredentialStore(engine)
        ids = {
            key.address: credentials.create(name, key.address, f"dev:{name}")[0]
            for name, key in (("registrar", registrar), ("processor", processor))
        }
        keys: dict[str, LocalAccount] = {key.address.lower(): key for key in (registrar, processor)}

        def submit(key: LocalAccount, kind: OperationKind, payload: dict[str, object]) -> str:
            view, _ = store.submit(
                credential_id=ids[key.address],
                sender=key.address,
                command=command_of(kind, payload),
                idempotency_key=None,
            )
            return view.id

        worker = OutboxWorker(store, RegistryClient(w3, deployment.registry), lambda a: keys[a.lower()])
        assert isinstance(worker.node, HttpNodeCalls), "the worker's own JSON-RPC calls are under test"
        writes = [
            submit(registrar, OperationKind.REGISTER_LOTS, register_payload("N-1", "N-2")),
            submit(registrar, OperationKind.REGISTER_LOTS, register_payload("N-3")),
            submit(registrar, OperationKind.HAND_OVER, {"lot_ids": ["N-1"], "to": processor.address}),
            submit(processor, OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["N-1"]}),
            submit(processor, OperationKind.TRANSFORM, split("N-1")),
        ]
        refused = submit(
            registrar, OperationKind.REGISTER_LOTS, register_payload("N-2")
        )  # registered already
        settle(worker)
        statuses = [(store.get(o).status, store.get(o).error_name) for o in writes]  # type: ignore[union-attr]
        assert statuses == [(OperationStatus.CONFIRMED, None)] * len(writes)
        refusal = store.get(refused)
        assert refusal is not None
        assert (refusal.status, refusal.error_name) == (OperationStatus.FAILED, "LotExists")

        Indexer(engine, RpcLogSource(w3, deployment.registry), deployment).sync()
        verified = CliRunner().invoke(
            app, ["verify", "N-1-A", "--rpc", url, "--registry", deployment.registry]
        )
        assert verified.exit_code == 0, verified.output
        assert "lot N-1-A: VERIFIED" in verified.output
        audited = audit(url, deployment, database)
        assert audited.returncode == 0, audited.stdout + audited.stderr
    finally:
        engine.dispose()


def audit(url: str, deployment: Deployment, database: str) -> subprocess.CompletedProcess[str]:
    """`provenance audit` as an auditor runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "provenance.cli.main", "audit", "--rpc", url, "--registry", deployment.registry,
         "--database", database, "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

"""The write path as an operator sets it up: a real anvil node, accounts made with the CLI (in its own
process), the API from `build_services`, the outbox worker beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from api.app import create_app
from provenance.bootstrap import admin_account, build_services, ensure_deployment
from provenance.chain.connection import connect
from provenance.chain.node import AnvilNode
from provenance.chain.outbox import OutboxWorker
from provenance.cli.main import app
from provenance.config import Settings
from provenance.index.db import upgrade
from provenance.node_keeper import NodeKeeper
from tests.e2e.conftest import lot_body

pytestmark = pytest.mark.anvil

CLI = [sys.executable, "-m", "provenance.cli.main"]
ASSAY = {
    "lot_id": "ANVIL-1",
    "grade_ppm": 11_800,
    "method": "XRF",
    "certificate_hash": "0x" + "cd" * 32,
    "assayed_at": 1_700_003_600,
}


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An anvil where `provenance serve` would start one (no RPC URL: the embedded setup), kept and
    saved as serve keeps it (`accounts create` waits until its grant is saved), with the registry
    deployed and the database at the newest schema; yields the environment to run the CLI in."""
    node = AnvilNode(state_dir=tmp_path / "chain")
    keeper = NodeKeeper(node, save_every_s=0.2)
    keeper.start()
    w3 = connect(node.url)
    env = {"PROVENANCE_DATA_DIR": str(tmp_path), "PROVENANCE_NODE_PORT": str(node.port)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROVENANCE_RPC_URL", raising=False)
    monkeypatch.delenv("PROVENANCE_DATABASE_URL", raising=False)
    try:
        settings = Settings()
        ensure_deployment(settings, w3, admin_account(settings))
        upgrade(settings.effective_database_url)
        yield {**os.environ, **env}
    finally:
        keeper.stop()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as an operator runs it."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)


def cli_here(*args: str) -> Result:
    """The CLI in this process (the `embedded` fixture set its environment): no start-up cost."""
    return CliRunner().invoke(app, list(args))


def test_accounts_made_with_the_cli_write_through_the_api_to_a_real_node(
    embedded: dict[str, str], tmp_path: Path
) -> None:
    created = cli(embedded, "accounts", "create", "--name", "quarry", "--role", "registrar", "--site", "SH2")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("prv_")
    assert "registrar of site SH2 (granted)" in created.stdout

    lab_key = Account.create()
    keystore, password_file = tmp_path / "lab.json", tmp_path / "lab.password"
    password_file.write_text("correct horse\n")
    keystore.write_text(
        json.dumps(Account.encrypt(lab_key.key, "correct horse", kdf="scrypt", iterations=2**10))
    )
    from_keystore = cli_here(
        "accounts", "create", "--name", "lab-ks", "--role", "lab",
        "--keystore", str(keystore), "--password-file", str(password_file),
    )  # fmt: skip
    assert from_keystore.exit_code == 0, from_keystore.stderr
    assert lab_key.address in from_keystore.stdout
    lab_token = from_keystore.stdout.strip().splitlines()[-1]

    listing = cli_here("accounts", "list")
    assert listing.exit_code == 0, listing.stderr
    assert "quarry" in listing.stdout
    assert lab_key.address in listing.stdout
    assert token not in listing.stdout
    assert lab_token not in listing.stdout

    services = build_services(Settings())
    worker = OutboxWorker(services.outbox, services.client, services.signer_for)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        with TestClient(create_app(services)) as http:
            auth = {"Authorization": f"Bearer {token}"}
            response = http.post(
                "/v1/lots", json=lot_body("ANVIL-1"), params={"wait": "true", "timeout": 30}, headers=auth
            )

            assert response.status_code == 200, response.text
            operation = response.json()
            assert operation["status"] == "confirmed"
            [tx] = operation["transactions"]
            receipt = services.w3.eth.get_transaction_receipt(tx["tx_hash"])
            assert receipt["status"] == 1
            assert receipt["blockNumber"] == tx["block_number"]
            lot = services.client.lot("ANVIL-1")
            assert lot is not None
            assert lot.custodian == operation["sender"]
            assert http.get("/health").json()["status"] == "ok"

            lab_auth = {"Authorization": f"Bearer {lab_token}"}
            signed = http.post("/v1/assays/sign", json=ASSAY, headers=lab_auth)
            assert signed.status_code == 200, signed.text
            assert signed.json()["lab"] == lab_key.address
            submitted = http.post(
                "/v1/assays",
                json={"assay": ASSAY, "signature": signed.json()["signature"]},
                params={"wait": "true", "timeout": 30},
                headers=lab_auth,
            )
            assert submitted.json()["status"] == "confirmed", submitted.text
            assert submitted.json()["sender"] == lab_key.address

            revoked = cli_here("accounts", "revoke", "--name", "quarry")
            assert revoked.exit_code == 0, revoked.stderr
            assert http.post("/v1/lots", json=lot_body("ANVIL-2"), headers=auth).status_code == 401
    finally:
        stop.set()
        thread.join(timeout=30)
        services.close()


MISTAKES = [
    (["create", "--name", "r1", "--role", "registrar"], "--site is required"),
    (["create", "--name", "p1", "--role", "processor", "--site", "SH2"], "--site applies to registrars only"),
    (["create", "--name", "r2", "--role", "registrar", "--site", "S H"], "--site"),
    (["create", "--name", "Bad Name", "--role", "lab"], "key name"),
    (["create", "--name", "k1", "--role", "lab", "--keystore", "/nonexistent.json"], "go together"),
    (["create", "--name", "lab1", "--role", "lab"], "exists"),
    (["revoke", "--name", "nobody"], "no active credential named 'nobody'"),
]


@pytest.mark.usefixtures("embedded")
def test_account_mistakes_exit_2_with_a_message_and_no_traceback() -> None:
    assert cli_here("accounts", "create", "--name", "lab1", "--role", "lab").exit_code == 0

    for args, message in MISTAKES:
        result = cli_here("accounts", *args)

        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert isinstance(result.exception, SystemExit), result.exception  # an exit, not a crash

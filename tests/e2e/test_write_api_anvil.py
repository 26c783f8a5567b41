"""The write path as an operator sets it up: a real anvil node, accounts made with the CLI (in its own
process), the API from `build_runtime`, the outbox worker beside it."""

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
from provenance.bootstrap import admin_account, build_runtime, ensure_deployment
from provenance.chain.client import RegistryClient
from provenance.chain.connection import connect
from provenance.chain.deployment import Deployment
from provenance.chain.logsource import RpcLogSource
from provenance.chain.node import AnvilNode, free_port, fund
from provenance.chain.outbox import OutboxWorker
from provenance.cli.main import app
from provenance.config import Settings
from provenance.index import Indexer
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

    runtime = build_runtime(Settings())
    worker = OutboxWorker(runtime.outbox, runtime.client, runtime.signer_for)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        with TestClient(create_app(runtime)) as http:
            auth = {"Authorization": f"Bearer {token}"}
            response = http.post(
                "/v1/lots", json=lot_body("ANVIL-1"), params={"wait": "true", "timeout": 30}, headers=auth
            )

            assert response.status_code == 200, response.text
            operation = response.json()
            assert operation["status"] == "confirmed"
            [tx] = operation["transactions"]
            receipt = runtime.w3.eth.get_transaction_receipt(tx["tx_hash"])
            assert receipt["status"] == 1
            assert receipt["blockNumber"] == tx["block_number"]
            lot = runtime.client.lot("ANVIL-1")
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
        runtime.close()


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


# ------------------------------------------------------------------ keys held by an external signer


@pytest.fixture
def external_signer() -> Iterator[AnvilNode]:
    """A signer outside the process, answering Web3Signer's eth1 calls (`eth_accounts`,
    `eth_signTransaction`): anvil's own implementation of them, on the chain id of the embedded
    node, with keys from a mnemonic of its own that nothing else here knows."""
    node = AnvilNode(
        extra_args=("--chain-id", str(EMBEDDED_CHAIN_ID), "--mnemonic-random", "--accounts", "2")
    )
    node.start()
    try:
        yield node
    finally:
        node.kill()


EMBEDDED_CHAIN_ID = 31337


def test_an_account_whose_key_only_an_external_signer_holds_writes_through_the_api(
    embedded: dict[str, str], external_signer: AnvilNode, tmp_path: Path
) -> None:
    held = connect(external_signer.url).eth.accounts
    quarry, lab = held[0], held[1]

    created = cli_here(
        "accounts", "create", "--name", "quarry-ext", "--role", "registrar", "--site", "SH2",
        "--address", quarry, "--signer-url", external_signer.url,
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    assert quarry in created.stdout
    token = created.stdout.strip().splitlines()[-1]
    lab_created = cli_here(
        "accounts", "create", "--name", "lab-ext", "--role", "lab", "--address", lab,
        "--signer-url", external_signer.url,
    )  # fmt: skip
    assert lab_created.exit_code == 0, lab_created.stderr
    lab_token = lab_created.stdout.strip().splitlines()[-1]
    assert not (tmp_path / "keys" / "quarry-ext.key").exists()  # no key of it in this process's data
    listing = cli_here("accounts", "list")
    assert f"quarry-ext\t{quarry}\tremote\tactive" in listing.stdout

    runtime = build_runtime(Settings())
    worker = OutboxWorker(runtime.outbox, runtime.client, runtime.signer_for)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        with TestClient(create_app(runtime)) as http:
            response = http.post(
                "/v1/lots",
                json=lot_body("EXT-1"),
                params={"wait": "true", "timeout": 30},
                headers={"Authorization": f"Bearer {token}"},
            )

            assert response.status_code == 200, response.text
            assert response.json()["status"] == "confirmed", response.text
            [tx] = response.json()["transactions"]
            sent = runtime.w3.eth.get_transaction(tx["tx_hash"])
            assert sent["from"] == quarry
            assert sent["chainId"] == EMBEDDED_CHAIN_ID
            lot = runtime.client.lot("EXT-1")
            assert lot is not None
            assert lot.custodian == quarry

            # typed data (an assay) is not among what the external signer is asked to sign here
            refused = http.post(
                "/v1/assays/sign", json=ASSAY, headers={"Authorization": f"Bearer {lab_token}"}
            )
            assert refused.status_code == 422, refused.text
            assert "external signer" in refused.text
    finally:
        stop.set()
        thread.join(10)
        runtime.close()


def test_a_signer_that_signs_for_another_chain_is_named_and_nothing_is_sent(
    embedded: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = AnvilNode(extra_args=("--chain-id", "4242", "--mnemonic-random", "--accounts", "1"))
    elsewhere.start()
    try:
        [quarry] = connect(elsewhere.url).eth.accounts
        created = cli_here(
            "accounts", "create", "--name", "quarry-4242", "--role", "registrar", "--site", "SH2",
            "--address", quarry, "--signer-url", elsewhere.url,
        )  # fmt: skip
        assert created.exit_code == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]

        runtime = build_runtime(Settings())
        worker = OutboxWorker(runtime.outbox, runtime.client, runtime.signer_for)
        try:
            with TestClient(create_app(runtime)) as http:
                auth = {"Authorization": f"Bearer {token}"}
                accepted = http.post("/v1/lots", json=lot_body("EXT-4242"), headers=auth)
                assert accepted.status_code == 202, accepted.text
                operation_id = accepted.json()["id"]
                for _ in range(3):
                    worker.step()

                operation = http.get(f"/v1/operations/{operation_id}", headers=auth).json()
                assert operation["status"] == "pending"
                assert "chainId 4242, not 31337" in operation["stuck_reason"]
                assert runtime.w3.eth.get_transaction_count(quarry, "pending") == 0
                assert runtime.client.lot("EXT-4242") is None
        finally:
            runtime.close()
    finally:
        elsewhere.kill()


@pytest.mark.usefixtures("embedded")
def test_an_external_signer_that_does_not_hold_the_key_or_does_not_answer_exits_2(
    external_signer: AnvilNode,
) -> None:
    stranger = Account.create().address
    not_held = cli_here(
        "accounts", "create", "--name", "nobody", "--role", "buyer", "--address", stranger,
        "--signer-url", external_signer.url,
    )  # fmt: skip
    assert not_held.exit_code == 2
    assert f"holds no key of {stranger}" in not_held.stderr

    silent = cli_here(
        "accounts", "create", "--name", "nobody", "--role", "buyer", "--address", stranger,
        "--signer-url", f"http://user:secret@127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert silent.exit_code == 2
    assert "no external signer answers at http://127.0.0.1:" in silent.stderr
    assert "secret" not in silent.stderr

    no_url = cli_here("accounts", "create", "--name", "nobody", "--role", "buyer", "--address", stranger)
    assert no_url.exit_code == 2
    assert "PROVENANCE_SIGNER_URL" in no_url.stderr


def test_the_registry_deployed_and_roles_granted_by_an_admin_key_only_the_external_signer_holds(
    external_signer: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = AnvilNode()
    w3 = chain.start()
    try:
        admin = connect(external_signer.url).eth.accounts[0]
        fund(w3, admin)  # on this chain, as its operators would before deploying
        record = tmp_path / "deployment.json"
        deployed = cli_here(
            "deploy", "--rpc", chain.url, "--out", str(record), "--address", admin,
            "--signer-url", external_signer.url,
        )  # fmt: skip
        assert deployed.exit_code == 0, deployed.stderr
        registry = RegistryClient(w3, Deployment.load(record).registry)
        assert registry.has_role(registry.role("DEFAULT_ADMIN_ROLE"), admin)

        for name, value in {
            "PROVENANCE_DATA_DIR": str(tmp_path),
            "PROVENANCE_RPC_URL": chain.url,
            "PROVENANCE_SIGNER_URL": external_signer.url,
            "PROVENANCE_ADMIN_ADDRESS": admin,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("PROVENANCE_DATABASE_URL", raising=False)
        upgrade(Settings().effective_database_url)
        lab = Account.create().address
        created = cli_here("accounts", "create", "--name", "lab-1", "--role", "lab", "--address", lab)
        assert created.exit_code == 2  # the signer holds no key of it
        granted = cli_here("accounts", "create", "--name", "lab-1", "--role", "lab")
        assert granted.exit_code == 0, granted.stderr
        lab_address = granted.stdout.split()[2].rstrip(",")
        assert registry.has_role(registry.role("LAB_ROLE"), lab_address)
        assert not list(tmp_path.glob("keys/admin.key"))  # the admin's key never came here
    finally:
        chain.kill()


def test_the_chain_tools_default_to_the_data_directorys_deployment_and_index(
    embedded: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = cli_here("accounts", "create", "--name", "quarry", "--role", "registrar", "--site", "SH2")
    assert created.exit_code == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    runtime = build_runtime(Settings())
    worker = OutboxWorker(runtime.outbox, runtime.client, runtime.signer_for)
    try:
        with TestClient(create_app(runtime)) as http:
            auth = {"Authorization": f"Bearer {token}"}
            operation = http.post("/v1/lots", json=lot_body("TOOLS-1"), headers=auth).json()
            for _ in range(100):
                worker.step()
                operation = http.get(f"/v1/operations/{operation['id']}", headers=auth).json()
                if operation["status"] == "confirmed":
                    break
            assert operation["status"] == "confirmed", operation
        source = RpcLogSource(runtime.w3, runtime.deployment.registry)
        Indexer(runtime.engine, source, runtime.deployment).sync()
    finally:
        runtime.close()

    verified = cli_here("verify", "TOOLS-1")
    assert verified.exit_code == 0, verified.output
    assert "lot TOOLS-1: VERIFIED" in verified.stdout
    assert f"using the registry {runtime.deployment.registry}" in verified.stderr
    contract = cli_here("verify-contract")
    assert contract.exit_code == 0, contract.output
    audited = cli_here("audit", "--quiet")
    assert audited.exit_code == 0, audited.output
    assert "index" in audited.stdout.lower()

    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path / "elsewhere"))
    nothing = cli_here("verify", "TOOLS-1")
    assert nothing.exit_code == 2
    assert "--registry: give the registry's address (no deployment record in" in nothing.stderr

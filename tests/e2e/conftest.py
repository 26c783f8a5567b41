"""The whole write path over HTTP: the app from `create_app(build_runtime(...))`, an outbox worker
running in a thread, and the registry on the in-process eth-tester chain, deployed once per module.

Tests do not revert the chain between them: the outbox keeps each account's next nonce in the
database, so a chain reverted under it would be a chain that lost acknowledged writes (which the
worker does repair, but slowly). Instead every test works on lots of its own (`Stack.lot_id()`),
so no test sees another's.

Accounts, by what they may do on chain:
    operator  registrar of SH2 and processor
    clerk     registrar of SH2 only
    lab       LAB_ROLE
    buyer     no role
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3 import EthereumTesterProvider, Web3
from web3.types import RPCEndpoint, RPCResponse, Wei

from api.app import create_app
from provenance.bootstrap import Runtime, build_runtime
from provenance.chain.deployment import deploy_registry
from provenance.chain.keys import DevKeyring, dev_key_ref
from provenance.chain.outbox import OutboxWorker
from provenance.config import Settings
from provenance.index.db import upgrade

SITE = "SH2"
EXTRACTED_AT = 1_700_000_000
MAX_DOCUMENT_BYTES = 4096
MAX_REQUEST_BYTES = 512 * 1024
"""Room for a batch of 1,000 lots (about 190 KB of JSON)."""
FUNDING_WEI = Wei(10**21)


class LockedTesterProvider(EthereumTesterProvider):
    """eth-tester is not thread-safe; the worker thread and the app's threads take turns."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._lock:
            return super().make_request(method, params)


@dataclass(frozen=True)
class Account:
    name: str
    key: LocalAccount
    token: str

    @property
    def address(self) -> str:
        return self.key.address

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    settings: Settings
    runtime: Runtime
    http: TestClient
    w3: Web3
    admin: LocalAccount
    operator: Account
    clerk: Account
    lab: Account
    buyer: Account
    prefix: str
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def lot_id(self) -> str:
        return f"{self.prefix}-{next(self._ids):05d}"

    def post(self, path: str, account: Account | None, body: Any, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if account is not None:
            headers.update(account.auth)
        return self.http.post(path, json=body, headers=headers, **kwargs)

    def write(self, path: str, account: Account, body: Any, **kwargs: Any) -> dict[str, Any]:
        """POSTs and waits for the operation to be final; returns the operation."""
        response = self.post(path, account, body, params={"wait": "true", "timeout": 30}, **kwargs)
        assert response.status_code == 200, response.text
        operation: dict[str, Any] = response.json()
        return operation

    def register(self, account: Account | None = None, **changes: Any) -> str:
        """A new confirmed lot held by `account` (the operator by default); returns its id."""
        body = lot_body(self.lot_id(), **changes)
        operation = self.write("/v1/lots", account or self.operator, body)
        assert operation["status"] == "confirmed", operation
        lot_id: str = body["lot_id"]
        return lot_id

    def custodian(self, lot_id: str) -> str | None:
        state = self.runtime.client.lot(lot_id)
        return None if state is None else state.custodian


def digest(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def lot_body(lot_id: str, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site": SITE,
        "lot_id": lot_id,
        "face": "F3",
        "commodity": "COAL",
        "mass_g": 24_500_000,
        "grade_ppm": 12_345,
        "extracted_at": EXTRACTED_AT,
        "record_hash": digest(lot_id),
    }
    body.update(changes)
    return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    return error


def _account(stack_parts: dict[str, Any], name: str, roles: list[bytes]) -> Account:
    runtime: Runtime = stack_parts["runtime"]
    w3: Web3 = stack_parts["w3"]
    admin: LocalAccount = stack_parts["admin"]
    key = DevKeyring(runtime.settings.data_dir).get_or_create(name)
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": key.address, "value": FUNDING_WEI})
    for role in roles:
        runtime.client.grant_role(admin, role, key.address)
    _, token = runtime.credentials.create(name, key.address, dev_key_ref(name))
    return Account(name, key, token)


def start_stack(data_dir: Path, prefix: str, **settings_changes: Any) -> Iterator[Stack]:
    """`settings_changes`: other settings than these (another `database_url`, say)."""
    settings = Settings(
        **{
            "data_dir": data_dir,
            "rpc_url": "http://eth-tester.invalid",  # not embedded: nothing starts anvil; w3 is passed in
            "database_url": f"sqlite:///{data_dir / 'index.sqlite3'}",
            "max_document_bytes": MAX_DOCUMENT_BYTES,
            "max_request_bytes": MAX_REQUEST_BYTES,
            "role_cache_s": 5.0,
            **settings_changes,
        }
    )
    w3 = Web3(LockedTesterProvider())
    admin = DevKeyring(data_dir).get_or_create("admin")
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": admin.address, "value": FUNDING_WEI})
    _, deployment = deploy_registry(w3, admin)
    deployment.save(settings.deployment_path)
    upgrade(settings.effective_database_url)
    runtime = build_runtime(settings, w3=w3)
    client = runtime.client
    parts = {"runtime": runtime, "w3": w3, "admin": admin}
    processor, lab_role = client.role("PROCESSOR_ROLE"), client.role("LAB_ROLE")
    registrar = client.registrar_role(SITE)
    operator = _account(parts, "operator", [registrar, processor])
    clerk = _account(parts, "clerk", [registrar])
    lab = _account(parts, "lab", [lab_role])
    buyer = _account(parts, "buyer", [])
    worker = OutboxWorker(runtime.outbox, client, runtime.signer_for, confirmations=0, defer_s=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.02), name="outbox-worker", daemon=True)
    thread.start()
    try:
        with TestClient(create_app(runtime)) as http:
            yield Stack(settings, runtime, http, w3, admin, operator, clerk, lab, buyer, prefix)
    finally:
        stop.set()
        thread.join(timeout=30)
        runtime.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_write_api_").upper()
    yield from start_stack(tmp_path_factory.mktemp("e2e"), name[:12])

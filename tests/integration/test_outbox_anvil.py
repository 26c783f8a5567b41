"""The outbox against a real anvil, on SQLite and PostgreSQL: acknowledged writes survive a node
killed before its next save, and 32 clients writing at once neither collide on a nonce nor
lose or duplicate a lot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, select
from web3 import Web3

from provenance.chain.client import RegistryClient
from provenance.chain.deployment import Deployment, deploy_registry
from provenance.chain.logsource import RpcLogSource
from provenance.chain.node import AnvilNode, fund
from provenance.chain.outbox import OutboxWorker
from provenance.domain.commands import command_of
from provenance.domain.operations import OperationKind, OperationStatus
from provenance.domain.values import decode_label
from provenance.index import Indexer
from provenance.index.credentials_store import CredentialStore
from provenance.index.models import Lot
from provenance.index.outbox import OutboxStore
from tests.outbox_support import register_payload, settle

pytestmark = pytest.mark.anvil

SITE = "SH2"


@dataclass
class Registry:
    """A registry on an anvil that persists its state, with registrar keys of SITE."""

    node: AnvilNode
    deployment: Deployment
    registrars: list[LocalAccount]
    client: RegistryClient

    def restart(self) -> None:
        self.client = RegistryClient(self.node.start(), self.deployment.registry)
        self.deployment.check_against(self.client.w3)

    def signer_for(self, sender: str) -> LocalAccount:
        return next(key for key in self.registrars if key.address.lower() == sender.lower())

    def registered_lot_ids(self) -> list[str]:
        """The lot id of every LotRegistered event on the chain, in chain order."""
        event = self.client.contract.events.LotRegistered()
        logs = event.get_logs(from_block=self.deployment.block_number, to_block="latest")
        return [decode_label(entry["args"]["lotId"]) for entry in logs]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """Deploys and grants roles, then stops the node cleanly (it saves its chain) and starts it
    again from that save; nothing saves it again (serve's keeper would), so a SIGKILL loses every
    later block."""
    node = AnvilNode(state_dir=tmp_path / "chain")
    w3 = node.start()
    try:
        admin: LocalAccount = Account.create()
        fund(w3, admin.address)
        client, deployment = deploy_registry(w3, admin)
        registrars: list[LocalAccount] = [Account.create() for _ in range(4)]
        for key in registrars:
            fund(w3, key.address)
            client.grant_role(admin, client.registrar_role(SITE), key.address)
        node.stop()
        box = Registry(node, deployment, registrars, client)
        box.restart()
        yield box
    finally:
        node.kill()


def credential_ids(engine: Engine, registry: Registry) -> dict[str, str]:
    credentials = CredentialStore(engine)
    return {
        key.address: credentials.create(f"crew-{index}", key.address, f"dev:crew-{index}")[0]
        for index, key in enumerate(registry.registrars)
    }


def indexed_lots(engine: Engine, registry: Registry) -> dict[str, str]:
    """Indexes the chain into the database and returns lot id -> tx hash from the index."""
    source = RpcLogSource(registry.client.w3, registry.deployment.registry)
    Indexer(engine, source, registry.deployment).sync()
    with engine.connect() as connection:
        return {row.lot_id: row.tx_hash for row in connection.execute(select(Lot.lot_id, Lot.tx_hash))}


def test_acknowledged_writes_survive_a_node_killed_before_its_state_dump(
    registry: Registry, engine: Engine
) -> None:
    store = OutboxStore(engine)
    credentials = credential_ids(engine, registry)
    crew, other = registry.registrars[:2]
    lot_ids: list[str] = []

    def acknowledge(sender: LocalAccount, ids: list[str], key: str) -> str:
        view, created = store.submit(
            credential_id=credentials[sender.address],
            sender=sender.address,
            command=command_of(OperationKind.REGISTER_LOTS, register_payload(*ids)),
            idempotency_key=key,
        )
        assert created
        lot_ids.extend(ids)
        return view.id

    assert registry.node.snapshots is not None
    saved = registry.node.snapshots.newest_first()
    # sent, mined and confirmed, then lost with the node: a batch of 600 lots (two transactions),
    # and single registrations from two accounts
    sent = [acknowledge(crew, [f"BIG-{i:03d}" for i in range(600)], "big")]
    sent += [acknowledge((crew, other)[i % 2], [f"A-{i}-{k}" for k in range(3)], f"a{i}") for i in range(8)]
    worker = OutboxWorker(store, registry.client, registry.signer_for)
    settle(worker)
    assert {store.get(o).status for o in sent} == {OperationStatus.CONFIRMED}  # type: ignore[union-attr]
    hashes_before = {o: [tx.tx_hash for tx in store.get(o).transactions] for o in sent}  # type: ignore[union-attr]
    before_kill = indexed_lots(engine, registry)
    assert set(before_kill) == set(lot_ids)
    # acknowledged (202) but not sent yet when the node dies
    waiting = [acknowledge((crew, other)[i % 2], [f"B-{i}-{k}" for k in range(2)], f"b{i}") for i in range(5)]
    assert registry.node.snapshots.newest_first() == saved, "the chain was saved: the test proves nothing"

    registry.node.kill()
    registry.restart()

    assert registry.client.lot("BIG-000") is None, "the node kept the lost blocks: the test proves nothing"
    assert registry.registered_lot_ids() == []
    worker = OutboxWorker(store, registry.client, registry.signer_for)  # a fresh worker, as after a restart
    settle(worker)

    views = [store.get(o) for o in sent + waiting]
    assert all(view is not None and view.status is OperationStatus.CONFIRMED for view in views)
    on_chain = registry.registered_lot_ids()
    assert Counter(on_chain) == Counter(lot_ids), "a lot is missing from the chain, or registered twice"
    assert all(registry.client.lot(lot_id) is not None for lot_id in lot_ids)
    # what the node lost went out again as the very same signed bytes, so it could not land twice
    assert {o: [tx.tx_hash for tx in store.get(o).transactions] for o in sent} == hashes_before  # type: ignore[union-attr]
    for key in (crew, other):
        # one nonce per chain transaction; a coalesced one carries several operations' rows
        by_hash = {
            tx.tx_hash: tx.nonce
            for view in views
            if view is not None and view.sender == key.address
            for tx in view.transactions
            if tx.nonce is not None
        }
        nonces = sorted(by_hash.values())
        assert nonces == list(range(len(nonces)))
        assert registry.client.w3.eth.get_transaction_count(key.address) == len(nonces)
    # the index followed the node back and forward again: every lot once, from the live chain
    index = indexed_lots(engine, registry)
    assert set(index) == set(lot_ids)
    live_hashes = {tx.tx_hash for view in views if view is not None for tx in view.transactions}
    assert set(index.values()) <= live_hashes


def test_32_concurrent_clients_neither_collide_on_a_nonce_nor_lose_or_duplicate_a_lot(
    registry: Registry, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    store = OutboxStore(engine)
    credentials = credential_ids(engine, registry)
    worker = OutboxWorker(store, registry.client, registry.signer_for)
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
    clients, per_client, lots_per_operation = 32, 5, 3
    start = threading.Barrier(clients)
    operations: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def client(number: int) -> None:
        key = registry.registrars[number % len(registry.registrars)]
        mine = []
        try:
            start.wait()
            for index in range(per_client):
                ids = [f"C{number:02d}-{index}-{k}" for k in range(lots_per_operation)]
                request = {
                    "credential_id": credentials[key.address],
                    "sender": key.address,
                    "command": command_of(OperationKind.REGISTER_LOTS, register_payload(*ids)),
                    "idempotency_key": f"client-{number}-{index}",
                }
                view, created = store.submit(**request)  # type: ignore[arg-type]
                retried, created_again = store.submit(**request)  # type: ignore[arg-type]  # a client retry
                assert created
                assert not created_again
                assert retried.id == view.id
                mine.append(view.id)
        except BaseException as error:
            errors.append(error)
        operations[number] = mine

    caplog.set_level(logging.WARNING, logger="provenance.chain.outbox")
    running.start()
    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        all_ids = [operation_id for mine in operations.values() for operation_id in mine]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if all(store.get(o).status.is_final for o in all_ids):  # type: ignore[union-attr]
                break
            time.sleep(0.2)
    finally:
        stop.set()
        running.join(timeout=30)

    views = [store.get(o) for o in all_ids]
    assert len(all_ids) == clients * per_client
    assert [view.status for view in views if view is not None] == [OperationStatus.CONFIRMED] * len(all_ids)
    expected = [f"C{n:02d}-{i}-{k}" for n in range(clients) for i in range(per_client) for k in range(3)]
    on_chain = registry.registered_lot_ids()
    assert Counter(on_chain) == Counter(expected), "a lot is missing from the chain, or registered twice"
    for key in registry.registrars:
        rows = [
            tx
            for view in views
            if view is not None and view.sender == key.address
            for tx in view.transactions
        ]
        assert all(tx.nonce is not None and tx.tx_hash is not None for tx in rows)
        by_hash: dict[str | None, set[int | None]] = {}
        for tx in rows:  # a coalesced transaction carries several operations, all at its one nonce
            by_hash.setdefault(tx.tx_hash, set()).add(tx.nonce)
        assert all(len(held) == 1 for held in by_hash.values()), "one transaction, two nonces"
        nonces = sorted(nonce for held in by_hash.values() for nonce in held if nonce is not None)
        assert nonces == list(range(len(nonces))), "a nonce collision or gap"
        assert registry.client.w3.eth.get_transaction_count(key.address) == len(nonces)
    assert not [record for record in caplog.records if record.message.startswith("outbox worker:")]
    assert Web3.is_address(registry.deployment.registry)


def test_with_finalized_a_write_is_confirmed_exactly_when_the_nodes_finalized_block_holds_it(
    registry: Registry, engine: Engine
) -> None:
    """Anvil answers `finalized` with a block well under its head (two epochs of 32 slots), as a
    chain with a finality gadget does: the worker must follow what the node answers, not depth."""
    store = OutboxStore(engine)
    crew = registry.registrars[0]
    view, _ = store.submit(
        credential_id=credential_ids(engine, registry)[crew.address],
        sender=crew.address,
        command=command_of(OperationKind.REGISTER_LOTS, register_payload("FIN-1")),
        idempotency_key=None,
    )
    worker = OutboxWorker(store, registry.client, registry.signer_for, confirmations="finalized")
    w3 = registry.client.w3
    settle(worker)
    mined = store.get(view.id)
    assert mined is not None
    assert mined.status is OperationStatus.SENT
    block = mined.transactions[0].block_number
    assert block is not None

    seen: list[tuple[int, OperationStatus]] = []
    while not seen or seen[-1][1] is not OperationStatus.CONFIRMED:
        assert len(seen) < 200, "the node's finalized block never reached the write"
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        settle(worker)
        now = store.get(view.id)
        assert now is not None
        seen.append((w3.eth.get_block("finalized")["number"], now.status))

    assert seen[0][0] < block, "the node finalizes its head at once: the test proves nothing"
    assert all(status is OperationStatus.SENT for finalized, status in seen if finalized < block)
    assert seen[-1][0] == block, "confirmed only once the finalized block holds it, not later"

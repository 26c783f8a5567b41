"""The outbox worker against the in-process chain: what is acknowledged reaches the chain once, a
refusal comes back as the contract's custom error, nonces are never reused nor skipped, and what the
chain loses is sent again with the same bytes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from provenance.chain.node_calls import node_calls
from provenance.chain.outbox import TX_GAS_CAP, OutboxWorker
from provenance.domain.commands import SubmitAssay, command_of
from provenance.domain.operations import OperationKind, OperationStatus, OperationView
from provenance.domain.outbox import NOT_SENT
from provenance.domain.records import LotRegistration
from provenance.errors import RpcError
from provenance.index.credentials_store import CredentialStore
from provenance.index.db import make_engine, upgrade
from provenance.index.outbox import OutboxStore
from tests.dbs import empty_database
from tests.outbox_support import EXTRACTED_AT, record_hash, register_payload, settle
from tests.unit.conftest import SITE, Chain

REGISTER = OperationKind.REGISTER_LOTS


@dataclass
class Outbox:
    """An outbox database, its worker, and a registrar key of SITE with its API credential."""

    chain: Chain
    store: OutboxStore
    credentials: CredentialStore
    registrar: LocalAccount
    credential_id: str
    keys: dict[str, LocalAccount] = field(default_factory=dict)

    def worker(self, **options: Any) -> OutboxWorker:
        return OutboxWorker(self.store, self.chain.client, self.signer_for, **options)

    def signer_for(self, sender: str) -> LocalAccount:
        return self.keys[sender.lower()]

    def account(self, name: str, *roles: bytes) -> tuple[LocalAccount, str]:
        """A funded key holding `roles`, and a credential for it."""
        key = self.chain.new_key()
        for role in roles:
            self.chain.client.grant_role(self.chain.admin, role, key.address)
        self.keys[key.address.lower()] = key
        credential_id, _ = self.credentials.create(name, key.address, f"dev:{name}")
        return key, credential_id

    def submit(
        self,
        kind: OperationKind,
        payload: dict[str, Any],
        *,
        key: str | None = None,
        as_: tuple[LocalAccount, str] | None = None,
    ) -> str:
        signer, credential_id = as_ or (self.registrar, self.credential_id)
        view, _ = self.store.submit(
            credential_id=credential_id,
            sender=signer.address,
            command=command_of(kind, payload),
            idempotency_key=key,
        )
        return view.id

    def register(self, *lot_ids: str) -> str:
        return self.submit(REGISTER, register_payload(*lot_ids))

    def view(self, operation_id: str) -> OperationView:
        view = self.store.get(operation_id)
        assert view is not None
        return view

    def chain_nonce(self, key: LocalAccount | None = None) -> int:
        return int(self.chain.w3.eth.get_transaction_count((key or self.registrar).address))

    def registered(self, operation: OperationView) -> list[str]:
        """The lot ids of every LotRegistered event the operation's mined transactions emitted."""
        event = self.chain.client.contract.events.LotRegistered()
        lot_ids = []
        for tx in operation.transactions:
            if tx.tx_hash is None or tx.block_number is None:
                continue
            receipt = self.chain.w3.eth.get_transaction_receipt(tx.tx_hash)  # type: ignore[arg-type]
            for log in event.process_receipt(receipt, errors=DISCARD):
                lot_ids.append(log["args"]["lotId"].rstrip(b"\0").decode())
        return lot_ids


def make_outbox(chain: Chain, url: str) -> Outbox:
    upgrade(url)
    engine = make_engine(url)
    credentials = CredentialStore(engine)
    registrar = chain.new_key()
    chain.client.grant_role(chain.admin, chain.client.registrar_role(SITE), registrar.address)
    credential_id, _ = credentials.create("pit-ops", registrar.address, "dev:pit-ops")
    return Outbox(
        chain,
        OutboxStore(engine),
        credentials,
        registrar,
        credential_id,
        {registrar.address.lower(): registrar},
    )


@pytest.fixture
def outbox(chain: Chain, tmp_path: Path) -> Iterator[Outbox]:
    """On SQLite: the worker's logic does not depend on the engine (test_outbox_store covers both)."""
    with empty_database("sqlite", tmp_path) as url:
        box = make_outbox(chain, url)
        yield box
        box.store.engine.dispose()


@pytest.fixture
def outbox_on_each_engine(chain: Chain, db_kind: str, tmp_path: Path) -> Iterator[Outbox]:
    with empty_database(db_kind, tmp_path) as url:
        box = make_outbox(chain, url)
        yield box
        box.store.engine.dispose()


@contextmanager
def manual_mining(chain: Chain) -> Iterator[None]:
    """Transactions wait in the pool until the test mines a block (snapshots do not restore this)."""
    chain.tester.disable_auto_mine_transactions()
    try:
        yield
    finally:
        chain.tester.enable_auto_mine_transactions()


# ------------------------------------------------------------------------------ the happy path


def test_a_registration_is_signed_sent_and_confirmed_with_its_block(outbox_on_each_engine: Outbox) -> None:
    box = outbox_on_each_engine
    operation_id = box.register("L-1", "L-2")

    settle(box.worker())
    view = box.view(operation_id)

    assert view.status is OperationStatus.CONFIRMED
    (tx,) = view.transactions
    receipt = box.chain.w3.eth.get_transaction_receipt(tx.tx_hash)  # type: ignore[arg-type]
    assert (tx.status, tx.nonce, tx.block_number, tx.gas_used) == (
        OperationStatus.CONFIRMED,
        0,
        receipt["blockNumber"],
        receipt["gasUsed"],
    )
    assert tx.block_hash == receipt["blockHash"].to_0x_hex()
    assert receipt["from"] == box.registrar.address
    assert box.registered(view) == ["L-1", "L-2"]
    lot = box.chain.client.lot("L-2")
    assert lot is not None
    assert lot.custodian == box.registrar.address


def test_every_kind_of_operation_reaches_the_chain(outbox: Outbox) -> None:
    client = outbox.chain.client
    processor = outbox.account("plant", client.registrar_role(SITE), client.role("PROCESSOR_ROLE"))
    buyer = outbox.account("buyer")
    outbox.register("ROM-1")
    settle(outbox.worker())
    assay = {
        "lot_id": "ROM-1",
        "grade_ppm": 11_800,
        "method": "XRF",
        "certificate_hash": record_hash("certificate"),
        "assayed_at": EXTRACTED_AT + 3600,
    }
    signature = client.sign_assay(
        outbox.chain.lab, SubmitAssay.from_payload({"assay": assay, "signature": "0x" + "00" * 65}).assay
    )
    operations = [
        outbox.submit(OperationKind.HAND_OVER, {"lot_ids": ["ROM-1"], "to": processor[0].address}),
        outbox.submit(OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["ROM-1"]}, as_=processor),
        outbox.submit(
            OperationKind.TRANSFORM,
            {
                "kind": "split",
                "site": SITE,
                "inputs": [{"lot_id": "ROM-1", "mass_g": 24_500_000}],
                "outputs": [
                    {
                        "lot_id": "FINES-1",
                        "commodity": "COAL",
                        "mass_g": 12_000_000,
                        "grade_ppm": 11_000,
                        "record_hash": record_hash("F"),
                    },
                    {
                        "lot_id": "LUMP-1",
                        "commodity": "COAL",
                        "mass_g": 12_000_000,
                        "grade_ppm": 13_000,
                        "record_hash": record_hash("L"),
                    },
                ],
                "loss_g": 500_000,
                "record_hash": record_hash("split"),
            },
            as_=processor,
        ),
        outbox.submit(OperationKind.SUBMIT_ASSAY, {"assay": assay, "signature": "0x" + signature.hex()}),
        outbox.submit(
            OperationKind.ANCHOR_DOCUMENT,
            {"lot_id": "LUMP-1", "kind": "weighbridge", "document_hash": record_hash("ticket")},
            as_=processor,
        ),
        outbox.submit(
            OperationKind.HAND_OVER, {"lot_ids": ["LUMP-1"], "to": buyer[0].address}, as_=processor
        ),
        outbox.submit(OperationKind.CANCEL_HANDOVER, {"lot_ids": ["LUMP-1"]}, as_=processor),
    ]

    settle(outbox.worker())

    assert [(outbox.view(o).kind, outbox.view(o).status, outbox.view(o).error_name) for o in operations] == [
        (outbox.view(o).kind, OperationStatus.CONFIRMED, None) for o in operations
    ]
    lump = client.lot("LUMP-1")
    assert lump is not None
    assert (lump.custodian, lump.remaining_g, lump.pending_custodian) == (
        processor[0].address,
        12_000_000,
        None,
    )


# ------------------------------------------------------------------------------ refusals


def test_a_refused_simulation_fails_with_the_custom_error_and_uses_no_nonce(outbox: Outbox) -> None:
    worker = outbox.worker()
    outbox.register("L-1")
    settle(worker)

    duplicate = outbox.register("L-1")
    settle(worker)
    after = outbox.register("L-2")
    settle(worker)

    refused = outbox.view(duplicate)
    assert refused.status is OperationStatus.FAILED
    assert (refused.error_name, refused.error_args) == ("LotExists", {"lotId": "L-1"})
    assert [(tx.nonce, tx.tx_hash, tx.error_name) for tx in refused.transactions] == [
        (None, None, "LotExists")
    ]
    assert outbox.view(after).transactions[0].nonce == 1  # no gap where the refusal was
    assert outbox.chain_nonce() == 2


def test_a_sender_without_the_role_is_refused_by_the_contract(outbox: Outbox) -> None:
    outsider = outbox.account("outsider")

    operation_id = outbox.submit(REGISTER, register_payload("L-1"), as_=outsider)
    settle(outbox.worker())

    view = outbox.view(operation_id)
    assert view.status is OperationStatus.FAILED
    assert view.error_name == "AccessControlUnauthorizedAccount"
    assert view.error_args is not None
    assert Web3.to_checksum_address(view.error_args["account"]) == outsider[0].address
    assert outbox.chain_nonce(outsider[0]) == 0


def test_a_refusal_before_sending_fails_the_whole_batch_and_sends_none_of_it(outbox: Outbox) -> None:
    worker = outbox.worker(lots_per_tx=1)
    outbox.register("L-2")
    settle(worker)

    batch = outbox.register("L-1", "L-2", "L-3")
    settle(worker)

    view = outbox.view(batch)
    assert view.status is OperationStatus.FAILED
    assert (view.error_name, view.error_args) == ("LotExists", {"lotId": "L-2"})
    assert [(tx.status, tx.nonce, tx.error_name) for tx in view.transactions] == [
        (OperationStatus.FAILED, None, NOT_SENT),
        (OperationStatus.FAILED, None, "LotExists"),
        (OperationStatus.FAILED, None, NOT_SENT),
    ]
    assert outbox.chain.client.lot("L-1") is None
    assert outbox.chain.client.lot("L-3") is None
    assert outbox.store.nonce_of(outbox.registrar.address) == 1


def test_a_failure_on_chain_is_decoded_and_the_later_transactions_still_use_their_nonces(
    outbox: Outbox,
) -> None:
    rival = outbox.account("rival-crew", outbox.chain.client.registrar_role(SITE))
    worker = outbox.worker(lots_per_tx=1)
    with manual_mining(outbox.chain):
        first = outbox.submit(REGISTER, register_payload("L-2"), as_=rival)
        batch = outbox.register("L-1", "L-2", "L-3")
        settle(worker)  # both simulate against the mined state, where L-2 is still free, and are signed
        assert [tx.nonce for tx in outbox.view(batch).transactions] == [0, 1, 2]
        for _ in range(4):  # eth-tester pools one transaction per sender: they are mined one by one
            outbox.chain.tester.mine_blocks(1)
            settle(worker)

    assert outbox.view(first).status is OperationStatus.CONFIRMED
    view = outbox.view(batch)
    assert view.status is OperationStatus.FAILED
    assert (view.error_name, view.error_args) == ("LotExists", {"lotId": "L-2"})
    assert [(tx.status, tx.error_name) for tx in view.transactions] == [
        (OperationStatus.CONFIRMED, None),
        (OperationStatus.FAILED, "LotExists"),
        (OperationStatus.CONFIRMED, None),
    ]
    assert view.transactions[1].block_number is not None
    assert outbox.registered(view) == ["L-1", "L-3"]
    assert outbox.chain_nonce() == 3


def test_an_operation_that_depends_on_one_in_flight_waits_for_it(outbox: Outbox) -> None:
    buyer = outbox.account("buyer")
    worker = outbox.worker()
    with manual_mining(outbox.chain):
        registration = outbox.register("L-1")
        handover = outbox.submit(OperationKind.HAND_OVER, {"lot_ids": ["L-1"], "to": buyer[0].address})
        settle(worker)  # L-1 is unknown until the registration is mined: the handover waits
        assert outbox.view(handover).status is OperationStatus.PENDING
        for _ in range(2):
            outbox.chain.tester.mine_blocks(1)
            settle(worker)

    assert outbox.view(registration).status is OperationStatus.CONFIRMED
    assert outbox.view(handover).status is OperationStatus.CONFIRMED
    lot = outbox.chain.client.lot("L-1")
    assert lot is not None
    assert lot.pending_custodian == buyer[0].address


# ------------------------------------------------------------------------------ batches


@pytest.mark.slow
def test_a_batch_of_1000_lots_is_split_into_transactions_that_all_confirm(outbox: Outbox) -> None:
    lot_ids = [f"SH2-T{i:04d}" for i in range(1000)]
    operation_id = outbox.register(*lot_ids)

    settle(outbox.worker())

    view = outbox.view(operation_id)
    assert view.status is OperationStatus.CONFIRMED
    assert [tx.nonce for tx in view.transactions] == [0, 1, 2]
    assert all(tx.gas_used is not None and tx.gas_used < TX_GAS_CAP for tx in view.transactions)
    assert outbox.registered(view) == lot_ids


def test_a_transaction_over_the_gas_or_size_limit_is_split_again(outbox: Outbox) -> None:
    lot_ids = [f"L-{i:03d}" for i in range(100)]
    by_gas = outbox.register(*lot_ids[:60])
    by_size = outbox.register(*lot_ids[60:])

    settle(outbox.worker(max_tx_gas=800_000, max_tx_bytes=3_000))

    gas_view, size_view = outbox.view(by_gas), outbox.view(by_size)
    assert gas_view.status is size_view.status is OperationStatus.CONFIRMED
    assert len(gas_view.transactions) >= 4
    assert all(tx.gas_used is not None and tx.gas_used <= 800_000 for tx in gas_view.transactions)
    assert len(size_view.transactions) >= 4
    assert outbox.registered(gas_view) + outbox.registered(size_view) == lot_ids
    nonces = [tx.nonce for view in (gas_view, size_view) for tx in view.transactions]
    assert sorted(nonces) == list(range(len(nonces)))


# ------------------------------------------------------------------------------ what the chain loses


def test_a_transaction_the_chain_lost_is_sent_again_with_the_same_hash(outbox: Outbox) -> None:
    worker = outbox.worker()
    before = outbox.chain.tester.take_snapshot()
    operation_id = outbox.register("L-1")
    settle(worker)
    first = outbox.view(operation_id).transactions[0]

    outbox.chain.tester.revert_to_snapshot(before)  # the node forgets the block and the transaction
    assert outbox.chain.client.lot("L-1") is None
    settle(worker)

    view = outbox.view(operation_id)
    again = view.transactions[0]
    assert view.status is OperationStatus.CONFIRMED
    assert (again.tx_hash, again.nonce) == (first.tx_hash, 0)
    assert outbox.chain.client.lot("L-1") is not None
    assert outbox.chain_nonce() == 1


def test_lost_transactions_of_several_senders_go_again_in_the_order_the_chain_had_them(
    outbox: Outbox,
) -> None:
    """A handover by the registrar, then the buyer's acceptance: both lost with their blocks. Sent
    again by sender and nonce, the acceptance would go first (the buyer's address sorts first here)
    and fail on chain with NoPendingHandover; sent in their first order, both confirm."""
    worker = outbox.worker()
    outbox.register("H-1")
    settle(worker)
    for attempt in itertools.count():  # a buyer whose address sorts before the registrar's
        buyer = outbox.account(f"buyer-{attempt}")
        if buyer[0].address.lower() < outbox.registrar.address.lower():
            break
    before = outbox.chain.tester.take_snapshot()
    handover = outbox.submit(OperationKind.HAND_OVER, {"lot_ids": ["H-1"], "to": buyer[0].address})
    settle(worker)
    accept = outbox.submit(OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["H-1"]}, as_=buyer)
    settle(worker)
    assert outbox.view(accept).status is OperationStatus.CONFIRMED

    outbox.chain.tester.revert_to_snapshot(before)  # both blocks and both transactions are gone
    settle(worker)

    assert outbox.view(handover).status is OperationStatus.CONFIRMED
    assert outbox.view(accept).status is OperationStatus.CONFIRMED, outbox.view(accept).error_name
    lot = outbox.chain.client.lot("H-1")
    assert lot is not None
    assert lot.custodian == buyer[0].address


def test_a_reorg_in_the_middle_of_a_step_does_not_fail_what_needed_the_lost_blocks(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain reorganises after a step re-checked its recent blocks and before it simulates a new
    operation: the handover's lot is gone for the moment (UnknownLot), but only because its
    registration was dropped and has not been sent again yet. Failing the handover then would be
    for good (tests/faults/test_reorg_writes.py saw it); it is tried again once the step after has
    re-sent the registration."""
    worker = outbox.worker()
    buyer, _ = outbox.account("buyer")
    before = outbox.chain.tester.take_snapshot()
    registration = outbox.register("R-1")
    settle(worker)
    assert outbox.view(registration).status is OperationStatus.CONFIRMED
    handover = outbox.submit(OperationKind.HAND_OVER, {"lot_ids": ["R-1"], "to": buyer.address})
    send_new = worker._send_new

    def reorg_then_send_new(**options: Any) -> int:
        monkeypatch.setattr(worker, "_send_new", send_new)  # once
        outbox.chain.tester.revert_to_snapshot(before)  # the registration's block is gone
        return send_new(**options)

    monkeypatch.setattr(worker, "_send_new", reorg_then_send_new)
    for _ in range(10):  # a deferred refusal changes nothing in its step: settle() stops there
        settle(worker)
        if outbox.view(handover).status.is_final:
            break

    assert outbox.view(handover).status is OperationStatus.CONFIRMED, outbox.view(handover).error_name
    assert outbox.view(registration).status is OperationStatus.CONFIRMED
    lot = outbox.chain.client.lot("R-1")
    assert lot is not None
    assert lot.pending_custodian == buyer.address


def confirmed_handover_after_a_snapshot(
    outbox: Outbox, worker: OutboxWorker, lot_id: str, to: LocalAccount
) -> tuple[Any, str]:
    """A registered lot, a chain snapshot, then the lot's handover to `to`, confirmed: reverting to
    the snapshot drops the handover's block. Returns the snapshot and the handover's operation."""
    outbox.register(lot_id)
    settle(worker)
    before = outbox.chain.tester.take_snapshot()
    handover = outbox.submit(OperationKind.HAND_OVER, {"lot_ids": [lot_id], "to": to.address})
    settle(worker)
    return before, handover


def test_an_acceptance_that_failed_only_because_a_reorg_dropped_its_handover_goes_again(
    outbox: Outbox,
) -> None:
    """The buyer's acceptance is simulated against the registrar's handover and sent; a reorg then
    drops the handover's block, and the new chain mines the acceptance first: it fails on chain
    (NoPendingHandover) for a reason the outbox is about to undo, by sending the handover again.
    Failing it would be for good (tests/faults/test_reorg_writes.py saw it, 2 runs in 5); it is
    simulated and signed anew once the handover is back, and confirms."""
    worker = outbox.worker()
    buyer = outbox.account("buyer")
    before, handover = confirmed_handover_after_a_snapshot(outbox, worker, "D-1", buyer[0])
    with manual_mining(outbox.chain):
        accept = outbox.submit(OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["D-1"]}, as_=buyer)
        worker.step()  # simulated against the handover, signed and sent: in the pool
        [sent] = outbox.view(accept).transactions
        assert sent.tx_hash is not None
        raw = next(tx.raw_tx for tx in outbox.store.in_flight() if tx.operation_id == accept)
    outbox.chain.tester.revert_to_snapshot(before)  # the handover's block is gone
    assert raw is not None
    outbox.chain.w3.eth.send_raw_transaction(raw)  # the new chain mines the acceptance first
    mined = outbox.chain.w3.eth.get_transaction_receipt(sent.tx_hash)  # type: ignore[arg-type]
    assert mined["status"] == 0

    for _ in range(10):
        settle(worker)
        if outbox.view(accept).status.is_final:
            break

    assert outbox.view(handover).status is OperationStatus.CONFIRMED
    view = outbox.view(accept)
    assert view.status is OperationStatus.CONFIRMED, (view.error_name, view.error_args)
    assert view.transactions[0].tx_hash != sent.tx_hash  # signed anew: the first one's nonce is spent
    lot = outbox.chain.client.lot("D-1")
    assert lot is not None
    assert (lot.custodian, lot.pending_custodian) == (buyer[0].address, None)


def test_a_refusal_with_nothing_lost_on_its_way_back_still_fails(outbox: Outbox) -> None:
    """The wait for what a reorg dropped is bounded by it: once the lost handover is back on the
    chain, an acceptance that is refused (here: by someone who is not the pending custodian) fails."""
    worker = outbox.worker()
    buyer = outbox.account("buyer")
    stranger = outbox.account("stranger")
    before, handover = confirmed_handover_after_a_snapshot(outbox, worker, "D-2", buyer[0])
    outbox.chain.tester.revert_to_snapshot(before)
    wrong = outbox.submit(OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["D-2"]}, as_=stranger)

    for _ in range(10):
        settle(worker)
        if outbox.view(wrong).status.is_final:
            break

    assert outbox.view(handover).status is OperationStatus.CONFIRMED
    assert outbox.view(wrong).status is OperationStatus.FAILED
    assert outbox.view(wrong).error_name == "NotReceiver"


def test_a_transaction_whose_block_a_longer_chain_replaced_is_sent_again(outbox: Outbox) -> None:
    worker = outbox.worker()
    before = outbox.chain.tester.take_snapshot()
    operation_id = outbox.register("L-1")
    settle(worker)
    first = outbox.view(operation_id).transactions[0]
    assert first.block_number is not None

    outbox.chain.tester.revert_to_snapshot(before)
    outbox.chain.tester.mine_blocks(3)  # a reorg: other blocks at and above its height
    settle(worker)

    again = outbox.view(operation_id).transactions[0]
    assert again.status is OperationStatus.CONFIRMED
    assert again.tx_hash == first.tx_hash
    assert again.block_number is not None
    assert again.block_number > first.block_number
    assert again.block_hash == outbox.chain.w3.eth.get_block(again.block_number)["hash"].to_0x_hex()


def test_a_transaction_recorded_but_never_sent_is_sent_by_the_next_step(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = outbox.worker()
    # the process died right after the commit
    monkeypatch.setattr(worker.sender, "send", lambda raw, tx: False)
    operation_id = outbox.register("L-1")
    worker.step()
    stored = outbox.view(operation_id).transactions[0]
    assert (stored.status, stored.nonce) == (OperationStatus.SENT, 0)
    assert stored.tx_hash is not None
    monkeypatch.undo()

    settle(worker)

    view = outbox.view(operation_id)
    assert view.status is OperationStatus.CONFIRMED
    assert view.transactions[0].tx_hash == stored.tx_hash


def test_a_nonce_taken_by_another_transaction_is_replaced_by_a_fresh_one(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = outbox.worker()
    monkeypatch.setattr(worker.sender, "send", lambda raw, tx: False)
    operation_id = outbox.register("L-1")
    worker.step()
    monkeypatch.undo()
    w3 = outbox.chain.w3
    elsewhere = outbox.registrar.sign_transaction(  # the same key, used outside the outbox, takes nonce 0
        {
            "type": 2,
            "chainId": w3.eth.chain_id,
            "nonce": 0,
            "to": Account.create().address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    w3.eth.send_raw_transaction(elsewhere.raw_transaction)

    settle(worker)

    view = outbox.view(operation_id)
    assert view.status is OperationStatus.CONFIRMED
    assert view.transactions[0].nonce == 1
    assert outbox.registered(view) == ["L-1"]
    assert outbox.store.nonce_of(outbox.registrar.address) == 2


def test_a_transaction_is_confirmed_only_under_the_configured_confirmations(outbox: Outbox) -> None:
    worker = outbox.worker(confirmations=2)
    operation_id = outbox.register("L-1")

    settle(worker)
    mined = outbox.view(operation_id)
    outbox.chain.tester.mine_blocks(1)
    settle(worker)
    one_deep = outbox.view(operation_id)
    outbox.chain.tester.mine_blocks(1)
    settle(worker)

    assert (mined.status, mined.transactions[0].block_number is not None) == (OperationStatus.SENT, True)
    assert one_deep.status is OperationStatus.SENT
    assert outbox.view(operation_id).status is OperationStatus.CONFIRMED


class FinalityAt:
    """The node's calls, except that its `finalized` block is the one the test names (eth-tester's
    own has no finality gadget)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.finalized: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def block(self, number: int | str) -> Any:
        if number == "finalized":
            return None if self.finalized is None else self.inner.block(self.finalized)
        return self.inner.block(number)


def test_with_finalized_a_transaction_is_confirmed_once_the_nodes_finalized_block_holds_it(
    outbox: Outbox,
) -> None:
    node = FinalityAt(node_calls(outbox.chain.client.w3))
    worker = outbox.worker(confirmations="finalized", node=node)
    operation_id = outbox.register("L-1")

    settle(worker)
    mined = outbox.view(operation_id)
    block = mined.transactions[0].block_number
    assert block is not None
    outbox.chain.tester.mine_blocks(5)  # deep, but not finalized: depth alone does not count
    settle(worker)
    deep_only = outbox.view(operation_id).status
    node.finalized = block - 1
    settle(worker)
    below = outbox.view(operation_id).status
    node.finalized = block
    settle(worker)

    assert (mined.status, deep_only, below) == (OperationStatus.SENT,) * 3
    assert outbox.view(operation_id).status is OperationStatus.CONFIRMED


def test_operations_of_a_sender_without_a_key_wait_and_do_not_hold_up_the_others(outbox: Outbox) -> None:
    keyless = outbox.account("keyless", outbox.chain.client.registrar_role(SITE))
    del outbox.keys[keyless[0].address.lower()]
    worker = outbox.worker(operations_per_step=2)
    stuck = [outbox.submit(REGISTER, register_payload(f"K-{i}"), as_=keyless) for i in range(3)]
    served = outbox.register("L-1")

    settle(worker)

    assert [outbox.view(o).status for o in stuck] == [OperationStatus.PENDING] * 3
    assert outbox.chain_nonce(keyless[0]) == 0
    assert outbox.view(served).status is OperationStatus.CONFIRMED


def test_an_operation_the_node_chokes_on_does_not_hold_up_the_others(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = outbox.worker(coalesce_lots=0)  # one transaction each, so one can choke alone
    choking = outbox.register("L-1")
    after = outbox.register("L-2")
    prepare = worker.planner.prepare

    def hiccup(operation: Any) -> Any:
        if operation.id == choking:
            raise ConnectionError("the node dropped the connection")
        return prepare(operation)

    monkeypatch.setattr(worker.planner, "prepare", hiccup)
    settle(worker)
    assert outbox.view(choking).status is OperationStatus.PENDING
    assert outbox.view(after).status is OperationStatus.CONFIRMED
    monkeypatch.undo()

    settle(worker)

    assert outbox.view(choking).status is OperationStatus.CONFIRMED
    assert [outbox.view(o).transactions[0].nonce for o in (after, choking)] == [0, 1]


def test_an_operation_the_node_refuses_says_why_until_it_goes_through(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request the node refuses for a reason that will not change by itself (Hardhat refused a
    call object naming both `data` and `input`: -32602) kept operations pending in silence."""
    worker = outbox.worker(coalesce_lots=0)
    refused = outbox.register("L-1")
    estimate = worker.node.estimate_gas

    def refuse(transaction: Any) -> int:
        raise RpcError(-32602, "duplicate field `data` at line 1 column 360")

    monkeypatch.setattr(worker.node, "estimate_gas", refuse)
    settle(worker)

    view = outbox.view(refused)
    assert view.status is OperationStatus.PENDING, (
        "an acknowledged write is not failed for the node's refusal"
    )
    assert view.stuck_reason is not None
    assert "duplicate field `data`" in view.stuck_reason
    assert "-32602" in view.stuck_reason
    count, oldest = outbox.store.stuck()
    assert (count, [operation_id for operation_id, _ in oldest]) == (1, [refused])

    monkeypatch.setattr(worker.node, "estimate_gas", estimate)
    settle(worker)

    view = outbox.view(refused)
    assert (view.status, view.stuck_reason) == (OperationStatus.CONFIRMED, None)
    assert outbox.store.stuck() == (0, [])


# ------------------------------------------------------------------------------ chain conflicts


def lost_and_taken(outbox: Outbox) -> tuple[str, str, int]:
    """L-1 registered and confirmed, then its block lost, and meanwhile the lot id taken by another
    registrar's transaction: the same signed bytes, which the chain took before, now revert
    (LotExists). Returns the held operation, one acknowledged after it, and the lost block."""
    worker = outbox.worker()
    before = outbox.chain.tester.take_snapshot()
    held = outbox.register("L-1")
    settle(worker)
    assert outbox.view(held).status is OperationStatus.CONFIRMED
    lost_block = outbox.view(held).transactions[0].block_number
    assert lost_block is not None
    outbox.chain.tester.revert_to_snapshot(before)
    outbox.chain.register(lot_registration("L-1"), sender=outbox.chain.clerk)
    settle(worker)
    later = outbox.register("L-2")
    settle(worker)
    return held, later, lost_block


def lot_registration(lot_id: str) -> LotRegistration:
    return LotRegistration(lot_id, SITE, "F3", "COAL", 1_000, 12_345, EXTRACTED_AT, bytes(32))


def test_an_acknowledged_operation_the_chain_took_lost_and_then_refused_is_held_not_failed(
    outbox: Outbox,
) -> None:
    held, later, lost_block = lost_and_taken(outbox)

    assert not outbox.view(held).status.is_final, "an operation the chain once confirmed ended"
    (conflict,) = outbox.store.open_conflicts()
    assert (conflict.operation_id, conflict.error_name, conflict.lost_block) == (
        held,
        "LotExists",
        lost_block,
    )
    # nothing more is sent while the conflict is open: the later write waits, acknowledged
    assert outbox.view(later).status is OperationStatus.PENDING
    assert outbox.chain.client.lot("L-2") is None


def test_a_person_fails_the_held_operation_and_the_outbox_sends_again(outbox: Outbox) -> None:
    held, later, _ = lost_and_taken(outbox)

    resolved = outbox.store.resolve_conflicts(fail_held=True)
    settle(outbox.worker())

    assert [conflict.operation_id for conflict in resolved] == [held]
    assert outbox.store.open_conflicts() == []
    view = outbox.view(held)
    assert (view.status, view.error_name) == (OperationStatus.FAILED, "LotExists")
    assert outbox.view(later).status is OperationStatus.CONFIRMED


def test_a_retried_held_operation_is_refused_like_a_new_one(outbox: Outbox) -> None:
    held, later, _ = lost_and_taken(outbox)

    outbox.store.resolve_conflicts(fail_held=False)
    settle(outbox.worker(defer_s=0))

    assert outbox.store.open_conflicts() == []
    assert outbox.view(held).status is OperationStatus.FAILED  # simulated again: the lot id is taken
    assert outbox.view(held).error_name == "LotExists"
    assert outbox.view(later).status is OperationStatus.CONFIRMED

"""Coalescing: small registrations of one sender and site pending together go out as one
`registerLots` transaction, and each operation still ends confirmed or failed on its own account.

A shared simulation that reverts (one lot the chain refuses) falls back to one transaction per
operation, so the refusal fails only the operation that caused it; a shared transaction that fails
on chain registered nothing, and its operations go again one by one."""

from __future__ import annotations

import pytest

from provenance.chain.outbox import SHARED_BASE_GAS, SHARED_LOT_GAS
from provenance.domain.operations import OperationStatus
from tests.outbox_support import register_payload, settle
from tests.unit.conftest import SITE
from tests.unit.test_outbox_worker import Outbox, outbox_on_each_engine  # noqa: F401 (a fixture)

OTHER_SITE = "SH3"


@pytest.fixture
def box(outbox_on_each_engine: Outbox) -> Outbox:  # noqa: F811 (the fixture imported above)
    return outbox_on_each_engine


def lot_count(box: Outbox, lot_id: str) -> int:
    """LotRegistered events of `lot_id` on the whole chain."""
    event = box.chain.client.contract.events.LotRegistered()
    return sum(
        1 for log in event.get_logs(from_block=0) if log["args"]["lotId"].rstrip(b"\0").decode() == lot_id
    )


def test_single_lot_registrations_of_one_sender_and_site_share_one_transaction(box: Outbox) -> None:
    ids = [box.register(f"C-{n}") for n in range(6)]
    nonce_before = box.chain_nonce()

    settle(box.worker())

    views = [box.view(operation_id) for operation_id in ids]
    assert {view.status for view in views} == {OperationStatus.CONFIRMED}
    hashes = {view.transactions[0].tx_hash for view in views}
    assert len(hashes) == 1, "six small registrations should ride one transaction"
    assert box.chain_nonce() == nonce_before + 1
    assert {view.transactions[0].nonce for view in views} == {nonce_before}
    for n in range(6):
        assert lot_count(box, f"C-{n}") == 1
        lot = box.chain.client.lot(f"C-{n}")
        assert lot is not None
        assert lot.custodian == box.registrar.address
    assert box.store.nonce_of(box.registrar.address) == nonce_before + 1


def test_other_sites_and_senders_go_in_transactions_of_their_own(box: Outbox) -> None:
    client = box.chain.client
    other = box.account("pit-b", client.registrar_role(SITE), client.registrar_role(OTHER_SITE))
    client.grant_role(box.chain.admin, client.registrar_role(OTHER_SITE), box.registrar.address)
    from provenance.domain.operations import OperationKind

    mine = [box.register(f"M-{n}") for n in range(3)]
    mine_elsewhere = [
        box.submit(OperationKind.REGISTER_LOTS, register_payload(f"E-{n}", site=OTHER_SITE)) for n in range(2)
    ]
    theirs = [
        box.submit(OperationKind.REGISTER_LOTS, register_payload(f"T-{n}"), as_=other) for n in range(2)
    ]

    settle(box.worker())

    def hashes(ids: list[str]) -> set[str | None]:
        return {box.view(operation_id).transactions[0].tx_hash for operation_id in ids}

    assert all(box.view(i).status is OperationStatus.CONFIRMED for i in mine + mine_elsewhere + theirs)
    groups = [hashes(mine), hashes(mine_elsewhere), hashes(theirs)]
    assert [len(group) for group in groups] == [1, 1, 1]
    assert len(set.union(*groups)) == 3
    site_of = {lot_id: client.lot(lot_id) for lot_id in ("M-0", "E-0", "T-0")}
    assert all(lot is not None for lot in site_of.values())
    assert lot_count(box, "E-1") == 1


def test_a_shared_simulation_refused_by_one_lot_fails_only_that_operation(box: Outbox) -> None:
    settle(box.worker())
    box.register("DUP")
    settle(box.worker())  # DUP is on chain now
    good = [box.register("G-1"), box.register("G-2")]
    duplicate = box.register("DUP")
    good.append(box.register("G-3"))

    settle(box.worker())

    for operation_id in good:
        assert box.view(operation_id).status is OperationStatus.CONFIRMED
    refused = box.view(duplicate)
    assert refused.status is OperationStatus.FAILED
    assert refused.error_name == "LotExists"
    assert refused.transactions[0].nonce is None, "a refused simulation uses no nonce"
    assert [lot_count(box, lot_id) for lot_id in ("G-1", "G-2", "G-3", "DUP")] == [1, 1, 1, 1]


def test_a_shared_transaction_that_fails_on_chain_is_retried_one_by_one(
    box: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain changes between simulation and mining: here the simulation is skipped (its
    `eth_call` answers as if all went well) so the shared transaction carrying a lot that exists
    already is mined and reverts."""
    box.register("TAKEN")
    settle(box.worker())
    worker = box.worker()
    ids = [box.register("R-1"), box.register("TAKEN"), box.register("R-2")]
    monkeypatch.setattr(box.chain.w3.eth, "call", lambda *_args, **_kw: b"")
    worker.step()  # the shared transaction is sent, mined, and fails
    shared_nonce = box.chain_nonce() - 1
    failed_receipt_status = [
        box.chain.w3.eth.get_transaction_receipt(tx["hash"])["status"]
        for tx in box.chain.w3.eth.get_block("latest", full_transactions=True)["transactions"]  # type: ignore[union-attr]
    ]
    assert failed_receipt_status == [0]
    monkeypatch.undo()

    settle(worker)

    views = [box.view(operation_id) for operation_id in ids]
    assert [view.status for view in views] == [
        OperationStatus.CONFIRMED,
        OperationStatus.FAILED,
        OperationStatus.CONFIRMED,
    ]
    assert views[1].error_name == "LotExists"
    assert len({view.transactions[0].tx_hash for view in views}) == 3, "each went alone"
    assert all(view.transactions[0].nonce != shared_nonce for view in views)
    assert [lot_count(box, lot_id) for lot_id in ("R-1", "R-2", "TAKEN")] == [1, 1, 1]


def test_a_lost_shared_transaction_is_sent_again_once_with_the_same_hash(box: Outbox) -> None:
    before = box.chain.tester.take_snapshot()
    ids = [box.register(f"L-{n}") for n in range(4)]
    worker = box.worker()
    settle(worker)
    (first_hash,) = {box.view(operation_id).transactions[0].tx_hash for operation_id in ids}
    box.chain.tester.revert_to_snapshot(before)  # the node forgets the block and the transaction

    settle(worker)

    views = [box.view(operation_id) for operation_id in ids]
    assert {view.status for view in views} == {OperationStatus.CONFIRMED}
    assert {view.transactions[0].tx_hash for view in views} == {first_hash}
    assert [lot_count(box, f"L-{n}") for n in range(4)] == [1, 1, 1, 1]


def test_two_transactions_can_never_share_a_nonce(box: Outbox) -> None:
    """Rows of one shared transaction differ in `share`; another transaction at the same nonce would
    be a second share 0, which the database refuses, and the store never hands that nonce out again."""
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from provenance.domain.outbox import SignedTransaction
    from provenance.index.write_models import OutboxTransaction as Row

    first, second = box.register("N-1"), box.register("N-2")
    box.store.sign_and_record_shared([(first, 0)], 5, lambda _n: SignedTransaction("0x01", "0x" + "aa" * 32))
    with pytest.raises(IntegrityError), box.store.engine.begin() as connection:
        connection.execute(
            update(Row)
            .where(Row.operation_id == second)
            .values(nonce=5, share=0, sender=box.registrar.address.lower())
        )
    recorded = box.store.sign_and_record(
        second, [0], 0, lambda _s, _n: SignedTransaction("0x02", "0x" + "bb" * 32)
    )
    assert recorded[0].nonce == 6


@pytest.mark.parametrize("operations", [2, 31])
def test_a_shared_transaction_has_gas_to_spare_without_an_estimate(box: Outbox, operations: int) -> None:
    """Coalesced registrations are simulated with one `eth_call` and given a gas limit from a
    formula (base + lots × per lot) instead of `eth_estimateGas`: the limit must stay well above
    what the transaction uses, or every shared transaction would fail on chain and go again lot by
    lot."""
    worker = box.worker()
    ids = [box.register(f"G-{number}") for number in range(operations)]
    settle(worker)

    hashes = {box.view(operation_id).transactions[0].tx_hash for operation_id in ids}
    assert len(hashes) < operations, "they shared transactions"
    for tx_hash in hashes:
        tx = box.chain.w3.eth.get_transaction(tx_hash)
        receipt = box.chain.w3.eth.get_transaction_receipt(tx_hash)
        lots = len(worker_lots(box, tx_hash, ids))
        assert receipt["status"] == 1
        assert tx["gas"] == SHARED_BASE_GAS + SHARED_LOT_GAS * lots
        assert receipt["gasUsed"] * 1.5 <= tx["gas"], (lots, receipt["gasUsed"], tx["gas"])


def worker_lots(box: Outbox, tx_hash: str, ids: list[str]) -> list[str]:
    return [operation_id for operation_id in ids if box.view(operation_id).transactions[0].tx_hash == tx_hash]

"""handOver, cancelHandover, acceptHandover: custody moves in two steps, so nobody becomes custodian
of a lot it did not take, and only the custodian can offer or withdraw."""

from __future__ import annotations

import pytest

from provenance.chain.client import LotOnChain
from provenance.domain.values import TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    ZERO_ADDRESS,
    Chain,
    event_names,
    events,
    label,
    lot,
    output,
    refusal,
    transformation,
)


def state(chain: Chain, lot_id: str) -> LotOnChain:
    found = chain.client.lot(lot_id)
    assert found is not None, f"{lot_id} is not registered"
    return found


def test_an_offer_leaves_custody_with_the_custodian_until_accepted(chain: Chain) -> None:
    chain.register(lot("A"))

    receipt = chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    assert events(chain.client, receipt, "CustodyOffered") == [
        {"lotId": label("A"), "from": chain.operator, "to": chain.buyer}
    ]
    assert (state(chain, "A").custodian, state(chain, "A").pending_custodian) == (chain.operator, chain.buyer)


def test_accepting_makes_the_receiver_custodian(chain: Chain) -> None:
    chain.register(lot("A", mass_g=700))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    receipt = chain.client.accept_handover(chain.buyer, ["A"])

    assert events(chain.client, receipt, "CustodyAccepted") == [
        {"lotId": label("A"), "from": chain.operator, "to": chain.buyer}
    ]
    assert state(chain, "A") == LotOnChain(chain.buyer, 700, None)


def test_the_new_custodian_can_pass_the_lot_on_and_the_old_one_cannot(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)
    chain.client.accept_handover(chain.buyer, ["A"])

    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["A"], chain.outsider)
    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.operator})

    chain.client.hand_over(chain.buyer, ["A"], chain.operator)
    chain.client.accept_handover(chain.operator, ["A"])
    assert state(chain, "A").custodian == chain.operator


def test_many_lots_are_offered_and_accepted_in_one_transaction_each(chain: Chain) -> None:
    chain.register(lot("A"), lot("B"), lot("C"))

    offered = chain.client.hand_over(chain.operator, ["A", "B", "C"], chain.buyer)
    accepted = chain.client.accept_handover(chain.buyer, ["C", "A", "B"])

    assert event_names(chain.client, offered) == ["CustodyOffered"] * 3
    assert [event["lotId"] for event in events(chain.client, accepted, "CustodyAccepted")] == [
        label("C"),
        label("A"),
        label("B"),
    ]
    assert {state(chain, lot_id).custodian for lot_id in "ABC"} == {chain.buyer}


def test_a_cancelled_offer_can_no_longer_be_accepted(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    receipt = chain.client.cancel_handover(chain.operator, ["A"])

    assert events(chain.client, receipt, "CustodyOfferCancelled") == [
        {"lotId": label("A"), "from": chain.operator, "to": chain.buyer}
    ]
    assert state(chain, "A").pending_custodian is None
    with pytest.raises(ContractRevert) as refused:
        chain.client.accept_handover(chain.buyer, ["A"])
    assert refusal(refused) == ("NoPendingHandover", {"lotId": "A"})


def test_after_cancelling_the_custodian_may_offer_to_someone_else(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)
    chain.client.cancel_handover(chain.operator, ["A"])

    chain.client.hand_over(chain.operator, ["A"], chain.rival)
    chain.client.accept_handover(chain.rival, ["A"])

    assert state(chain, "A").custodian == chain.rival


# ---------------------------------------------------------------- handOver refusals


def test_only_the_custodian_may_offer_a_lot(chain: Chain) -> None:
    chain.register(lot("A"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.buyer, ["A"], chain.outsider)

    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.buyer})


def test_an_unknown_lot_cannot_be_offered(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["GHOST"], chain.buyer)

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


def test_a_lot_with_nothing_left_cannot_be_offered(chain: Chain) -> None:
    chain.register(lot("A", mass_g=10))
    chain.client.transform(
        chain.operator, transformation(TransformKind.SPLIT, [("A", 10)], [output("A1", 10)])
    )

    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    assert refusal(refused) == ("LotConsumed", {"lotId": "A"})


@pytest.mark.parametrize("receiver", ["zero", "self"])
def test_a_lot_is_offered_to_another_real_account(chain: Chain, receiver: str) -> None:
    chain.register(lot("A"))
    to = ZERO_ADDRESS if receiver == "zero" else chain.operator

    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["A"], to)

    assert refusal(refused) == ("InvalidReceiver", {"lotId": "A", "receiver": to})
    assert state(chain, "A").pending_custodian is None


def test_a_lot_already_offered_cannot_be_offered_again(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["A"], chain.rival)

    assert refusal(refused) == ("HandoverPending", {"lotId": "A", "receiver": chain.buyer})
    assert state(chain, "A").pending_custodian == chain.buyer


def test_an_offer_naming_a_lot_twice_offers_nothing(chain: Chain) -> None:
    chain.register(lot("A"), lot("B"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["A", "B", "A"], chain.buyer)

    assert refusal(refused) == ("HandoverPending", {"lotId": "A", "receiver": chain.buyer})
    assert [state(chain, lot_id).pending_custodian for lot_id in "AB"] == [None, None]


def test_an_empty_offer_changes_nothing_and_says_nothing(chain: Chain) -> None:
    receipt = chain.client.hand_over(chain.operator, [], chain.buyer)

    assert receipt["logs"] == []


# ---------------------------------------------------------------- cancelHandover refusals


def test_only_the_custodian_may_withdraw_an_offer(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.cancel_handover(chain.buyer, ["A"])

    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.buyer})
    assert state(chain, "A").pending_custodian == chain.buyer


def test_a_stranger_withdrawing_an_offer_that_does_not_exist_is_told_it_is_not_custodian(
    chain: Chain,
) -> None:
    chain.register(lot("A"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.cancel_handover(chain.buyer, ["A"])

    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.buyer})


def test_there_must_be_an_offer_to_withdraw(chain: Chain) -> None:
    chain.register(lot("A"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.cancel_handover(chain.operator, ["A"])

    assert refusal(refused) == ("NoPendingHandover", {"lotId": "A"})


def test_withdrawing_an_unknown_lot_is_refused(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.cancel_handover(chain.operator, ["GHOST"])

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


def test_withdrawing_one_offer_twice_in_one_call_is_refused(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.cancel_handover(chain.operator, ["A", "A"])

    assert refusal(refused) == ("NoPendingHandover", {"lotId": "A"})
    assert state(chain, "A").pending_custodian == chain.buyer


# ---------------------------------------------------------------- acceptHandover refusals


def test_only_the_receiver_may_accept(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.accept_handover(chain.outsider, ["A"])

    assert refusal(refused) == ("NotReceiver", {"lotId": "A", "account": chain.outsider})
    assert state(chain, "A") == LotOnChain(chain.operator, 24_500_000, chain.buyer)


def test_a_lot_not_offered_cannot_be_accepted(chain: Chain) -> None:
    chain.register(lot("A"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.accept_handover(chain.buyer, ["A"])

    assert refusal(refused) == ("NoPendingHandover", {"lotId": "A"})


def test_an_unknown_lot_cannot_be_accepted(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.accept_handover(chain.buyer, ["GHOST"])

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


def test_accepting_a_batch_with_one_lot_not_offered_accepts_none(chain: Chain) -> None:
    chain.register(lot("A"), lot("B"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.accept_handover(chain.buyer, ["A", "B"])

    assert refusal(refused) == ("NoPendingHandover", {"lotId": "B"})
    assert state(chain, "A") == LotOnChain(chain.operator, 24_500_000, chain.buyer)


def test_accepting_one_lot_twice_in_one_call_is_refused(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.accept_handover(chain.buyer, ["A", "A"])

    assert refusal(refused) == ("NoPendingHandover", {"lotId": "A"})
    assert state(chain, "A").custodian == chain.operator

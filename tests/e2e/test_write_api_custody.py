"""Custody over HTTP: offer lots, accept them, withdraw an offer; the chain decides who may."""

from __future__ import annotations

from tests.e2e.conftest import Stack, error_of


def test_a_handover_moves_custody_only_when_the_receiver_accepts(stack: Stack) -> None:
    lots = [stack.register(), stack.register()]

    offered = stack.write("/v1/handovers", stack.operator, {"lot_ids": lots, "to": stack.buyer.address})

    assert offered["status"] == "confirmed"
    assert [stack.custodian(lot) for lot in lots] == [stack.operator.address] * 2
    assert stack.runtime.client.lot(lots[0]).pending_custodian == stack.buyer.address  # type: ignore[union-attr]

    accepted = stack.write("/v1/handovers/accept", stack.buyer, {"lot_ids": lots})

    assert accepted["kind"] == "accept_handover"
    assert accepted["status"] == "confirmed"
    assert [stack.custodian(lot) for lot in lots] == [stack.buyer.address] * 2


def test_a_cancelled_offer_cannot_be_accepted(stack: Stack) -> None:
    lot = stack.register()
    stack.write("/v1/handovers", stack.operator, {"lot_ids": [lot], "to": stack.buyer.address})

    cancelled = stack.write("/v1/handovers/cancel", stack.operator, {"lot_ids": [lot]})
    accepted = stack.write("/v1/handovers/accept", stack.buyer, {"lot_ids": [lot]})

    assert cancelled["status"] == "confirmed"
    assert accepted["status"] == "failed"
    assert accepted["error"]["name"] == "NoPendingHandover"
    assert stack.custodian(lot) == stack.operator.address


def test_only_the_receiver_may_accept(stack: Stack) -> None:
    lot = stack.register()
    stack.write("/v1/handovers", stack.operator, {"lot_ids": [lot], "to": stack.buyer.address})

    stolen = stack.write("/v1/handovers/accept", stack.lab, {"lot_ids": [lot]})

    assert stolen["status"] == "failed"
    assert stolen["error"]["name"] == "NotReceiver"
    assert stack.custodian(lot) == stack.operator.address


def test_only_the_custodian_may_offer_a_lot(stack: Stack) -> None:
    lot = stack.register()

    offered = stack.write("/v1/handovers", stack.buyer, {"lot_ids": [lot], "to": stack.lab.address})

    assert offered["status"] == "failed"
    assert offered["error"]["name"] == "NotCustodian"


def test_a_handover_to_a_malformed_address_is_422(stack: Stack) -> None:
    response = stack.post("/v1/handovers", stack.operator, {"lot_ids": ["A"], "to": "0x1234"})

    assert response.status_code == 422
    assert error_of(response)["field"] == "to"


def test_a_lot_named_twice_is_422(stack: Stack) -> None:
    response = stack.post("/v1/handovers/cancel", stack.operator, {"lot_ids": ["A", "A"]})

    assert response.status_code == 422
    assert error_of(response)["field"] == "lot_ids"


def test_a_bad_lot_id_is_422_naming_its_index(stack: Stack) -> None:
    response = stack.post("/v1/handovers/accept", stack.buyer, {"lot_ids": ["A", "not a label"]})

    assert response.status_code == 422
    assert error_of(response)["field"] == "lot_ids[1]"

"""anchorDocument: the custodian ties a document's hash (weighbridge ticket, certificate, photo) to a lot."""

from __future__ import annotations

import pytest

from provenance.domain.values import TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    ZERO_WORD,
    Chain,
    digest,
    event_names,
    events,
    label,
    lot,
    output,
    refusal,
    transformation,
)


def test_the_custodian_anchors_a_document_to_its_lot(chain: Chain) -> None:
    chain.register(lot("A"))
    ticket = digest("weighbridge ticket 4711")

    receipt = chain.client.anchor_document(chain.operator, "A", "weighbridge-ticket", ticket)

    assert event_names(chain.client, receipt) == ["DocumentAnchored"]
    assert events(chain.client, receipt, "DocumentAnchored") == [
        {
            "lotId": label("A"),
            "documentHash": ticket,
            "by": chain.operator,
            "kind": label("weighbridge-ticket"),
        }
    ]


def test_the_new_custodian_anchors_after_accepting_and_the_old_one_no_longer_can(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)
    chain.client.accept_handover(chain.buyer, ["A"])

    receipt = chain.client.anchor_document(chain.buyer, "A", "bill-of-lading", digest("bol"))
    assert events(chain.client, receipt, "DocumentAnchored")[0]["by"] == chain.buyer

    with pytest.raises(ContractRevert) as refused:
        chain.client.anchor_document(chain.operator, "A", "photo", digest("photo"))
    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.operator})


def test_a_receiver_cannot_anchor_before_accepting(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.anchor_document(chain.buyer, "A", "photo", digest("photo"))

    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.buyer})


def test_a_document_cannot_be_anchored_to_an_unknown_lot(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.anchor_document(chain.operator, "GHOST", "photo", digest("photo"))

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


@pytest.mark.parametrize(
    ("kind", "document_hash", "field"),
    [(label("photo"), ZERO_WORD, "documentHash"), (ZERO_WORD, digest("photo"), "kind")],
)
def test_a_document_needs_a_kind_and_a_hash(
    chain: Chain, kind: bytes, document_hash: bytes, field: str
) -> None:
    chain.register(lot("A"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.operator, "anchorDocument", label("A"), kind, document_hash)

    assert refusal(refused) == ("ZeroValue", {"field": field})


def test_documents_may_still_be_anchored_to_a_consumed_lot_its_custodian_holds(chain: Chain) -> None:
    chain.register(lot("A", mass_g=10))
    chain.client.transform(
        chain.operator, transformation(TransformKind.SPLIT, [("A", 10)], [output("A1", 10)])
    )

    receipt = chain.client.anchor_document(chain.operator, "A", "crusher-log", digest("log"))

    assert events(chain.client, receipt, "DocumentAnchored")[0]["lotId"] == label("A")

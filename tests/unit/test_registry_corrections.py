"""correctLot and recordStockCount: a wrong record is declared and adjusted, never rewritten; stock
counts are a site registrar's statement for later comparison with book stock."""

from __future__ import annotations

import pytest

from provenance.domain.values import MAX_MASS_G, CorrectionReason, TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    OTHER_SITE,
    SITE,
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

VOID, FIX = CorrectionReason.DID_NOT_OCCUR, CorrectionReason.INCORRECT_DATA


def remaining(chain: Chain, lot_id: str) -> int:
    state = chain.client.lot(lot_id)
    assert state is not None
    return state.remaining_g


@pytest.mark.parametrize("adjustment_g", [-400, 250, 0])
def test_the_custodian_corrects_a_lots_mass(chain: Chain, adjustment_g: int) -> None:
    chain.register(lot("A", mass_g=1_000))

    receipt = chain.client.correct_lot(chain.operator, "A", FIX, adjustment_g, digest("reweighed"))

    assert event_names(chain.client, receipt) == ["LotCorrected"]
    assert events(chain.client, receipt, "LotCorrected") == [
        {
            "lotId": label("A"),
            "by": chain.operator,
            "reason": int(FIX),
            "adjustmentG": adjustment_g,
            "remainingG": 1_000 + adjustment_g,
            "recordHash": digest("reweighed"),
        }
    ]
    assert remaining(chain, "A") == 1_000 + adjustment_g


def test_the_admin_may_correct_a_lot_it_does_not_hold(chain: Chain) -> None:
    chain.register(lot("A", mass_g=1_000))

    receipt = chain.client.correct_lot(chain.admin, "A", FIX, -1, digest("scale drift"))

    assert events(chain.client, receipt, "LotCorrected")[0]["by"] == chain.admin
    assert remaining(chain, "A") == 999


@pytest.mark.parametrize("who", ["outsider", "clerk", "buyer"])
def test_only_the_custodian_or_the_admin_corrects(chain: Chain, who: str) -> None:
    chain.register(lot("A", mass_g=1_000))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)  # not yet the buyer's
    stranger = getattr(chain, who)

    with pytest.raises(ContractRevert) as refused:
        chain.client.correct_lot(stranger, "A", FIX, -1, digest("x"))

    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": stranger})
    assert remaining(chain, "A") == 1_000


def test_a_lot_that_did_not_occur_is_voided(chain: Chain) -> None:
    chain.register(lot("A", mass_g=1_000))

    receipt = chain.client.correct_lot(chain.operator, "A", VOID, -1_000, digest("double entry"))

    assert events(chain.client, receipt, "LotCorrected")[0]["reason"] == int(VOID)
    assert remaining(chain, "A") == 0
    with pytest.raises(ContractRevert) as refused:
        chain.client.hand_over(chain.operator, ["A"], chain.buyer)
    assert refusal(refused) == ("LotConsumed", {"lotId": "A"})
    with pytest.raises(ContractRevert) as refused_transform:
        chain.client.transform(
            chain.operator, transformation(TransformKind.SPLIT, [("A", 1)], [output("A1", 1)])
        )
    assert refusal(refused_transform) == ("LotConsumed", {"lotId": "A"})


def test_a_consumed_lot_that_did_not_occur_is_voided_without_adjustment(chain: Chain) -> None:
    chain.register(lot("A", mass_g=10))
    chain.client.transform(
        chain.operator, transformation(TransformKind.SPLIT, [("A", 10)], [output("A1", 10)])
    )

    receipt = chain.client.correct_lot(chain.operator, "A", VOID, 0, digest("never mined"))

    assert events(chain.client, receipt, "LotCorrected")[0]["remainingG"] == 0


@pytest.mark.parametrize(
    ("reason", "adjustment_g"),
    [
        (VOID, -999),  # a void must leave nothing
        (VOID, 1),
        (FIX, -1_001),  # below zero
        (FIX, MAX_MASS_G - 999),  # above what a lot can hold
        (FIX, -(2**255)),
    ],
)
def test_a_correction_must_leave_a_possible_mass(
    chain: Chain, reason: CorrectionReason, adjustment_g: int
) -> None:
    chain.register(lot("A", mass_g=1_000))

    with pytest.raises(ContractRevert) as refused:
        chain.client.correct_lot(chain.operator, "A", reason, adjustment_g, digest("x"))

    assert refusal(refused) == (
        "InvalidCorrection",
        {"lotId": "A", "adjustmentG": adjustment_g, "remainingG": 1_000},
    )
    assert remaining(chain, "A") == 1_000


def test_a_correction_up_to_the_largest_mass_is_accepted(chain: Chain) -> None:
    chain.register(lot("A", mass_g=1_000))

    chain.client.correct_lot(chain.operator, "A", FIX, MAX_MASS_G - 1_000, digest("x"))

    assert remaining(chain, "A") == MAX_MASS_G


def test_a_correction_references_its_record(chain: Chain) -> None:
    chain.register(lot("A", mass_g=1_000))

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.operator, "correctLot", label("A"), int(FIX), -1, ZERO_WORD)

    assert refusal(refused) == ("ZeroValue", {"field": "recordHash"})


def test_an_unknown_lot_cannot_be_corrected(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.correct_lot(chain.admin, "GHOST", VOID, 0, digest("x"))

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


# ---------------------------------------------------------------- stock counts


def record_count(chain: Chain, sender: str, site: str, counted_g: int, counted_at: int) -> object:
    return chain.client.transact(
        sender, "recordStockCount", label(site), counted_g, counted_at, digest(f"count {site} {counted_at}")
    )


def test_a_site_registrar_records_a_stock_count(chain: Chain) -> None:
    receipt = record_count(chain, chain.clerk, SITE, 731_000_000, 1_700_000_500)

    assert events(chain.client, receipt, "StockCounted") == [
        {
            "site": label(SITE),
            "by": chain.clerk,
            "countedG": 731_000_000,
            "countedAt": 1_700_000_500,
            "recordHash": digest(f"count {SITE} 1700000500"),
        }
    ]


@pytest.mark.parametrize("who", ["rival", "admin", "outsider"])
def test_only_a_registrar_of_the_site_records_its_stock_count(chain: Chain, who: str) -> None:
    stranger = getattr(chain, who)

    with pytest.raises(ContractRevert) as refused:
        record_count(chain, stranger, SITE, 1, 1_700_000_500)

    needed = "0x" + chain.client.registrar_role(SITE).hex()
    assert refusal(refused) == (
        "AccessControlUnauthorizedAccount",
        {"account": stranger, "neededRole": needed},
    )


def test_the_rival_counts_its_own_site(chain: Chain) -> None:
    receipt = record_count(chain, chain.rival, OTHER_SITE, 0, 1_700_000_500)

    assert events(chain.client, receipt, "StockCounted")[0]["site"] == label(OTHER_SITE)


def test_a_count_time_may_run_ahead_of_the_chain_by_the_clock_skew_only(chain: Chain) -> None:
    now = chain.travel(3600)

    with pytest.raises(ContractRevert) as refused:
        record_count(chain, chain.clerk, SITE, 1, now + 901)
    assert refusal(refused) == ("TimeInFuture", {"subject": SITE, "time": now + 901})

    receipt = record_count(chain, chain.clerk, SITE, 1, now + 900)
    assert events(chain.client, receipt, "StockCounted")[0]["countedAt"] == now + 900

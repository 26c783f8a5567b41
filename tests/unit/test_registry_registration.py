"""registerLot and registerLots: who may register, what a lot must carry, and the events an indexer
rebuilds the registry from."""

from __future__ import annotations

import pytest

from provenance.chain.client import registration_tuple
from provenance.domain.values import MAX_MASS_G
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    OTHER_SITE,
    SITE,
    ZERO_WORD,
    Chain,
    event_names,
    events,
    label,
    lot,
    pack_measurement,
    refusal,
    registration_args,
)


def test_a_registered_lot_is_held_by_its_registrar_with_its_full_mass(chain: Chain) -> None:
    chain.register(lot("L-1", mass_g=24_500_000))

    state = chain.client.lot("L-1")
    assert state is not None
    assert (state.custodian, state.remaining_g, state.pending_custodian) == (chain.operator, 24_500_000, None)


def test_registering_one_lot_emits_the_batch_header_then_the_lot(chain: Chain) -> None:
    registration = lot("L-1", face="F7", commodity="IRON", mass_g=31_000_123, grade_ppm=654_321)

    receipt = chain.register(registration)

    assert event_names(chain.client, receipt) == ["LotsRegistered", "LotRegistered"]
    assert events(chain.client, receipt, "LotsRegistered") == [
        {"site": label(SITE), "custodian": chain.operator}
    ]
    assert events(chain.client, receipt, "LotRegistered") == [
        {
            "lotId": label("L-1"),
            "face": label("F7"),
            "commodity": label("IRON"),
            "measurement": pack_measurement(31_000_123, 654_321, registration.extracted_at),
            "recordHash": registration.record_hash,
        }
    ]


def test_a_batch_emits_one_header_then_one_event_per_lot_in_order(chain: Chain) -> None:
    batch = [lot(f"B-{index}", mass_g=1_000 + index, grade_ppm=index) for index in range(5)]

    receipt = chain.register(*batch)

    assert event_names(chain.client, receipt) == ["LotsRegistered"] + ["LotRegistered"] * 5
    registered = events(chain.client, receipt, "LotRegistered")
    assert [event["lotId"] for event in registered] == [label(f"B-{index}") for index in range(5)]
    assert [event["measurement"] for event in registered] == [
        pack_measurement(1_000 + index, index, batch[index].extracted_at) for index in range(5)
    ]
    for index in range(5):
        state = chain.client.lot(f"B-{index}")
        assert state is not None
        assert state.remaining_g == 1_000 + index


def test_the_measurement_word_unpacks_to_mass_grade_and_time_at_their_limits(chain: Chain) -> None:
    mass_g, grade_ppm, extracted_at = MAX_MASS_G, 1_000_000, chain.pending_timestamp()
    registration = lot("L-MAX", mass_g=mass_g, grade_ppm=grade_ppm, extracted_at=extracted_at)

    receipt = chain.register(registration)

    word = events(chain.client, receipt, "LotRegistered")[0]["measurement"]
    assert word == chain.client.contract.functions.packMeasurement(mass_g, grade_ppm, extracted_at).call()
    assert (word & (2**96 - 1), (word >> 96) & (2**32 - 1), word >> 128) == (mass_g, grade_ppm, extracted_at)


def test_a_single_lot_sent_as_a_batch_of_one_is_registered(chain: Chain) -> None:
    receipt = chain.client.transact(
        chain.operator, "registerLots", label(SITE), [registration_tuple(lot("L-1"))]
    )

    assert event_names(chain.client, receipt) == ["LotsRegistered", "LotRegistered"]
    assert chain.client.lot("L-1") is not None


@pytest.mark.parametrize("batch", [False, True])
def test_only_a_registrar_of_the_site_may_register(chain: Chain, batch: bool) -> None:
    registrations = [lot("L-1"), lot("L-2")] if batch else [lot("L-1")]
    needed = "0x" + chain.client.registrar_role(SITE).hex()

    for stranger in (chain.outsider, chain.rival, chain.admin):
        with pytest.raises(ContractRevert) as refused:
            chain.client.register_lots(stranger, registrations)
        assert refusal(refused) == (
            "AccessControlUnauthorizedAccount",
            {"account": stranger, "neededRole": needed},
        )
    assert chain.client.lot("L-1") is None


def test_a_registrar_registers_at_its_own_site_only(chain: Chain) -> None:
    chain.register(lot("P-1", site=OTHER_SITE), sender=chain.rival)

    state = chain.client.lot("P-1")
    assert state is not None
    assert state.custodian == chain.rival


def test_a_lot_id_registers_once(chain: Chain) -> None:
    chain.register(lot("L-1"))

    with pytest.raises(ContractRevert) as refused:
        chain.register(lot("L-1", mass_g=1), sender=chain.clerk)

    assert refusal(refused) == ("LotExists", {"lotId": "L-1"})
    state = chain.client.lot("L-1")
    assert state is not None
    assert (state.custodian, state.remaining_g) == (chain.operator, 24_500_000)


def test_a_lot_id_cannot_be_taken_at_another_site(chain: Chain) -> None:
    chain.register(lot("L-1"))

    with pytest.raises(ContractRevert) as refused:
        chain.register(lot("L-1", site=OTHER_SITE), sender=chain.rival)

    assert refused.value.name == "LotExists"


def test_a_batch_with_one_bad_lot_registers_nothing(chain: Chain) -> None:
    chain.register(lot("TAKEN"))

    with pytest.raises(ContractRevert) as refused:
        chain.register(lot("NEW-1"), lot("NEW-2"), lot("TAKEN"), lot("NEW-3"))

    assert refusal(refused) == ("LotExists", {"lotId": "TAKEN"})
    assert [chain.client.lot(f"NEW-{index}") for index in (1, 2, 3)] == [None, None, None]


def test_a_batch_naming_one_lot_twice_is_refused(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.register(lot("L-1"), lot("L-2"), lot("L-1", mass_g=5))

    assert refusal(refused) == ("LotExists", {"lotId": "L-1"})
    assert chain.client.lot("L-1") is None


def test_an_empty_batch_is_refused(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.operator, "registerLots", label(SITE), [])

    assert refused.value.name == "EmptyBatch"


def test_the_zero_site_is_refused_even_to_its_registrar(chain: Chain) -> None:
    zero_site_role = chain.client.contract.functions.registrarRole(ZERO_WORD).call()
    chain.client.grant_role(chain.admin, zero_site_role, chain.clerk)
    args = registration_args(lot("L-1"))

    for function, payload in (("registerLot", args), ("registerLots", [args])):
        with pytest.raises(ContractRevert) as refused:
            chain.client.transact(chain.clerk, function, ZERO_WORD, payload)
        assert refusal(refused) == ("ZeroValue", {"field": "site"})


@pytest.mark.parametrize(
    ("override", "error", "args"),
    [
        ({"lotId": ZERO_WORD}, "ZeroValue", {"field": "lotId"}),
        ({"massG": 0}, "ZeroMass", {"lotId": "L-1"}),
        ({"massG": 2**63}, "MassTooLarge", {"subject": "L-1", "massG": 2**63}),
        ({"massG": 2**96 - 1}, "MassTooLarge", {"subject": "L-1", "massG": 2**96 - 1}),
        ({"gradePpm": 1_000_001}, "InvalidGrade", {"lotId": "L-1", "gradePpm": 1_000_001}),
        ({"commodity": ZERO_WORD}, "ZeroValue", {"field": "commodity"}),
    ],
)
@pytest.mark.parametrize("function", ["registerLot", "registerLots"])
def test_a_lot_missing_what_it_must_carry_is_refused(
    chain: Chain, function: str, override: dict[str, object], error: str, args: dict[str, object]
) -> None:
    payload = registration_args(lot("L-1"), **override)

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(
            chain.operator, function, label(SITE), payload if function == "registerLot" else [payload]
        )

    assert refusal(refused) == (error, args)
    assert chain.client.lot("L-1") is None


def test_the_highest_grade_and_grade_zero_are_valid(chain: Chain) -> None:
    chain.register(lot("RICH", grade_ppm=1_000_000), lot("WASTE", grade_ppm=0))

    assert chain.client.lot("RICH") is not None
    assert chain.client.lot("WASTE") is not None


def test_an_extraction_time_may_run_ahead_of_the_chain_by_the_clock_skew_only(chain: Chain) -> None:
    skew = chain.client.contract.functions.MAX_CLOCK_SKEW().call()
    assert skew == 15 * 60
    now = chain.travel(3600)

    with pytest.raises(ContractRevert) as refused:
        chain.register(lot("LATE", extracted_at=now + skew + 1))
    assert refusal(refused) == (
        "TimeInFuture",
        {"subject": "LATE", "time": now + skew + 1},
    )

    chain.register(lot("ON-TIME", extracted_at=now + skew))
    assert chain.client.lot("ON-TIME") is not None

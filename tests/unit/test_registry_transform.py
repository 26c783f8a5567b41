"""transform: split, merge, blend and process consume input mass into new lots, and mass is conserved
to the gram: outputs plus declared loss equal what the inputs gave, never more than they held."""

from __future__ import annotations

from typing import Any

import pytest

from provenance.domain.values import MAX_MASS_G, TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import (
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

SPLIT, MERGE, BLEND, PROCESS = (
    TransformKind.SPLIT,
    TransformKind.MERGE,
    TransformKind.BLEND,
    TransformKind.PROCESS,
)


def remaining(chain: Chain, lot_id: str) -> int:
    state = chain.client.lot(lot_id)
    assert state is not None, f"{lot_id} is not registered"
    return state.remaining_g


def raw_transform(
    chain: Chain,
    kind: int,
    inputs: list[tuple[bytes, int]],
    outputs: list[tuple[bytes, bytes, int, int, bytes]],
    loss_g: int = 0,
    *,
    site: bytes = label(SITE),
    sender: str | None = None,
) -> Any:
    """A transform sent as raw ABI values, for what the domain records refuse to build."""
    return chain.client.transact(
        sender or chain.operator, "transform", kind, site, inputs, outputs, loss_g, digest("raw")
    )


def raw_output(
    lot_id: bytes, mass_g: int = 1_000, *, commodity: bytes = label("COAL"), grade_ppm: int = 0
) -> Any:
    return (lot_id, commodity, mass_g, grade_ppm, digest("out"))


def test_a_split_consumes_its_input_and_creates_outputs_held_by_the_processor(chain: Chain) -> None:
    chain.register(lot("ROM-1", mass_g=24_500_000))
    split = transformation(
        SPLIT, [("ROM-1", 24_500_000)], [output("ROM-1a", 12_000_000), output("ROM-1b", 12_000_000)], 500_000
    )

    chain.client.transform(chain.operator, split)

    assert remaining(chain, "ROM-1") == 0
    for lot_id in ("ROM-1a", "ROM-1b"):
        state = chain.client.lot(lot_id)
        assert state is not None
        assert (state.custodian, state.remaining_g, state.pending_custodian) == (
            chain.operator,
            12_000_000,
            None,
        )
    assert chain.client.contract.functions.transformCount().call() == 1


def test_a_transform_emits_its_header_then_each_consumption_then_each_new_lot(chain: Chain) -> None:
    chain.register(lot("A", mass_g=10_000), lot("B", mass_g=6_000))
    chain.client.transform(chain.operator, transformation(PROCESS, [("A", 1_000)], [output("FIRST", 1_000)]))
    process = transformation(
        PROCESS,
        [("A", 9_000), ("B", 5_000)],
        [output("CONC", 4_000, commodity="CU-CONC", grade_ppm=250_000), output("TAIL", 9_500, grade_ppm=900)],
        500,
    )

    receipt = chain.client.transform(chain.operator, process)

    assert event_names(chain.client, receipt) == [
        "LotsTransformed",
        "LotConsumed",
        "LotConsumed",
        "LotCreated",
        "LotCreated",
    ]
    assert events(chain.client, receipt, "LotsTransformed") == [
        {
            "transformId": 2,
            "operator": chain.operator,
            "kind": int(PROCESS),
            "site": label(SITE),
            "lossG": 500,
            "recordHash": process.record_hash,
        }
    ]
    assert events(chain.client, receipt, "LotConsumed") == [
        {"lotId": label("A"), "transformId": 2, "massG": 9_000, "remainingG": 0},
        {"lotId": label("B"), "transformId": 2, "massG": 5_000, "remainingG": 1_000},
    ]
    assert events(chain.client, receipt, "LotCreated") == [
        {
            "lotId": label("CONC"),
            "transformId": 2,
            "custodian": chain.operator,
            "commodity": label("CU-CONC"),
            "massG": 4_000,
            "gradePpm": 250_000,
            "recordHash": digest("CONC"),
        },
        {
            "lotId": label("TAIL"),
            "transformId": 2,
            "custodian": chain.operator,
            "commodity": label("COAL"),
            "massG": 9_500,
            "gradePpm": 900,
            "recordHash": digest("TAIL"),
        },
    ]


def test_the_transform_id_returned_is_the_new_transform_count(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))
    function = chain.client.contract.functions.transform(
        int(SPLIT), label(SITE), [(label("A"), 100)], [raw_output(label("A1"), 100)], 0, digest("t")
    )

    assert function.call({"from": chain.operator}) == 1
    function.transact({"from": chain.operator})
    assert chain.client.contract.functions.transformCount().call() == 1


def test_a_lot_can_be_consumed_in_parts_until_nothing_is_left(chain: Chain) -> None:
    chain.register(lot("STOCKPILE", mass_g=1_000))

    chain.client.transform(chain.operator, transformation(SPLIT, [("STOCKPILE", 300)], [output("S1", 300)]))
    assert remaining(chain, "STOCKPILE") == 700
    chain.client.transform(
        chain.operator, transformation(SPLIT, [("STOCKPILE", 700)], [output("S2", 690)], 10)
    )
    assert remaining(chain, "STOCKPILE") == 0

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.operator, transformation(SPLIT, [("STOCKPILE", 1)], [output("S3", 1)]))
    assert refusal(refused) == ("LotConsumed", {"lotId": "STOCKPILE"})


@pytest.mark.parametrize("kind", [MERGE, BLEND])
def test_merge_and_blend_take_two_or_more_lots_into_one(chain: Chain, kind: TransformKind) -> None:
    chain.register(lot("A", mass_g=100), lot("B", mass_g=200), lot("C", mass_g=300))

    chain.client.transform(
        chain.operator, transformation(kind, [("A", 100), ("B", 150), ("C", 300)], [output("M", 549)], 1)
    )

    assert [remaining(chain, lot_id) for lot_id in ("A", "B", "C", "M")] == [0, 50, 0, 549]


@pytest.mark.parametrize(
    ("kind", "inputs", "outputs"),
    [
        (SPLIT, 2, 1),
        (SPLIT, 1, 0),
        (SPLIT, 0, 1),
        (MERGE, 1, 1),
        (MERGE, 2, 2),
        (MERGE, 2, 0),
        (BLEND, 1, 1),
        (BLEND, 3, 2),
        (PROCESS, 0, 1),
        (PROCESS, 1, 0),
    ],
)
def test_a_transform_must_have_the_shape_of_its_kind(
    chain: Chain, kind: TransformKind, inputs: int, outputs: int
) -> None:
    chain.register(*(lot(f"IN-{index}", mass_g=10) for index in range(3)))

    with pytest.raises(ContractRevert) as refused:
        raw_transform(
            chain,
            int(kind),
            [(label(f"IN-{index}"), 10) for index in range(inputs)],
            [raw_output(label(f"OUT-{index}"), 10) for index in range(outputs)],
            10 * inputs - 10 * outputs if inputs >= outputs else 0,
        )

    assert refusal(refused) == ("InvalidShape", {"kind": int(kind), "inputs": inputs, "outputs": outputs})
    assert remaining(chain, "IN-0") == 10


def test_only_a_processor_may_transform(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100), sender=chain.clerk)

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.clerk, transformation(SPLIT, [("A", 100)], [output("A1", 100)]))

    needed = "0x" + chain.client.role("PROCESSOR_ROLE").hex()
    assert refusal(refused) == (
        "AccessControlUnauthorizedAccount",
        {"account": chain.clerk, "neededRole": needed},
    )
    assert remaining(chain, "A") == 100


def test_a_processor_may_transform_only_lots_it_holds(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.rival, transformation(SPLIT, [("A", 100)], [output("A1", 100)]))

    assert refusal(refused) == ("NotCustodian", {"lotId": "A", "account": chain.rival})


def test_a_processor_transforms_a_lot_once_it_has_accepted_it(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))
    chain.client.hand_over(chain.operator, ["A"], chain.rival)
    chain.client.accept_handover(chain.rival, ["A"])

    chain.client.transform(chain.rival, transformation(SPLIT, [("A", 100)], [output("A1", 100)]))

    state = chain.client.lot("A1")
    assert state is not None
    assert state.custodian == chain.rival


def test_an_unknown_input_is_refused(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.operator, transformation(SPLIT, [("GHOST", 100)], [output("A1", 100)]))

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


def test_an_input_cannot_give_more_than_it_has_left(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.operator, transformation(SPLIT, [("A", 101)], [output("A1", 101)]))

    assert refusal(refused) == ("InsufficientMass", {"lotId": "A", "remainingG": 100, "requestedG": 101})
    assert chain.client.lot("A1") is None


def test_the_same_lot_cannot_be_named_twice_as_input(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100), lot("B", mass_g=100))

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(
            chain.operator, transformation(MERGE, [("A", 50), ("B", 50), ("A", 50)], [output("M", 150)])
        )

    assert refusal(refused) == ("DuplicateInput", {"lotId": "A"})
    assert remaining(chain, "A") == 100


def test_an_input_of_zero_grams_is_refused(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))

    with pytest.raises(ContractRevert) as refused:
        raw_transform(chain, int(PROCESS), [(label("A"), 0)], [raw_output(label("A1"), 1)])

    assert refusal(refused) == ("ZeroMass", {"lotId": "A"})


def test_a_lot_offered_to_someone_cannot_be_transformed(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))
    chain.client.hand_over(chain.operator, ["A"], chain.buyer)

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.operator, transformation(SPLIT, [("A", 100)], [output("A1", 100)]))

    assert refusal(refused) == ("HandoverPending", {"lotId": "A", "receiver": chain.buyer})


def test_the_zero_site_is_refused(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))

    with pytest.raises(ContractRevert) as refused:
        raw_transform(chain, int(SPLIT), [(label("A"), 100)], [raw_output(label("A1"), 100)], site=ZERO_WORD)

    assert refusal(refused) == ("ZeroValue", {"field": "site"})


@pytest.mark.parametrize(
    ("bad_output", "error", "args"),
    [
        (raw_output(ZERO_WORD, 100), "ZeroValue", {"field": "lotId"}),
        (raw_output(label("A1"), 0), "ZeroMass", {"lotId": "A1"}),
        (
            raw_output(label("A1"), 100, grade_ppm=1_000_001),
            "InvalidGrade",
            {"lotId": "A1", "gradePpm": 1_000_001},
        ),
        (raw_output(label("A1"), 100, commodity=ZERO_WORD), "ZeroValue", {"field": "commodity"}),
        (raw_output(label("OTHER"), 100), "LotExists", {"lotId": "OTHER"}),
        (raw_output(label("A"), 100), "LotExists", {"lotId": "A"}),
    ],
)
def test_an_output_must_be_a_valid_new_lot(
    chain: Chain, bad_output: Any, error: str, args: dict[str, object]
) -> None:
    chain.register(lot("A", mass_g=100), lot("OTHER", mass_g=5))

    with pytest.raises(ContractRevert) as refused:
        raw_transform(chain, int(SPLIT), [(label("A"), 100)], [bad_output])

    assert refusal(refused) == (error, args)
    assert remaining(chain, "A") == 100
    assert chain.client.contract.functions.transformCount().call() == 0


def test_two_outputs_cannot_share_a_lot_id(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100))

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(
            chain.operator, transformation(SPLIT, [("A", 100)], [output("A1", 50), output("A1", 50)])
        )

    assert refusal(refused) == ("LotExists", {"lotId": "A1"})
    assert chain.client.lot("A1") is None


@pytest.mark.parametrize(
    ("outputs_g", "loss_g"),
    [
        ((60, 50), 0),  # mass created from nothing
        ((40, 50), 0),  # mass lost without being declared
        ((50, 50), 1),  # a loss that did not happen
        ((100,), 100),  # the loss counted twice
    ],
)
def test_outputs_plus_loss_must_equal_the_mass_consumed(
    chain: Chain, outputs_g: tuple[int, ...], loss_g: int
) -> None:
    chain.register(lot("A", mass_g=100))
    outputs = [output(f"A{index}", mass_g) for index, mass_g in enumerate(outputs_g)]

    with pytest.raises(ContractRevert) as refused:
        chain.client.transform(chain.operator, transformation(PROCESS, [("A", 100)], outputs, loss_g))

    assert refusal(refused) == (
        "MassNotConserved",
        {"consumedG": 100, "producedG": sum(outputs_g), "lossG": loss_g},
    )
    assert remaining(chain, "A") == 100
    assert chain.client.lot("A0") is None


def test_a_transform_may_declare_its_whole_input_lost(chain: Chain) -> None:
    chain.register(lot("A", mass_g=100), lot("B", mass_g=100))

    receipt = chain.client.transform(
        chain.operator, transformation(MERGE, [("A", 100), ("B", 99)], [output("DUST", 1)], 198)
    )

    assert events(chain.client, receipt, "LotsTransformed")[0]["lossG"] == 198
    assert [remaining(chain, lot_id) for lot_id in ("A", "B", "DUST")] == [0, 1, 1]


def test_a_loss_beyond_the_largest_mass_is_refused_even_when_it_balances(chain: Chain) -> None:
    chain.register(lot("HUGE-1", mass_g=MAX_MASS_G), lot("HUGE-2", mass_g=MAX_MASS_G))
    loss_g = 2 * MAX_MASS_G - 1

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(
            chain.operator,
            "transform",
            int(TransformKind.MERGE),
            label(SITE),
            [(label("HUGE-1"), MAX_MASS_G), (label("HUGE-2"), MAX_MASS_G)],
            [(label("TINY"), label("COAL"), 1, 0, digest("TINY"))],
            loss_g,
            digest("merge"),
        )

    assert refused.value.name == "MassTooLarge"
    assert remaining(chain, "HUGE-1") == MAX_MASS_G

"""Tracing mass through lineage: the share of a lot from each origin is exact, mass-weighted through
every split, merge and blend, and the shares always add up to exactly 1."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance.domain.lineage import allocate
from provenance.domain.trace import (
    Coordinates,
    LineageLink,
    TraceNode,
    decimal_text,
    descendant_grams,
    descendants,
    first_block_at_or_after,
    origin_shares,
    parse_time,
    provenance,
)
from provenance.errors import DomainError

AT = Coordinates(1, "0x" + "00" * 32, "0x" + "11" * 32, 0, 0)
DAY_1 = 1_700_000_000  # 2023-11-14 UTC
DAY_2 = DAY_1 + 86_400


def link(source: str, target: str, mass_g: int, transform_id: int = 1) -> LineageLink:
    return LineageLink(source, target, transform_id, mass_g, AT)


def node(lot_id: str, mass_g: int, site: str = "S1", extracted_at: int | None = None) -> TraceNode:
    origin = "registered" if extracted_at is not None else "transformed"
    return TraceNode(lot_id, origin, site, "Au-ore", mass_g, extracted_at, "0xabc", "active", 0)


# A (1000 g, S1, day 1) split into A1 400 g + A2 600 g; A1 merged with B (2000 g, S2, day 2) into
# M 2400 g; 1200 g of M blended with 1800 g of C (3000 g, S1, day 2) into X 3000 g.
CHAIN = [
    link("A", "A1", 400, 1),
    link("A", "A2", 600, 1),
    link("A1", "M", 400, 2),
    link("B", "M", 2_000, 2),
    link("M", "X", 1_200, 3),
    link("C", "X", 1_800, 3),
]
NODES = [
    node("X", 3_000),
    node("M", 2_400),
    node("A1", 400),
    node("A", 1_000, "S1", DAY_1),
    node("B", 2_000, "S2", DAY_2),
    node("C", 3_000, "S1", DAY_2),
]


def test_a_split_merge_blend_chain_gives_the_hand_computed_shares() -> None:
    # X is 3/5 C and 2/5 M; M is 1/6 A (through A1) and 5/6 B.
    assert origin_shares("X", CHAIN) == {"A": Fraction(1, 15), "B": Fraction(1, 3), "C": Fraction(3, 5)}


def test_shares_grouped_by_site_and_extraction_day_add_up_exactly() -> None:
    trace = provenance("X", NODES, CHAIN, complete=True)

    assert [(s.key, s.fraction) for s in trace.by_origin_lot] == [
        ("C", Fraction(3, 5)),
        ("B", Fraction(1, 3)),
        ("A", Fraction(1, 15)),
    ]
    assert [(s.key, s.fraction, s.grams) for s in trace.by_site] == [
        ("S1", Fraction(2, 3), Fraction(2_000)),
        ("S2", Fraction(1, 3), Fraction(1_000)),
    ]
    assert [(s.key, s.fraction) for s in trace.by_extraction_day] == [
        ("2023-11-15", Fraction(14, 15)),
        ("2023-11-14", Fraction(1, 15)),
    ]


def test_a_lot_split_and_merged_again_is_all_from_its_one_origin() -> None:
    diamond = [link("A", "A1", 300), link("A", "A2", 700), link("A1", "Y", 300, 2), link("A2", "Y", 650, 2)]

    assert origin_shares("Y", diamond) == {"A": Fraction(1)}


def test_an_extraction_lot_is_its_own_origin() -> None:
    assert origin_shares("A", CHAIN) == {"A": Fraction(1)}


def test_a_cycle_is_refused() -> None:
    with pytest.raises(DomainError, match=r"ancestor|cycle"):
        origin_shares("P", [link("P", "Q", 10), link("Q", "P", 10)])


def test_descendants_carry_the_hand_computed_grams_and_every_custodian() -> None:
    # A gave A1 400 g and A2 600 g; A1 is all of M's 400 g from A; X took 1200 of M's 2400 g: 200 g of A.
    masses = {"A": 1_000, "A1": 400, "A2": 600, "M": 2_400, "X": 3_000}
    assert descendant_grams("A", CHAIN, masses) == {
        "A1": Fraction(400),
        "A2": Fraction(600),
        "M": Fraction(400),
        "X": Fraction(200),
    }
    found = descendants(
        "A",
        [
            node("A", 1_000, extracted_at=DAY_1),
            node("A1", 400),
            node("A2", 600),
            node("M", 2_400),
            node("X", 3_000),
        ],
        CHAIN,
        {"A": ["0xreg", "0xproc"], "X": ["0xproc", "0xbuyer"]},
        complete=True,
    )
    assert [(d.node.lot_id, d.grams) for d in found.lots] == [
        ("A1", Fraction(400)),
        ("A2", Fraction(600)),
        ("M", Fraction(400)),
        ("X", Fraction(200)),
    ]
    assert found.custodians == ("0xbuyer", "0xproc", "0xreg")


@st.composite
def random_lineages(draw: st.DrawFn) -> tuple[str, list[LineageLink]]:
    """A random DAG of transformations whose edges come from the index's own whole-gram rounding."""
    origins = draw(st.integers(1, 5))
    masses = {f"O{i}": draw(st.integers(1, 10**9)) for i in range(origins)}
    available = dict(masses)
    links: list[LineageLink] = []
    for step in range(draw(st.integers(1, 8))):
        candidates = sorted(lot for lot, mass in available.items() if mass > 0)
        chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4, unique=True))
        consumed = [draw(st.integers(1, available[lot])) for lot in chosen]
        total = sum(consumed)
        loss = draw(st.integers(0, total - 1))
        outputs = draw(st.integers(1, min(4, total - loss)))
        produced_total = total - loss
        cuts = (
            sorted(
                draw(
                    st.lists(
                        st.integers(1, produced_total - 1),
                        min_size=outputs - 1,
                        max_size=outputs - 1,
                        unique=True,
                    )
                )
            )
            if outputs > 1
            else []
        )
        bounds = [0, *cuts, produced_total]
        produced = [bounds[k + 1] - bounds[k] for k in range(len(bounds) - 1)]
        allocation = allocate(consumed, produced)
        for i, lot in enumerate(chosen):
            available[lot] -= consumed[i]
        for j, mass in enumerate(produced):
            out = f"T{step}.{j}"
            available[out] = mass
            links.extend(
                link(lot, out, allocation.edges[i][j], step)
                for i, lot in enumerate(chosen)
                if allocation.edges[i][j] > 0
            )
    targets = sorted({item.output_lot_id for item in links})
    return draw(st.sampled_from(targets)), links


@given(random_lineages())
def test_origin_shares_always_sum_to_exactly_one(case: tuple[str, list[LineageLink]]) -> None:
    lot_id, links = case
    shares = origin_shares(lot_id, links)

    assert sum(shares.values()) == 1
    assert all(share > 0 for share in shares.values())
    assert all(not origin.startswith("T") for origin in shares)


@given(random_lineages())
def test_the_forward_trace_agrees_with_the_backward_one(case: tuple[str, list[LineageLink]]) -> None:
    _, links = case
    origin = links[0].input_lot_id
    masses: dict[str, int] = {origin: 10**9}
    for item in links:
        masses[item.output_lot_id] = masses.get(item.output_lot_id, 0) + item.mass_g
    grams = descendant_grams(origin, links, masses)

    for lot, carried in grams.items():
        mass = masses[lot]
        assert 0 < carried <= mass
        assert origin_shares(lot, links).get(origin, 0) == carried / mass


def test_decimal_text_rounds_to_twelve_places() -> None:
    assert decimal_text(Fraction(1, 3)) == "0.333333333333"
    assert decimal_text(Fraction(2, 3)) == "0.666666666667"
    assert decimal_text(Fraction(1)) == "1.000000000000"


def test_times_are_unix_seconds_or_iso_dates() -> None:
    assert parse_time("from", "1700000000") == 1_700_000_000
    assert parse_time("from", "2023-11-14") == 1_699_920_000
    assert parse_time("from", "2023-11-14T01:00:00+01:00") == 1_699_920_000
    with pytest.raises(DomainError) as raised:
        parse_time("to", "yesterday")
    assert raised.value.field == "to"


def test_the_first_block_at_or_after_a_time_is_found_by_bisection() -> None:
    stamps = [10, 20, 20, 30, 45]
    calls: list[int] = []

    def stamp(number: int) -> int:
        calls.append(number)
        return stamps[number]

    assert first_block_at_or_after(20, 0, 4, stamp) == 1
    assert first_block_at_or_after(21, 0, 4, stamp) == 3
    assert first_block_at_or_after(5, 0, 4, stamp) == 0
    assert first_block_at_or_after(46, 0, 4, stamp) == 5

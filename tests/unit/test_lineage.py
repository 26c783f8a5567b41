"""Lineage edges in whole grams: every output and every input balances to the gram, and every edge
is its exact proportional share rounded down or up."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance.domain.lineage import allocate
from provenance.errors import DomainError


def exact_share(consumed: list[int], produced: list[int], i: int, j: int) -> Fraction:
    return Fraction(consumed[i] * produced[j], sum(consumed))


def test_the_worked_example_of_a_two_by_two_process_with_loss() -> None:
    # 5400 g in, 5000 g out, 400 g lost; exact shares 1666.67 / 1111.11 / 222.22 and 1333.33 / 888.89 / 177.78
    allocation = allocate([3_000, 2_400], [3_000, 2_000])

    assert allocation.edges == ((1_667, 1_111), (1_333, 889))
    assert allocation.loss == (222, 178)


def test_a_merge_shares_its_output_and_its_loss_in_proportion() -> None:
    allocation = allocate([1_000, 1_500], [2_400])

    assert allocation.edges == ((960,), (1_440,))
    assert allocation.loss == (40, 60)


def test_a_split_gives_each_output_entirely_from_its_one_input() -> None:
    allocation = allocate([10_000], [3_000, 6_999])

    assert allocation.edges == ((3_000, 6_999),)
    assert allocation.loss == (1,)


def test_no_input_gives_more_than_it_consumed_even_where_per_output_rounding_would() -> None:
    # Rounding each output on its own would give both half-grams to the first input: 2 g from a 1 g input.
    allocation = allocate([1, 1], [1, 1])

    assert allocation.edges == ((1, 0), (0, 1))
    assert allocation.loss == (0, 0)


def test_equal_shares_are_settled_by_event_order_the_same_way_every_time() -> None:
    first = allocate([1, 1, 1], [2])

    assert first.edges == ((1,), (1,), (0,))
    assert first.loss == (0, 0, 1)
    assert all(allocate([1, 1, 1], [2]) == first for _ in range(3))


@pytest.mark.parametrize(
    ("consumed", "produced"),
    [([], [1]), ([1], []), ([0], [0]), ([5], [6]), ([-1, 3], [2])],
)
def test_impossible_transformations_are_refused(consumed: list[int], produced: list[int]) -> None:
    with pytest.raises(DomainError):
        allocate(consumed, produced)


masses = st.one_of(st.integers(1, 20), st.integers(1, 10**12))


@st.composite
def transformations(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Inputs and outputs of a possible transformation: outputs never exceed the inputs."""
    consumed = draw(st.lists(masses, min_size=1, max_size=6))
    produced = draw(st.lists(masses, min_size=1, max_size=6))
    shortfall = sum(produced) - sum(consumed)
    if shortfall > 0:
        consumed[-1] += shortfall
    return consumed, produced


@given(transformations())
def test_every_output_and_every_input_balance_and_no_edge_is_off_by_a_gram(
    case: tuple[list[int], list[int]],
) -> None:
    consumed, produced = case
    allocation = allocate(consumed, produced)
    loss = sum(consumed) - sum(produced)

    for j, mass in enumerate(produced):
        assert sum(row[j] for row in allocation.edges) == mass
    for i, mass in enumerate(consumed):
        assert sum(allocation.edges[i]) + allocation.loss[i] == mass
    assert sum(allocation.loss) == loss
    for i in range(len(consumed)):
        for j in range(len(produced)):
            share = exact_share(consumed, produced, i, j)
            assert share.__floor__() <= allocation.edges[i][j] <= share.__ceil__()
        loss_share = Fraction(consumed[i] * loss, sum(consumed))
        assert loss_share.__floor__() <= allocation.loss[i] <= loss_share.__ceil__()
    assert allocate(consumed, produced) == allocation

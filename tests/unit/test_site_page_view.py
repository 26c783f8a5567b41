"""The site page's figures as a manager reads them: tonnes, months, percentages, problems."""

from __future__ import annotations

import calendar

import pytest

from api.pages.site_view import build_site_page, month_of, percent_text, problems_of, tonnes_text
from provenance.domain.site_balance import Period, SiteAccount
from provenance.domain.trace import MassBalance


@pytest.mark.parametrize(
    ("grams", "text"),
    [
        (0, "0.000 t"),
        (25, "0.000025 t"),
        (-200, "-0.000200 t"),
        (1_000, "0.001 t"),
        (3_750, "0.004 t"),
        (874_163_000, "874.163 t"),
        (2_169_040_820, "2,169.041 t"),
        (-5_000_000, "-5.000 t"),
    ],
)
def test_tonnes_are_grouped_and_a_small_flow_never_reads_zero(grams: int, text: str) -> None:
    assert tonnes_text(grams) == text


@pytest.mark.parametrize(
    ("moment", "step", "month"),
    [((2026, 11, 24), 0, "2026-11"), ((2026, 12, 31), 1, "2027-01"), ((2026, 1, 1), -1, "2025-12")],
)
def test_months_roll_over_the_year(moment: tuple[int, int, int], step: int, month: str) -> None:
    assert month_of(calendar.timegm((*moment, 12, 0, 0)), step) == month


def test_percentages_and_problems_name_what_is_wrong() -> None:
    assert percent_text(5_000) == "0.5 %"
    assert percent_text(-66_667) == "-6.6667 %"
    assert percent_text(None) == "n/a"
    balance = MassBalance(
        "PIT-A",
        1,
        9,
        opening_g=-10,
        extracted_g=0,
        received_g=0,
        shipped_g=0,
        lost_g=0,
        corrected_g=0,
        closing_g=5,
        processed_g=0,
        produced_g=0,
    )
    account = SiteAccount.of(balance, Period.parse("2026-11"))

    problems = problems_of(account)
    december = calendar.timegm((2026, 12, 1, 0, 0, 0))
    page = build_site_page(account, Period.parse("2026-11"), 9, latest_block_time=december)
    last = build_site_page(account, Period.parse("2026-11"), 9, latest_block_time=december - 1)

    assert [(problem.key, problem.line) for problem in problems] == [
        ("problem_negative", "opening_g"),
        ("problem_negative", "expected_closing_g"),
        ("problem_closing", None),
    ]
    assert len(problems) == len(account.problems)
    assert {row.line.key for row in page.rows if row.problem} == {"opening_g", "closing_g"}
    assert (page.previous_month, page.next_month) == ("2026-10", "2026-12")
    assert last.next_month is None, "the chain has not reached December"
    assert build_site_page(account, Period.parse("2026-11"), None).next_month is None


def test_processing_that_does_not_conserve_mass_is_a_problem_of_the_page_too() -> None:
    balance = MassBalance(
        "PIT-A",
        1,
        9,
        opening_g=100,
        extracted_g=0,
        received_g=0,
        shipped_g=0,
        lost_g=10,
        corrected_g=0,
        closing_g=90,
        processed_g=50,
        produced_g=30,
    )
    account = SiteAccount.of(balance, None)

    assert not account.reconciles
    assert [problem.key for problem in problems_of(account)] == ["problem_processing"]
    assert len(account.problems) == 1

"""The site account's arithmetic, periods and tolerances (plain Python, no chain)."""

from __future__ import annotations

import calendar
from dataclasses import replace

import pytest

from provenance.domain.site_balance import Period, SiteAccount, StockCheck, parse_tolerance
from provenance.domain.trace import Coordinates, MassBalance
from provenance.errors import DomainError

AT = Coordinates(7, "0x" + "b" * 64, "0x" + "c" * 64, 0, 1)


def utc(*parts: int) -> int:
    return calendar.timegm((*parts, 0, 0, 0)[:6])


def balance(**changes: int) -> MassBalance:
    figures = {
        "opening_g": 1_000,
        "extracted_g": 500,
        "received_g": 200,
        "shipped_g": 0,
        "processed_g": 300,
        "produced_g": 280,
        "lost_g": 20,
        "corrected_g": -80,
        "closing_g": 1_600,
    }
    figures.update(changes)
    return MassBalance(site="SH2", from_block=1, to_block=9, **figures)


@pytest.mark.parametrize(
    ("text", "starts", "ends"),
    [
        ("2026-11", utc(2026, 11, 1), utc(2026, 12, 1)),
        ("2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("2026-11-03", utc(2026, 11, 3), utc(2026, 11, 4)),
        ("2026-W45", utc(2026, 11, 2), utc(2026, 11, 9)),
        ("2027-W01", utc(2027, 1, 4), utc(2027, 1, 11)),
        ("2026", utc(2026, 1, 1), utc(2027, 1, 1)),
    ],
)
def test_calendar_periods_are_utc_spans(text: str, starts: int, ends: int) -> None:
    assert Period.parse(text) == Period(text, starts, ends)


@pytest.mark.parametrize("text", ["Nov 2026", "2026-13", "2026-02-30", "2026-W54", "1969-12", ""])
def test_a_period_that_is_not_one_names_the_field(text: str) -> None:
    with pytest.raises(DomainError) as error:
        Period.parse(text, "--period")
    assert error.value.field == "--period"


def test_the_period_maps_to_blocks_by_their_timestamps() -> None:
    stamps = {block: utc(2026, 10, 31) + 3_600 * 12 * block for block in range(10)}  # every 12 h
    first, last = Period.parse("2026-11-01").blocks(0, 9, stamps.__getitem__)
    assert (first, last) == (2, 3)
    assert Period.parse("2030-01").blocks(0, 9, stamps.__getitem__) == (10, 9)  # empty: after the head


@pytest.mark.parametrize(("text", "ppm"), [("0.5%", 5_000), ("0.5", 5_000), ("2 %", 20_000), ("0", 0)])
def test_tolerances_are_percentages_kept_as_whole_ppm(text: str, ppm: int) -> None:
    assert parse_tolerance(text) == ppm


@pytest.mark.parametrize("text", ["half", "-1", "101", "0.00001", "nan"])
def test_a_bad_tolerance_is_refused(text: str) -> None:
    with pytest.raises(DomainError):
        parse_tolerance(text)


def test_a_clean_account_reconciles_and_reads_in_order() -> None:
    account = SiteAccount.of(balance(), Period.parse("2026-11"))

    assert account.expected_closing_g == 1_600
    assert account.reconciles
    assert account.problems == ()
    assert next(line.key for line in account.lines()) == "opening_g"
    assert {line.key: line.grams for line in account.lines()}["corrected_g"] == -80


def test_an_account_that_would_go_negative_is_flagged_as_an_error() -> None:
    account = SiteAccount.of(balance(corrected_g=-2_000, closing_g=-320), None)

    assert account.expected_closing_g == -320
    assert not account.reconciles
    assert account.negative == ("closing_g", "expected_closing_g")
    assert any("below zero" in problem for problem in account.problems)


def test_a_closing_that_the_movements_do_not_explain_does_not_reconcile() -> None:
    account = SiteAccount.of(balance(closing_g=1_650), None)

    assert not account.reconciles
    assert "by 50 g" in account.problems[0]


def test_stock_counts_compare_with_the_book_within_the_tolerance() -> None:
    check = StockCheck(995, 1_000, 0, "0x" + "a" * 40, "0x" + "d" * 64, 5_000, AT)
    assert (check.variance_g, check.variance_ppm, check.within_tolerance) == (-5, -5_000, True)
    beyond = replace(check, counted_g=994)
    assert not beyond.within_tolerance
    assert replace(check, book_g=0, counted_g=0).variance_ppm is None
    assert replace(check, book_g=0, counted_g=0).within_tolerance
    account = SiteAccount.of(balance(), None, (check, beyond), 5_000)
    assert not account.stock_agrees
    assert len(account.problems) == 1
    assert "-0.6 %" in account.problems[0]

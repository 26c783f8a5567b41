"""What the site page shows, arranged from a `SiteAccount` for the template: tonnages, the month
before and after, the account's lines and stock counts with the problems marked, the problems as
phrases the template translates, and the mass-flow picture's layout.

The account comes from `ReadQueries.site_account`, the same call as
`GET /v1/sites/{site}/mass-balance`, so the page and the JSON cannot disagree.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from api.pages.mass_flow_layout import FlowLayout, mass_flow_layout
from provenance.domain.mass_units import MassUnit
from provenance.domain.site_balance import AccountLine, Period, SiteAccount, StockCheck

GRAMS_PER_TONNE = 1_000_000
TONNE_PLACES = Decimal("0.001")
"""Tonnes to the kilogram: a manager reads tonnes; the table beside gives the exact grams."""
GRAM_PLACES = Decimal("0.000001")


def tonnes_text(grams: int) -> str:
    """Grams as tonnes with thousands separators: to the kilogram (1,234,567 g is "1.235 t"), or to
    the gram below a kilogram (25 g is "0.000025 t"), so a small flow never reads "0.000 t"."""
    places = TONNE_PLACES if abs(grams) >= 1_000 or grams == 0 else GRAM_PLACES
    return f"{(Decimal(grams) / GRAMS_PER_TONNE).quantize(places):,} t"


def percent_text(ppm: int | None) -> str:
    """Parts per million as a percentage ("0.5 %"); None (an empty book) as "n/a"."""
    if ppm is None:
        return "n/a"
    return f"{Decimal(ppm) / 10_000:.4f}".rstrip("0").rstrip(".") + " %"


def utc_text(seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def month_of(seconds: int, step: int = 0) -> str:
    """The label (YYYY-MM) of the month holding `seconds`, moved by `step` months."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    index = moment.year * 12 + moment.month - 1 + step
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True)
class AccountRow:
    line: AccountLine
    problem: bool


@dataclass(frozen=True)
class CheckRow:
    check: StockCheck
    variance_percent: str

    @property
    def problem(self) -> bool:
        return not self.check.within_tolerance


@dataclass(frozen=True)
class Problem:
    """A phrase key of the words table and the values it takes; `line` is an account line's key,
    which the template translates too."""

    key: str
    values: dict[str, str] = field(default_factory=dict)
    line: str | None = None


@dataclass(frozen=True)
class SitePage:
    account: SiteAccount
    layout: FlowLayout
    rows: tuple[AccountRow, ...]
    checks: tuple[CheckRow, ...]
    problems: tuple[Problem, ...]
    tolerance: str
    previous_month: str
    next_month: str | None
    """None when that month starts after the index's latest block time: the chain has not got there."""
    starts: str
    ends: str
    has_blocks: bool
    index_block: int | None
    unit: MassUnit = MassUnit.T


def problems_of(account: SiteAccount) -> tuple[Problem, ...]:
    """`SiteAccount.problems`, one for one, as phrases in either language."""
    found = [
        Problem("problem_negative", {"mass": tonnes_text(getattr(account, name))}, line=name)
        for name in account.negative
    ]
    if account.expected_closing_g != account.closing_g:
        found.append(
            Problem(
                "problem_closing",
                {
                    "closing": tonnes_text(account.closing_g),
                    "expected": tonnes_text(account.expected_closing_g),
                    "difference": tonnes_text(account.closing_g - account.expected_closing_g),
                },
            )
        )
    if not account.processing_conserves:
        found.append(
            Problem(
                "problem_processing",
                {
                    "processed": tonnes_text(account.processed_g),
                    "produced": tonnes_text(account.produced_g),
                    "lost": tonnes_text(account.lost_g),
                },
            )
        )
    for check in account.stock_checks:
        if not check.within_tolerance:
            found.append(
                Problem(
                    "problem_count",
                    {
                        "block": f"{check.coordinates.block_number:,}",
                        "counted": tonnes_text(check.counted_g),
                        "book": tonnes_text(check.book_g),
                        "variance": tonnes_text(check.variance_g),
                        "percent": percent_text(check.variance_ppm),
                        "tolerance": percent_text(account.tolerance_ppm),
                    },
                )
            )
    return tuple(found)


def build_site_page(
    account: SiteAccount,
    period: Period,
    index_block: int | None,
    latest_block_time: int | None = None,
    unit: MassUnit = MassUnit.T,
) -> SitePage:
    """`latest_block_time` is "now" as the chain tells it (the index's latest block time): a month
    that starts after it has nothing yet, so the page offers no link to it."""
    following = month_of(period.starts_at, +1)
    if latest_block_time is None or Period.parse(following).starts_at > latest_block_time:
        following_or_none: str | None = None
    else:
        following_or_none = following
    negative = set(account.negative)
    closing_wrong = account.expected_closing_g != account.closing_g
    rows = tuple(
        AccountRow(line, line.key in negative or (closing_wrong and line.key == "closing_g"))
        for line in account.lines()
    )
    return SitePage(
        account=account,
        layout=mass_flow_layout(account),
        rows=rows,
        checks=tuple(CheckRow(check, percent_text(check.variance_ppm)) for check in account.stock_checks),
        problems=problems_of(account),
        tolerance=percent_text(account.tolerance_ppm),
        previous_month=month_of(period.starts_at, -1),
        next_month=following_or_none,
        starts=utc_text(period.starts_at),
        ends=utc_text(period.ends_at),
        has_blocks=account.to_block >= account.from_block,
        index_block=index_block,
        unit=unit,
    )

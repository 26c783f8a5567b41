"""A site's mass-balance account for a period, and the physical stock counts compared with it.

The account reads as a chain-of-custody mass balance (ISO 22095, ISCC) does:

    opening + extracted + received - shipped - lost + corrected = closing

**The site** is its own accounts: whoever holds the site's registrar role (`registrarRole(site)`) or
the `PROCESSOR_ROLE` at the moment in question (processors run the plants that lots of any site
go through). **The site's stock** at a moment is the mass remaining in the site's lots (registered
at the site, or made there by a transformation) that are in the site's custody: every lot starts
there (its creator is a registrar or a processor), leaves when a handover is accepted by an account
that is not the site's (a buyer, a lab, another site's registrar: no role of the site at that
block) and comes back when one of the site's accounts accepts it again.

* `extracted`: mass of the lots registered at the site in the period.
* processing (internal, no stock added): the transformations recorded at the site consume input
  mass (`processed`) and make new lots (`produced`); processed = produced + lost.
* `received`: mass that came from elsewhere: what processing here took from lots outside the
  site's stock (other sites' lots), plus the site's own lots whose custody came back (`returned`).
* `shipped`: mass whose custody left: the remaining mass of each lot at the acceptance that took
  it out of the site, plus what transformations at other sites took from the site's stock
  (`transferred`).
* `lost`: the loss the site's transformations declared.
* `corrected`: the signed adjustments of corrections to lots while they were in the site's stock.
* `opening` and `closing`: the site's stock at the end of the block before the period and of its
  last block. `closing` is read from the lots' current state (`remaining_g`, rolled back past the
  period), so `reconciles` compares two independent figures; a negative stock is always an error
  (the chain refuses to take a lot below zero, so one here means the index is wrong).

Periods are calendar spans in UTC: a month (`2026-11`, the usual accounting period), a day
(`2026-11-03`), an ISO week (`2026-W45`), or a year (`2026`); `Period.between` takes any two times.
Masses are integer grams; tolerances integer parts per million (0.5 % = 5,000 ppm).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

from provenance.domain.trace import Coordinates, MassBalance, first_block_at_or_after
from provenance.errors import DomainError

PPM = 1_000_000
DEFAULT_TOLERANCE_PPM = 5_000
"""0.5 %: a stock count within this of the book stock agrees with it."""

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_YEAR = re.compile(r"(\d{4})")


def _utc(moment: datetime.datetime) -> int:
    return int(moment.replace(tzinfo=datetime.UTC).timestamp())


@dataclass(frozen=True)
class Period:
    """A span of time [starts_at, ends_at) in Unix seconds, with the label it was asked by."""

    label: str
    starts_at: int
    ends_at: int

    @classmethod
    def parse(cls, text: str, field: str = "period") -> Period:
        """`2026-11` (month), `2026-11-03` (day), `2026-W45` (ISO week) or `2026` (year), in UTC."""
        text = text.strip()
        try:
            if match := _DAY.fullmatch(text):
                start = datetime.datetime(int(match[1]), int(match[2]), int(match[3]))
                end = start + datetime.timedelta(days=1)
            elif match := _WEEK.fullmatch(text):
                day = datetime.date.fromisocalendar(int(match[1]), int(match[2]), 1)
                start = datetime.datetime(day.year, day.month, day.day)
                end = start + datetime.timedelta(weeks=1)
            elif match := _MONTH.fullmatch(text):
                year, month = int(match[1]), int(match[2])
                start = datetime.datetime(year, month, 1)
                end = datetime.datetime(year + month // 12, month % 12 + 1, 1)
            elif match := _YEAR.fullmatch(text):
                start = datetime.datetime(int(match[1]), 1, 1)
                end = datetime.datetime(int(match[1]) + 1, 1, 1)
            else:
                raise ValueError(text)
        except ValueError:
            raise DomainError(
                field, f"{text!r} is not a period like 2026-11 (month), 2026-11-03 (day), 2026-W45 (week)"
            ) from None
        if start.year < 1970:
            raise DomainError(field, "periods before 1970 are not supported")
        return cls(text, _utc(start), _utc(end))

    @classmethod
    def between(cls, starts_at: int, ends_at: int, field: str = "to") -> Period:
        if ends_at < starts_at:
            raise DomainError(field, "the period ends before it starts")
        return cls(f"{_iso(starts_at)}/{_iso(ends_at)}", starts_at, ends_at)

    @classmethod
    def current_month(cls, now: int) -> Period:
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        return cls.parse(f"{moment.year:04d}-{moment.month:02d}")

    def blocks(self, first: int, last: int, timestamp_of: Callable[[int], int]) -> tuple[int, int]:
        """The blocks of the period among first..last, by block timestamps: from the first block at
        or after `starts_at` to the last one before `ends_at` (an empty range if none)."""
        start = first_block_at_or_after(self.starts_at, first, last, timestamp_of)
        end = first_block_at_or_after(self.ends_at, first, last, timestamp_of) - 1
        return start, end


def _iso(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_tolerance(text: str, field: str = "tolerance") -> int:
    """A tolerance in percent ("0.5", "0.5%") as whole parts per million (5,000)."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(cleaned) * 10_000
    except InvalidOperation:
        raise DomainError(field, f"{text!r} is not a percentage like 0.5%") from None
    if not value.is_finite() or value != value.to_integral_value() or not 0 <= value <= PPM:
        raise DomainError(field, "must be a percentage from 0 to 100 with at most 4 decimals")
    return int(value)


Moment = tuple[int, int]
"""A place in the chain's order: (block, transaction index)."""
END_OF_BLOCK = 2**31
"""A transaction index after any real one: (b, END_OF_BLOCK) is the end of block b."""


@dataclass(frozen=True)
class SiteRoles:
    """The role ids (0x-hex bytes32, lower case) whose holders are the site's own accounts."""

    registrar: str
    processor: str


ChangeKind = Literal["processed_here", "processed_elsewhere", "corrected"]


@dataclass(frozen=True)
class LotChange:
    """A change of a lot's remaining mass: consumed by a transformation at this site or another
    (negative grams), or a correction's signed adjustment."""

    at: Moment
    grams: int
    kind: ChangeKind


@dataclass(frozen=True)
class OutsideFlows:
    """What one lot did while outside the site's custody, and its moves across the boundary."""

    processed_here_g: int = 0
    processed_elsewhere_g: int = 0
    corrected_g: int = 0
    shipped_g: int = 0
    shipments: int = 0
    returned_g: int = 0


@dataclass(frozen=True)
class LotCustody:
    """A lot of the site whose custody left the site at least once: its acceptances (each with
    whether the accepting account was the site's then) and the changes of its remaining mass, so
    that the account can take out what happened to it while it was outside."""

    lot_id: str
    created_at: Moment
    mass_g: int
    remaining_g: int
    acceptances: tuple[tuple[Moment, bool], ...]
    """In chain order: (moment, accepted by one of the site's accounts)."""
    changes: tuple[LotChange, ...] = field(default=())

    def inside_before(self, moment: Moment) -> bool:
        """In the site's custody just before `moment` (created before it, too)."""
        inside = True
        for at, by_site in self.acceptances:
            if at >= moment:
                break
            inside = by_site
        return self.created_at < moment and inside

    def remaining_before(self, moment: Moment) -> int:
        """The remaining mass just before `moment`, replayed from the events."""
        return self.mass_g + sum(change.grams for change in self.changes if change.at < moment)

    def remaining_from_state(self, moment: Moment) -> int:
        """The same, from the current remaining mass with the later changes rolled back."""
        return self.remaining_g - sum(change.grams for change in self.changes if change.at >= moment)

    def crossings(self) -> list[tuple[Moment, bool]]:
        """The acceptances that moved the lot across the boundary: (moment, going out)."""
        found, inside = [], True
        for at, by_site in self.acceptances:
            if by_site != inside:
                found.append((at, inside))
                inside = by_site
        return found

    def outside_flows(self, first_block: int, last_block: int) -> OutsideFlows:
        """Within blocks first..last: changes made while outside, and the crossings."""
        processed_here = processed_elsewhere = corrected = 0
        for change in self.changes:
            if not first_block <= change.at[0] <= last_block or self.inside_before(change.at):
                continue
            if change.kind == "processed_here":
                processed_here -= change.grams
            elif change.kind == "processed_elsewhere":
                processed_elsewhere -= change.grams
            else:
                corrected += change.grams
        shipped = shipments = returned = 0
        for at, going_out in self.crossings():
            if first_block <= at[0] <= last_block:
                if going_out:
                    shipped += self.remaining_before(at)
                    shipments += 1
                else:
                    returned += self.remaining_before(at)
        return OutsideFlows(processed_here, processed_elsewhere, corrected, shipped, shipments, returned)


def outside_stock(lots: Sequence[LotCustody], moment: Moment, *, from_state: bool = False) -> int:
    """The mass of the site's lots that are outside its custody just before `moment` (the part of
    "every lot of the site" that is not the site's stock), replayed or from the state cache."""
    return sum(
        lot.remaining_from_state(moment) if from_state else lot.remaining_before(moment)
        for lot in lots
        if lot.created_at < moment and not lot.inside_before(moment)
    )


@dataclass(frozen=True)
class StockCheck:
    """A physical stock count (StockCounted) beside the book stock just before its transaction."""

    counted_g: int
    book_g: int
    counted_at: int
    counted_by: str
    record_hash: str
    tolerance_ppm: int
    coordinates: Coordinates

    @property
    def variance_g(self) -> int:
        """Counted less book: negative when less was found than the book says."""
        return self.counted_g - self.book_g

    @property
    def variance_ppm(self) -> int | None:
        """The variance relative to the book stock, rounded to whole ppm; None for an empty book."""
        if self.book_g == 0:
            return None
        return round(Fraction(self.variance_g * PPM, self.book_g))

    @property
    def within_tolerance(self) -> bool:
        return abs(self.variance_g) * PPM <= self.tolerance_ppm * self.book_g


Direction = Literal["balance", "in", "out", "adjustment", "internal"]


@dataclass(frozen=True)
class AccountLine:
    """One line of the account as a renderer shows it (in order). Grams are never negative for an
    "in", "out" or "internal" line: the direction says which way it goes; a correction is signed."""

    key: str
    label: str
    grams: int
    direction: Direction


@dataclass(frozen=True, kw_only=True)
class SiteAccount(MassBalance):
    """A site's mass-balance account for one period; see the module docstring. The figures are the
    period's `MassBalance`; the account adds the period, the stock counts and a stricter
    `reconciles`."""

    period: str
    starts_at: int | None
    """Unix seconds, included (None: the period was given as blocks)."""
    ends_at: int | None
    """Unix seconds, excluded."""
    tolerance_ppm: int
    stock_checks: tuple[StockCheck, ...] = ()

    @classmethod
    def of(
        cls,
        balance: MassBalance,
        period: Period | None,
        stock_checks: tuple[StockCheck, ...] = (),
        tolerance_ppm: int = DEFAULT_TOLERANCE_PPM,
    ) -> SiteAccount:
        return cls(
            **{figure.name: getattr(balance, figure.name) for figure in fields(MassBalance)},
            period=period.label if period else f"blocks {balance.from_block}-{balance.to_block}",
            starts_at=period.starts_at if period else None,
            ends_at=period.ends_at if period else None,
            tolerance_ppm=tolerance_ppm,
            stock_checks=stock_checks,
        )

    @property
    def total_in_g(self) -> int:
        return self.extracted_g + self.received_g

    @property
    def total_out_g(self) -> int:
        return self.shipped_g + self.lost_g

    @property
    def processing_conserves(self) -> bool:
        """Input consumed by the site's processing = output produced + loss (the chain's rule)."""
        return self.processed_g == self.produced_g + self.lost_g

    @property
    def negative(self) -> tuple[str, ...]:
        """The lines that are below zero (only corrections may be)."""
        figures = {
            "opening_g": self.opening_g,
            "extracted_g": self.extracted_g,
            "received_g": self.received_g,
            "shipped_g": self.shipped_g,
            "lost_g": self.lost_g,
            "processed_g": self.processed_g,
            "produced_g": self.produced_g,
            "closing_g": self.closing_g,
            "expected_closing_g": self.expected_closing_g,
        }
        return tuple(name for name, grams in figures.items() if grams < 0)

    @property
    def reconciles(self) -> bool:
        """Closing equals opening + in - out + corrections, processing conserves mass, and no
        stock is negative."""
        return self.expected_closing_g == self.closing_g and self.processing_conserves and not self.negative

    @property
    def stock_agrees(self) -> bool:
        return all(check.within_tolerance for check in self.stock_checks)

    @property
    def problems(self) -> tuple[str, ...]:
        """What an accountant must look at, in words; empty for a clean account."""
        found = [f"{name} is negative: the account would go below zero" for name in self.negative]
        if self.expected_closing_g != self.closing_g:
            found.append(
                f"closing stock {self.closing_g} g differs from opening + in - out + corrections "
                f"({self.expected_closing_g} g) by {self.closing_g - self.expected_closing_g} g"
            )
        if not self.processing_conserves:
            found.append(
                f"processing consumed {self.processed_g} g but produced {self.produced_g} g and lost "
                f"{self.lost_g} g"
            )
        for check in self.stock_checks:
            if not check.within_tolerance:
                found.append(
                    f"stock count at block {check.coordinates.block_number} found {check.counted_g} g, "
                    f"book {check.book_g} g: variance {check.variance_g} g "
                    f"({_percent(check.variance_ppm)}), beyond {_percent(self.tolerance_ppm)}"
                )
        return tuple(found)

    def lines(self) -> tuple[AccountLine, ...]:
        """The account in reading order, for a table or a mass-flow diagram: the balance, then
        processing as internal lines (they add no stock)."""
        return (
            AccountLine("opening_g", "Opening stock", self.opening_g, "balance"),
            AccountLine("extracted_g", "Extracted", self.extracted_g, "in"),
            AccountLine("received_g", "Received from elsewhere", self.received_g, "in"),
            AccountLine("shipped_g", "Shipped (custody left the site)", self.shipped_g, "out"),
            AccountLine("lost_g", "Process losses", self.lost_g, "out"),
            AccountLine("corrected_g", "Corrections", self.corrected_g, "adjustment"),
            AccountLine("closing_g", "Closing stock", self.closing_g, "balance"),
            AccountLine("processed_g", "Processing: input consumed", self.processed_g, "internal"),
            AccountLine("produced_g", "Processing: output produced", self.produced_g, "internal"),
        )


def _percent(ppm: int | None) -> str:
    if ppm is None:
        return "n/a (empty book)"
    return f"{Decimal(ppm) / 10_000:.4f}".rstrip("0").rstrip(".") + " %"

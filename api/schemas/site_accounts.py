"""A site's mass balance over a period."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import FromDomain
from api.schemas.reads import CoordinatesOut
from provenance.domain.site_balance import SiteAccount, StockCheck


class StockCheckOut(BaseModel):
    """A physical stock count (StockCounted) beside the book stock just before its transaction."""

    counted_g: int
    book_g: int = Field(description="The site's book stock just before the count's transaction.")
    variance_g: int = Field(description="Counted less book: negative when less was found.")
    variance_ppm: int | None = Field(
        description="Variance per million of the book stock; null for an empty book."
    )
    within_tolerance: bool
    counted_at: int = Field(description="When the count was made, Unix seconds (as declared).")
    counted_by: str
    record_hash: str
    coordinates: CoordinatesOut

    @classmethod
    def of(cls, check: StockCheck) -> StockCheckOut:
        return cls(
            counted_g=check.counted_g,
            book_g=check.book_g,
            variance_g=check.variance_g,
            variance_ppm=check.variance_ppm,
            within_tolerance=check.within_tolerance,
            counted_at=check.counted_at,
            counted_by=check.counted_by,
            record_hash=check.record_hash,
            coordinates=CoordinatesOut.of(check.coordinates),
        )


class AccountLineOut(FromDomain):
    key: str
    label: str
    grams: int
    direction: Literal["balance", "in", "out", "adjustment", "internal"] = Field(
        description="in and out lines are never negative (the direction gives the sign); internal: processing."
    )


class SiteAccountOut(FromDomain):
    """A site's mass-balance account for a period; see docs/api.md for what each line counts.

    opening + extracted + received - shipped - lost + corrected = closing; processing at the site is
    internal (processed = produced + lost) and adds no stock."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "period": "2026-11",
                    "starts_at": 1_793_491_200,
                    "ends_at": 1_796_083_200,
                    "from_block": 100,
                    "to_block": 200,
                    "opening_g": 0,
                    "extracted_g": 3000,
                    "received_g": 1000,
                    "shipped_g": 1400,
                    "lost_g": 100,
                    "corrected_g": -500,
                    "closing_g": 2000,
                    "expected_closing_g": 2000,
                    "reconciles": True,
                    "processed_g": 2500,
                    "produced_g": 2400,
                    "returned_g": 0,
                    "transferred_g": 0,
                    "shipments": 1,
                    "tolerance_ppm": 5000,
                    "stock_checks": [],
                    "stock_agrees": True,
                    "problems": [],
                    "lines": [],
                }
            ]
        }
    )

    site: str
    period: str = Field(description="The period as asked (2026-11, 2026-W45, ...), or its blocks.")
    starts_at: int | None = Field(description="Unix seconds, included; null when given as blocks.")
    ends_at: int | None = Field(description="Unix seconds, excluded.")
    from_block: int
    to_block: int
    opening_g: int
    extracted_g: int
    received_g: int = Field(
        description="Came from elsewhere: taken by processing here from lots outside the site's stock, "
        "plus the site's lots whose custody came back (returned_g)."
    )
    shipped_g: int = Field(
        description="Custody left the site (accepted by an account without the site's registrar or "
        "processor role), plus what processing at other sites took from the site's stock (transferred_g)."
    )
    lost_g: int = Field(description="Declared by the transformations recorded at this site.")
    corrected_g: int = Field(description="The sum of correction adjustments (may be negative).")
    closing_g: int = Field(description="Held at the end, read from the lots' current state.")
    expected_closing_g: int = Field(
        description="opening + extracted + received - shipped - lost + corrected."
    )
    reconciles: bool = Field(
        description="closing equals expected_closing, processed = produced + lost, no figure is negative."
    )
    processed_g: int = Field(description="Internal: input mass consumed by the transformations at this site.")
    produced_g: int = Field(description="Internal: mass of the lots those transformations made.")
    returned_g: int = Field(description="Part of received_g: the site's own lots whose custody came back.")
    transferred_g: int = Field(description="Part of shipped_g: taken by transformations at other sites.")
    shipments: int = Field(description="How many times custody of one of the site's lots left the site.")
    tolerance_ppm: int
    stock_checks: list[StockCheckOut]
    stock_agrees: bool = Field(description="Every stock count is within the tolerance of the book.")
    problems: list[str] = Field(description="What does not add up, in words; empty for a clean account.")
    lines: list[AccountLineOut] = Field(description="The account in reading order, for display.")

    @classmethod
    def of_account(cls, account: SiteAccount) -> SiteAccountOut:
        return cls(
            **{
                name: getattr(account, name)
                for name in cls.model_fields
                if name not in ("stock_checks", "lines", "problems")
            },
            stock_checks=[StockCheckOut.of(check) for check in account.stock_checks],
            problems=list(account.problems),
            lines=[AccountLineOut.of(line) for line in account.lines()],
        )

"""The site page's mass-flow diagram: bands as wide as their mass, the stock node conserving mass,
zero flows left out, a gap drawn when the account does not add up (plain Python, no chain)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from api.pages.mass_flow_layout import (
    PROCESSING,
    PRODUCTS,
    STOCK,
    FlowLayout,
    Geometry,
    mass_flow_layout,
)
from provenance.domain.site_balance import SiteAccount
from provenance.domain.trace import MassBalance

TOLERANCE = 1e-6


def account(**changes: int) -> SiteAccount:
    """A month at a mine: 1,000 t opening, 300 t extracted, 50 t received, 400 t shipped, 200 t
    processed with 20 t lost and 180 t back as product, -5 t corrected, 925 t closing."""
    figures = {
        "opening_g": 1_000_000_000,
        "extracted_g": 300_000_000,
        "received_g": 50_000_000,
        "shipped_g": 400_000_000,
        "processed_g": 200_000_000,
        "produced_g": 180_000_000,
        "lost_g": 20_000_000,
        "corrected_g": -5_000_000,
        "closing_g": 925_000_000,
        "shipments": 3,
    }
    figures.update(changes)
    return SiteAccount.of(MassBalance(site="PIT-A", from_block=1, to_block=9, **figures), None)


def into(layout: FlowLayout, node: str) -> list[int]:
    return [band.grams for band in layout.bands if band.target == node]


def out_of(layout: FlowLayout, node: str) -> list[int]:
    return [band.grams for band in layout.bands if band.source == node]


def test_the_stock_node_conserves_mass_and_so_does_processing() -> None:
    layout = mass_flow_layout(account())

    assert account().reconciles
    assert layout.difference_g == 0
    assert sum(into(layout, STOCK)) == sum(out_of(layout, STOCK)) == layout.throughput_g
    assert layout.throughput_g == 1_530_000_000
    assert sum(into(layout, PROCESSING)) == sum(out_of(layout, PROCESSING)) == 200_000_000
    assert {band.key: band.grams for band in layout.bands} == {
        "opening_g": 1_000_000_000,
        "extracted_g": 300_000_000,
        "received_g": 50_000_000,
        PRODUCTS: 180_000_000,
        "closing_g": 925_000_000,
        "shipped_g": 400_000_000,
        PROCESSING: 200_000_000,
        "lost_g": 20_000_000,
        "corrected_out": 5_000_000,
    }


def test_widths_are_proportional_to_mass_above_the_minimum_and_never_negative() -> None:
    geometry = Geometry()
    layout = mass_flow_layout(account(), geometry)

    per_gram = Fraction(1) / layout.grams_per_unit
    for band in layout.bands:
        assert band.width >= geometry.min_band > 0
        expected = float(band.grams * per_gram)
        if expected >= geometry.min_band:
            assert band.width == pytest.approx(expected, abs=TOLERANCE), band.key
        else:
            assert band.width == geometry.min_band, band.key
    closing, lost = layout.band("closing_g"), layout.band("lost_g")
    assert closing is not None
    assert lost is not None
    assert closing.width / lost.width == pytest.approx(925 / 20)
    assert sum(band.width for band in layout.bands if band.target == STOCK) == pytest.approx(
        geometry.flow_height
    )
    for node in layout.nodes:
        assert node.width > 0
        assert node.height > 0
        assert node.x >= 0
        assert node.y >= 0
        assert node.x + node.width <= layout.width
        assert node.y + node.height <= layout.height


def test_a_tiny_loss_beside_tonnes_of_ore_is_still_visible() -> None:
    tiny = account(lost_g=25, produced_g=200_000_000 - 25, closing_g=925_000_000 + 20_000_000 - 25)
    layout = mass_flow_layout(tiny)

    assert tiny.reconciles

    lost = layout.band("lost_g")
    assert lost is not None
    assert lost.grams == 25
    assert lost.width == Geometry().min_band


def test_bands_leave_and_enter_each_node_side_by_side_inside_it() -> None:
    layout = mass_flow_layout(account())
    nodes = {node.key: node for node in layout.nodes}

    for side, ends in (("target", "y1"), ("source", "y0")):
        for key, node in nodes.items():
            attached = sorted(
                (band for band in layout.bands if getattr(band, side) == key),
                key=lambda band: getattr(band, ends),
            )
            if not attached:
                continue
            position = node.y
            for band in attached:
                assert getattr(band, ends) == pytest.approx(position), (key, band.key)
                position += band.width
            assert position <= node.y + node.height + TOLERANCE, key


def test_zero_flows_are_left_out_consistently() -> None:
    quiet = account(
        received_g=0,
        shipped_g=0,
        processed_g=0,
        produced_g=0,
        lost_g=0,
        corrected_g=0,
        closing_g=1_300_000_000,
    )
    layout = mass_flow_layout(quiet)

    assert quiet.reconciles

    keys = {band.key for band in layout.bands}
    assert keys == {"opening_g", "extracted_g", "closing_g"}
    assert {node.key for node in layout.nodes} == {"opening_g", "extracted_g", STOCK, "closing_g"}
    assert all(band.grams > 0 for band in layout.bands)


def test_an_empty_month_draws_only_the_stock_node() -> None:
    nothing = account(
        opening_g=0,
        extracted_g=0,
        received_g=0,
        shipped_g=0,
        processed_g=0,
        produced_g=0,
        lost_g=0,
        corrected_g=0,
        closing_g=0,
    )

    layout = mass_flow_layout(nothing)

    assert layout.bands == ()
    assert [node.key for node in layout.nodes] == [STOCK]
    assert layout.throughput_g == 0
    assert layout.grams_per_unit == 0


@pytest.mark.parametrize(
    ("closing_g", "side", "gap"),
    [(926_000_000, "difference_in", 1_000_000), (920_000_000, "difference_out", 5_000_000)],
)
def test_an_account_that_does_not_add_up_shows_the_gap_and_still_balances(
    closing_g: int, side: str, gap: int
) -> None:
    broken = account(closing_g=closing_g)
    layout = mass_flow_layout(broken)

    assert not broken.reconciles
    assert abs(layout.difference_g) == gap
    band = layout.band(side)
    assert band is not None
    assert band.grams == gap
    assert sum(into(layout, STOCK)) == sum(out_of(layout, STOCK))


def test_negative_lines_are_drawn_as_nothing_and_the_gap_takes_them() -> None:
    layout = mass_flow_layout(account(opening_g=-10_000_000, closing_g=-85_000_000))

    assert layout.band("opening_g") is None
    assert sum(into(layout, STOCK)) == sum(out_of(layout, STOCK))
    assert all(band.width > 0 and band.grams > 0 for band in layout.bands)


def test_processing_is_a_loop_that_adds_no_stock() -> None:
    layout = mass_flow_layout(account())

    products = layout.band(PRODUCTS)
    stock, processing = layout.node(STOCK), layout.node(PROCESSING)
    assert products is not None
    assert stock is not None
    assert processing is not None
    assert (products.source, products.target) == (PROCESSING, STOCK)
    assert products.x1 == stock.x < processing.x, "runs back into the stock node's left side"
    assert products.loop_y is not None
    assert products.loop_y > max(node.y + node.height for node in layout.nodes), "below everything"
    assert layout.height >= products.loop_y + products.width
    # what processing takes out of the stock, less what comes back, is exactly the loss
    assert sum(out_of(layout, PROCESSING)) - products.grams == account().lost_g


def test_the_same_account_gives_the_same_picture() -> None:
    assert mass_flow_layout(account()) == mass_flow_layout(account())
    assert [band.path for band in mass_flow_layout(account()).bands] == [
        band.path for band in mass_flow_layout(account()).bands
    ]

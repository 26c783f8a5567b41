"""Where to draw a site's month: a Sankey-like mass-flow diagram of its account, in plain Python.

The site page shows the account (see `site_balance`) as bands flowing left to right, each as wide
as the mass it carries:

    opening stock  ─┐                ┌─────────────────────> closing stock
    extracted      ─┼─> site stock ──┼─────────────────────> shipped
    received       ─┤       ▲        ├─> processing ─┬─────> losses
    corrections +  ─┘       │        │               │
                            │        ├─────────────────────> corrections −
                            │        └─────────────────────> unexplained difference (if any)
                            └────────── products ────┘  (back into the stock: internal)

Processing is an internal loop: what it consumes leaves the stock node and what it makes (the
products) comes back into it, so it adds no stock; only its loss leaves. Every band's mass enters
the stock node and leaves it again, so the stock node conserves mass: the sum in equals the sum
out (and the processing node's, for an account whose processing conserves mass). An account that
does not reconcile (or has a negative line, which the drawing cannot show as a width) gets an
"unexplained difference" band on the short side, so the picture still balances and the gap is
drawn where a manager sees it. Zero flows are omitted (no band, no node), never drawn as
hairlines; any non-zero flow is at least `Geometry.min_band` wide, so a 25 g loss beside 300 t of
ore is still visible.

Keys, not words: the caller labels each node in its language. Standard library only; the same
account gives the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from provenance.domain.site_balance import SiteAccount

Column = Literal[0, 1, 2, 3]
Kind = Literal["source", "stock", "process", "sink"]
Anchor = Literal["start", "middle", "end"]

STOCK = "stock"
PROCESSING = "processing"
PRODUCTS = "produced_g"
"""The band from the processing node back into the stock node."""
SOURCES = ("opening_g", "extracted_g", "received_g", "corrected_in", "difference_in")
"""Into the stock node from the left, top to bottom (the products come in below them)."""
SINKS = ("closing_g", "shipped_g", "lost_g", "corrected_out", "difference_out")
"""The last column, top to bottom."""


@dataclass(frozen=True)
class Geometry:
    """Sizes in SVG user units (pixels at scale 1)."""

    width: float = 860.0
    margin: float = 12.0
    left_labels: float = 190.0
    """Room left of the first column for the sources' labels."""
    right_labels: float = 210.0
    """Room right of the last column for the sinks' labels."""
    top_labels: float = 40.0
    """Room above the columns for the stock and processing nodes' labels."""
    node_width: float = 14.0
    flow_height: float = 300.0
    """Height of the whole throughput (everything through the stock node) at full scale."""
    min_band: float = 2.0
    label_height: float = 32.0
    """Two lines of label: a node never gets less room than this in its column."""
    node_gap: float = 14.0
    processing_gap: float = 44.0
    """Between the closing band and the processing node, for the processing node's label."""
    loop_gap: float = 22.0
    """Below everything else, where the products' band runs back to the stock node."""


@dataclass(frozen=True)
class FlowNode:
    key: str
    kind: Kind
    column: Column
    grams: int
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    """The first label line's baseline; the second goes one line below."""
    label_anchor: Anchor


@dataclass(frozen=True)
class FlowBand:
    """`grams` from `source` into `target`, drawn as a ribbon `width` wide (the closed `path`)."""

    key: str
    source: str
    target: str
    grams: int
    width: float
    x0: float
    y0: float
    x1: float
    y1: float
    loop_y: float | None = None
    """For a band that runs back (right to left): the top of its run below the picture."""

    @property
    def path(self) -> str:
        if self.loop_y is not None:
            return self._loop_path(self.loop_y)
        middle = (self.x0 + self.x1) / 2
        top = f"M{self.x0:.2f},{self.y0:.2f} C{middle:.2f},{self.y0:.2f} {middle:.2f},{self.y1:.2f} {self.x1:.2f},{self.y1:.2f}"
        bottom0, bottom1 = self.y0 + self.width, self.y1 + self.width
        back = f"L{self.x1:.2f},{bottom1:.2f} C{middle:.2f},{bottom1:.2f} {middle:.2f},{bottom0:.2f} {self.x0:.2f},{bottom0:.2f} Z"
        return f"{top} {back}"

    def _loop_path(self, low: float) -> str:
        """Out of the right side at (x0, y0), down and back left under the picture, into the left
        side at (x1, y1): the outer edge then the inner one, as one closed ribbon."""
        w, reach = self.width, 30.0 + self.width
        x0, y0, x1, y1 = self.x0, self.y0, self.x1, self.y1
        bottom = low + w
        outer = (
            f"M{x0:.2f},{y0:.2f} C{x0 + reach:.2f},{y0:.2f} {x0 + reach:.2f},{bottom:.2f} {x0:.2f},{bottom:.2f} "
            f"L{x1:.2f},{bottom:.2f} C{x1 - reach:.2f},{bottom:.2f} {x1 - reach:.2f},{y1:.2f} {x1:.2f},{y1:.2f}"
        )
        inner_reach = reach - w
        inner = (
            f"L{x1:.2f},{y1 + w:.2f} C{x1 - inner_reach:.2f},{y1 + w:.2f} {x1 - inner_reach:.2f},{low:.2f} "
            f"{x1:.2f},{low:.2f} L{x0:.2f},{low:.2f} C{x0 + inner_reach:.2f},{low:.2f} "
            f"{x0 + inner_reach:.2f},{y0 + w:.2f} {x0:.2f},{y0 + w:.2f} Z"
        )
        return f"{outer} {inner}"


@dataclass(frozen=True)
class FlowLayout:
    width: float
    height: float
    nodes: tuple[FlowNode, ...]
    bands: tuple[FlowBand, ...]
    grams_per_unit: Fraction
    """Scale: grams per SVG unit of band width (above the minimum width); 0 when nothing moves."""
    throughput_g: int
    """Everything through the stock node: the sum in, which equals the sum out."""
    difference_g: int
    """Out less in before the "unexplained difference" band; 0 for an account that adds up."""

    def node(self, key: str) -> FlowNode | None:
        return next((node for node in self.nodes if node.key == key), None)

    def band(self, key: str) -> FlowBand | None:
        return next((band for band in self.bands if band.key == key), None)


def flows(account: SiteAccount) -> tuple[dict[str, int], dict[str, int], int]:
    """The grams into the stock node (the products included), out of it (processing's input
    included), and the difference added to balance them; negative figures count as 0 (they are
    listed as problems)."""
    into = {
        "opening_g": max(account.opening_g, 0),
        "extracted_g": max(account.extracted_g, 0),
        "received_g": max(account.received_g, 0),
        "corrected_in": max(account.corrected_g, 0),
        PRODUCTS: max(account.produced_g, 0),
    }
    out = {
        "closing_g": max(account.closing_g, 0),
        "shipped_g": max(account.shipped_g, 0),
        PROCESSING: max(account.processed_g, 0),
        "corrected_out": max(-account.corrected_g, 0),
    }
    difference = sum(out.values()) - sum(into.values())
    into["difference_in"] = max(difference, 0)
    out["difference_out"] = max(-difference, 0)
    return into, out, difference


def mass_flow_layout(account: SiteAccount, geometry: Geometry = Geometry()) -> FlowLayout:
    g = geometry
    into, out, difference = flows(account)
    throughput = sum(into.values())
    scale = Fraction(0) if throughput == 0 else Fraction(round(g.flow_height * 1000), 1000) / throughput

    def thickness(grams: int) -> float:
        return max(float(grams * scale), g.min_band)

    top = g.margin + g.top_labels
    x_source = g.margin + g.left_labels
    x_sink = g.width - g.margin - g.right_labels - g.node_width
    x_stock = x_source + (x_sink - x_source) * 0.36
    x_process = x_source + (x_sink - x_source) * 0.68
    nodes: list[FlowNode] = []
    bands: list[FlowBand] = []

    def column_node(
        key: str, kind: Kind, column: Column, grams: int, x: float, y: float, h: float
    ) -> FlowNode:
        anchor: Anchor
        if column == 0:
            label_x, label_y, anchor = x - 6, y + h / 2 - 2, "end"
        elif column == 3:
            label_x, label_y, anchor = x + g.node_width + 6, y + h / 2 - 2, "start"
        else:
            label_x, label_y, anchor = x + g.node_width / 2, y - 20, "middle"
        node = FlowNode(key, kind, column, grams, x, y, g.node_width, h, label_x, label_y, anchor)
        nodes.append(node)
        return node

    def stack(
        keys: tuple[str, ...], grams: dict[str, int], x: float, kind: Kind, column: Column
    ) -> tuple[dict[str, FlowNode], float]:
        """The non-zero `keys` one under another from the top, each in a slot tall enough for its
        label; and where the last slot ends."""
        placed = {}
        y = end = top
        for key in keys:
            if grams.get(key, 0) <= 0:
                continue
            h = thickness(grams[key])
            slot = max(h, g.label_height)
            placed[key] = column_node(key, kind, column, grams[key], x, y + (slot - h) / 2, h)
            end = y + slot
            y = end + g.node_gap
        return placed, end

    sources, sources_end = stack(SOURCES, into, x_source, "source", 0)
    produced, lost = into[PRODUCTS], max(account.lost_g, 0)
    stock_out = {
        key: out[key] for key in ("closing_g", "shipped_g", PROCESSING, "corrected_out", "difference_out")
    }
    in_height = sum(thickness(n.grams) for n in sources.values()) + (thickness(produced) if produced else 0.0)
    out_height = sum(thickness(grams) for grams in stock_out.values() if grams > 0)
    stock = column_node(STOCK, "stock", 1, throughput, x_stock, top, max(in_height, out_height, g.min_band))

    y = stock.y
    for key, node in sources.items():
        bands.append(
            FlowBand(key, key, STOCK, node.grams, node.height, node.x + g.node_width, node.y, stock.x, y)
        )
        y += node.height
    products_y = y

    sink_grams = {key: out.get(key, 0) for key in SINKS} | {"lost_g": lost}
    sinks, sinks_end = stack(SINKS, sink_grams, x_sink, "sink", 3)
    y = stock.y
    process: FlowNode | None = None
    for key, grams in stock_out.items():
        if grams <= 0:
            continue
        h = thickness(grams)
        if key == PROCESSING:
            parts_height = sum(thickness(part) for part in (produced, lost) if part > 0)
            above = sum(thickness(out[k]) for k in ("closing_g", "shipped_g") if out[k] > 0)
            process_y = stock.y + above + g.processing_gap
            process = column_node(PROCESSING, "process", 2, grams, x_process, process_y, max(h, parts_height))
            bands.append(
                FlowBand(
                    PROCESSING, STOCK, PROCESSING, grams, h, stock.x + g.node_width, y, process.x, process.y
                )
            )
        else:
            target = sinks[key]
            bands.append(FlowBand(key, STOCK, key, grams, h, stock.x + g.node_width, y, target.x, target.y))
        y += h
    bottom = max([sources_end, sinks_end] + [node.y + node.height for node in nodes])
    if process is not None:
        y = process.y
        if lost > 0:
            target = sinks["lost_g"]
            bands.append(
                FlowBand(
                    "lost_g",
                    PROCESSING,
                    "lost_g",
                    lost,
                    target.height,
                    process.x + g.node_width,
                    y,
                    target.x,
                    target.y,
                )
            )
            y += target.height
        if produced > 0:
            h = thickness(produced)
            low = bottom + g.loop_gap
            bands.append(
                FlowBand(
                    PRODUCTS,
                    PROCESSING,
                    STOCK,
                    produced,
                    h,
                    process.x + g.node_width,
                    y,
                    stock.x,
                    products_y,
                    loop_y=low,
                )
            )
            bottom = low + h + g.label_height
    return FlowLayout(
        width=g.width,
        height=round(bottom + g.margin, 2),
        nodes=tuple(nodes),
        bands=tuple(bands),
        grams_per_unit=Fraction(0) if scale == 0 else 1 / scale,
        throughput_g=throughput,
        difference_g=difference,
    )

"""Where to draw a site's month: a Sankey-like mass-flow diagram of its account, in plain Python.

The site page shows the account (see `site_balance`) as bands flowing left to right, each as wide
as the mass it carries:

    opening stock  ─┐                ┌─────────────────────> closing stock
    extracted      ─┤                │
    received       ─┼─> site stock ──┼─> processing ─┬─────> transformed out
    transformed in ─┤                │               └─────> losses
    corrections +  ─┘                ├─────────────────────> corrections −
                                     └─────────────────────> unexplained difference (if any)
                       (dashed, below the stock node) ·····> handed over (memo: custody, not mass)

Every band's mass enters the site-stock node and leaves it again, so the stock node conserves
mass: the sum in equals the sum out. An account that does not reconcile (or has a negative line,
which the drawing cannot show as a width) gets an "unexplained difference" band on the short side,
so the picture still balances and the gap is drawn where a manager sees it. Zero flows are
omitted (no band, no node), never drawn as hairlines; any non-zero flow is at least
`Geometry.min_band` wide, so a 25 g loss beside 300 t of ore is still visible. Handed-over mass
is a memo line (custody moves no mass between lots): it is drawn dashed below the stock node and
is not part of the balance.

Keys, not words: the caller labels each node in its language. Standard library only; the same
account gives the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from provenance.domain.site_balance import SiteAccount

Column = Literal[0, 1, 2, 3]
Kind = Literal["source", "stock", "process", "sink", "memo"]
Anchor = Literal["start", "middle", "end"]

STOCK = "stock"
PROCESSING = "processing"
SOURCES = ("opening_g", "extracted_g", "received_g", "transformed_in_g", "corrected_in", "difference_in")
"""Into the stock node, top to bottom."""
PROCESSED = ("transformed_out_g", "lost_g")
"""Out of the processing node, top to bottom."""
SINKS = ("closing_g", *PROCESSED, "corrected_out", "difference_out")
"""The last column, top to bottom."""
MEMO = "handed_over_g"


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
    memo_gap: float = 18.0


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
    memo: bool = False

    @property
    def path(self) -> str:
        middle = (self.x0 + self.x1) / 2
        top = f"M{self.x0:.2f},{self.y0:.2f} C{middle:.2f},{self.y0:.2f} {middle:.2f},{self.y1:.2f} {self.x1:.2f},{self.y1:.2f}"
        bottom0, bottom1 = self.y0 + self.width, self.y1 + self.width
        back = f"L{self.x1:.2f},{bottom1:.2f} C{middle:.2f},{bottom1:.2f} {middle:.2f},{bottom0:.2f} {self.x0:.2f},{bottom0:.2f} Z"
        return f"{top} {back}"


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
    """The grams into the stock node, out of it (processing split into its parts), and the
    difference added to balance them; negative figures count as 0 (they are listed as problems)."""
    into = {
        "opening_g": max(account.opening_g, 0),
        "extracted_g": max(account.extracted_g, 0),
        "received_g": max(account.received_g, 0),
        "transformed_in_g": max(account.transformed_in_g, 0),
        "corrected_in": max(account.corrected_g, 0),
    }
    out = {
        "closing_g": max(account.closing_g, 0),
        "transformed_out_g": max(account.transformed_out_g, 0),
        "lost_g": max(account.lost_g, 0),
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
    processing_g = out["transformed_out_g"] + out["lost_g"]
    stock_out = {
        "closing_g": out["closing_g"],
        PROCESSING: processing_g,
        "corrected_out": out["corrected_out"],
        "difference_out": out["difference_out"],
    }
    in_height = sum(thickness(n.grams) for n in sources.values())
    out_height = sum(thickness(grams) for grams in stock_out.values() if grams > 0)
    stock = column_node(STOCK, "stock", 1, throughput, x_stock, top, max(in_height, out_height, g.min_band))

    y = stock.y
    for key, node in sources.items():
        bands.append(
            FlowBand(key, key, STOCK, node.grams, node.height, node.x + g.node_width, node.y, stock.x, y)
        )
        y += node.height

    sink_grams = {key: out[key] for key in SINKS}
    sinks, sinks_end = stack(SINKS, sink_grams, x_sink, "sink", 3)
    y = stock.y
    process: FlowNode | None = None
    for key, grams in stock_out.items():
        if grams <= 0:
            continue
        h = thickness(grams)
        if key == PROCESSING:
            parts_height = sum(thickness(out[part]) for part in PROCESSED if out[part] > 0)
            closing_band = thickness(out["closing_g"]) if out["closing_g"] > 0 else 0.0
            process_y = stock.y + closing_band + g.processing_gap
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
    if process is not None:
        y = process.y
        for key in PROCESSED:
            if out[key] > 0:
                target = sinks[key]
                bands.append(
                    FlowBand(
                        key,
                        PROCESSING,
                        key,
                        out[key],
                        target.height,
                        process.x + g.node_width,
                        y,
                        target.x,
                        target.y,
                    )
                )
                y += target.height

    bottom = max([sources_end, sinks_end] + [node.y + node.height for node in nodes])
    if account.handed_over_g > 0:
        h = thickness(account.handed_over_g)
        start = stock.y + stock.height + g.memo_gap
        memo_y = max(bottom + g.node_gap, start)
        memo = column_node(
            MEMO, "memo", 3, account.handed_over_g, x_sink, memo_y + (max(h, g.label_height) - h) / 2, h
        )
        bands.append(
            FlowBand(
                MEMO, STOCK, MEMO, memo.grams, h, stock.x + g.node_width, start, memo.x, memo.y, memo=True
            )
        )
        bottom = max(bottom, memo_y + max(h, g.label_height), start + h)
    return FlowLayout(
        width=g.width,
        height=round(bottom + g.margin, 2),
        nodes=tuple(nodes),
        bands=tuple(bands),
        grams_per_unit=Fraction(0) if scale == 0 else 1 / scale,
        throughput_g=throughput,
        difference_g=difference,
    )

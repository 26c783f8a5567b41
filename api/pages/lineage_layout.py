"""Where to draw a lineage: a layered layout of the lot graph, in plain Python, for an SVG picture.

The buyer's page draws a lot's lineage as boxes joined by edges; browsers cannot lay a graph
out without JavaScript, so the server does (Sugiyama's method, kept small):

1. Layers: the lot itself is layer 0; every other lot sits one layer further than the furthest
   lot it went into (longest path), so every edge runs from a higher layer to a lower one.
2. Edges that skip layers pass through one placeholder per skipped layer, so they are routed
   between boxes instead of through them.
3. Order within each layer by barycenter sweeps (the mean position of each node's neighbours),
   keeping the order with the fewest crossings seen; ties break by id, so the answer is
   deterministic whatever order the graph arrives in.
4. Vertical positions: each layer stacked in its order with fixed gaps (so boxes never overlap),
   pulled towards its neighbours by averaging a push-down and a push-up placement (the average of
   two placements that keep the gaps keeps them too).

Layers run left to right from the origins (highest layer) to the lot (layer 0), so the picture
reads as mass flowing towards the lot; with `lot_first` the picture is mirrored and every layer is
stacked from the top in its order, so the lot is the top-left box: what a narrow screen shows first (edges
then run from the left side of a source to the right side of its target). Sizes are in SVG user units (pixels at scale 1); the
caller fixes the font so that labels stay readable however large the graph grows: a big lineage
makes a bigger picture to scroll, never smaller text.

Standard library only.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True)
class GraphNode:
    """A lot to draw: its id, its label lines (id first), and a colour key (its site), if any."""

    node_id: str
    lines: tuple[str, ...]
    group: str | None = None


@dataclass(frozen=True)
class GraphEdge:
    """`weight` (grams) of `source` went into `target`."""

    source: str
    target: str
    weight: int


@dataclass(frozen=True)
class Spacing:
    char_width: float = 7.5
    """Width of one label character at the font the caller uses (12 px monospace: 7.2)."""
    min_node_width: float = 120.0
    max_node_width: float = 280.0
    line_height: float = 16.0
    node_padding: float = 8.0
    layer_gap: float = 120.0
    row_gap: float = 18.0
    through_height: float = 8.0
    """Height of the slot an edge takes when it passes through a layer."""
    margin: float = 16.0


@dataclass(frozen=True)
class Box:
    node_id: str
    x: float
    y: float
    width: float
    height: float
    layer: int
    group: str | None
    lines: tuple[str, ...]

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Route:
    """An edge as drawn: from the right side of `source` to the left side of `target`."""

    source: str
    target: str
    weight: int
    points: tuple[Point, ...]
    """Port on the source, one point each side of every layer passed through, port on the target."""

    @property
    def path(self) -> str:
        """SVG path data: horizontal-tangent cubic curves between consecutive points."""
        (x0, y0), *rest = self.points
        parts = [f"M{x0:.1f},{y0:.1f}"]
        for x1, y1 in rest:
            if y1 == y0:
                parts.append(f"L{x1:.1f},{y1:.1f}")
            else:
                bend = (x1 - x0) / 2
                parts.append(f"C{x0 + bend:.1f},{y0:.1f} {x1 - bend:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
            x0, y0 = x1, y1
        return " ".join(parts)

    @property
    def label_at(self) -> Point:
        """The middle of the first curve: edges leaving one box diverge there, so labels separate."""
        (x0, y0), (x1, y1) = self.points[0], self.points[1]
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    boxes: tuple[Box, ...]
    routes: tuple[Route, ...]
    layers: int
    crossings: int


class LayoutError(ValueError):
    """The graph is not a lineage: an edge names an unknown node, or the edges form a cycle."""


@dataclass
class _Slot:
    """A real node or a placeholder of an edge passing through a layer."""

    key: str
    layer: int
    height: float
    real: bool
    up: list[str]
    """Neighbours one layer further from the lot (inputs)."""
    down: list[str]
    """Neighbours one layer nearer the lot (outputs)."""
    y: float = 0.0


def _layers(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> dict[str, int]:
    """Longest distance (in edges) from each node to a sink, by a topological walk from the sinks."""
    outgoing: dict[str, list[str]] = defaultdict(list)
    incoming: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        outgoing[edge.source].append(edge.target)
        incoming[edge.target].append(edge.source)
    waiting = {node.node_id: len(outgoing[node.node_id]) for node in nodes}
    layer = dict.fromkeys(waiting, 0)
    ready = deque(sorted(node_id for node_id, count in waiting.items() if count == 0))
    settled = 0
    while ready:
        node_id = ready.popleft()
        settled += 1
        for source in incoming[node_id]:
            layer[source] = max(layer[source], layer[node_id] + 1)
            waiting[source] -= 1
            if waiting[source] == 0:
                ready.append(source)
    if settled != len(waiting):
        raise LayoutError("the edges form a cycle: a lineage never does")
    return layer


def _crossings(upper: Sequence[str], lower: Sequence[str], slots: Mapping[str, _Slot]) -> int:
    """Crossings between two adjacent layers: pairs of edges whose ends are in opposite orders.

    Counted as inversions with a Fenwick tree, O(E log E): the pairwise count took most of a
    1,000-lot lineage's page."""
    position = {key: index for index, key in enumerate(lower)}
    ends = sorted(
        (index, position[neighbour])
        for index, key in enumerate(upper)
        for neighbour in slots[key].down
        if neighbour in position
    )
    tree = [0] * (len(lower) + 1)

    def inserted_up_to(bottom: int) -> int:
        total, at = 0, bottom + 1
        while at > 0:
            total += tree[at]
            at -= at & -at
        return total

    count = inserted = start = 0
    while start < len(ends):
        top = ends[start][0]
        end = start
        while end < len(ends) and ends[end][0] == top:
            end += 1
        for _, bottom in ends[start:end]:  # edges of earlier tops that end below this one
            count += inserted - inserted_up_to(bottom)
        for _, bottom in ends[start:end]:
            at = bottom + 1
            while at < len(tree):
                tree[at] += 1
                at += at & -at
            inserted += 1
        start = end
    return count


def _total_crossings(order: Sequence[Sequence[str]], slots: Mapping[str, _Slot]) -> int:
    return sum(_crossings(order[i + 1], order[i], slots) for i in range(len(order) - 1))


def _barycenter_order(
    layer: Sequence[str], neighbours_of: Mapping[str, Sequence[str]], fixed: Sequence[str]
) -> list[str]:
    """`layer` sorted by the mean position of each slot's neighbours in the `fixed` layer; a slot
    with none keeps its place (its current index), ties keep the current order."""
    position = {key: index for index, key in enumerate(fixed)}

    def weight(item: tuple[int, str]) -> tuple[float, int]:
        index, key = item
        places = [position[n] for n in neighbours_of[key] if n in position]
        if not places:
            return (index * len(fixed) / max(len(layer), 1), index)
        return (sum(places) / len(places), index)

    return [key for _, key in sorted(enumerate(layer), key=weight)]


def _order(layered: list[list[str]], slots: Mapping[str, _Slot], sweeps: int) -> tuple[list[list[str]], int]:
    ups = {key: slot.up for key, slot in slots.items()}
    downs = {key: slot.down for key, slot in slots.items()}
    order = [list(layer) for layer in layered]
    for index in range(1, len(order)):
        order[index] = _barycenter_order(order[index], downs, order[index - 1])
    best = [list(layer) for layer in order]
    best_count = _total_crossings(best, slots)
    for sweep in range(sweeps):
        if best_count == 0:
            break
        if sweep % 2 == 0:
            for index in range(len(order) - 2, -1, -1):
                order[index] = _barycenter_order(order[index], ups, order[index + 1])
        else:
            for index in range(1, len(order)):
                order[index] = _barycenter_order(order[index], downs, order[index - 1])
        count = _total_crossings(order, slots)
        if count < best_count:
            best, best_count = [list(layer) for layer in order], count
    return best, best_count


def _place(
    layer: Sequence[str], slots: Mapping[str, _Slot], desired: Mapping[str, float], gap: float
) -> None:
    """Tops for `layer` (in its order, `gap` apart) as near as the gaps allow to `desired` centres:
    the mean of a placement pushed down from the first slot and one pushed up from the last."""
    down: list[float] = []
    for index, key in enumerate(layer):
        want = desired[key] - slots[key].height / 2
        if index:
            previous = layer[index - 1]
            want = max(want, down[-1] + slots[previous].height + gap)
        down.append(want)
    up: list[float] = [0.0] * len(layer)
    for index in range(len(layer) - 1, -1, -1):
        key = layer[index]
        want = desired[key] - slots[key].height / 2
        if index < len(layer) - 1:
            want = min(want, up[index + 1] - slots[key].height - gap)
        up[index] = want
    for index, key in enumerate(layer):
        slots[key].y = (down[index] + up[index]) / 2


def _centre(key: str, neighbours: Sequence[str], slots: Mapping[str, _Slot]) -> float:
    """The mean centre of `neighbours`, or the slot's own centre when it has none."""
    if not neighbours:
        return slots[key].y + slots[key].height / 2
    return sum(slots[n].y + slots[n].height / 2 for n in neighbours) / len(neighbours)


def _ports(count: int, top: float, height: float) -> list[float]:
    return [top + height * (index + 1) / (count + 1) for index in range(count)]


def layered_layout(
    nodes: Sequence[GraphNode],
    edges: Sequence[GraphEdge],
    spacing: Spacing | None = None,
    *,
    sweeps: int = 12,
    lot_first: bool = False,
) -> Layout:
    """Boxes and routed edges for a lineage graph; see the module docstring for the method."""
    spacing = spacing or Spacing()
    known = {node.node_id: node for node in nodes}
    if len(known) != len(nodes):
        raise LayoutError("two nodes share an id")
    for edge in edges:
        if edge.source not in known or edge.target not in known:
            raise LayoutError(f"edge {edge.source} -> {edge.target} names a node not in the graph")
    ordered_nodes = sorted(nodes, key=lambda node: node.node_id)
    ordered_edges = sorted(edges, key=lambda edge: (edge.source, edge.target, edge.weight))
    layer_of = _layers(ordered_nodes, ordered_edges)
    longest = max((len(line) for node in nodes for line in node.lines), default=0)
    node_width = min(
        spacing.max_node_width,
        max(spacing.min_node_width, longest * spacing.char_width + 2 * spacing.node_padding),
    )

    slots: dict[str, _Slot] = {}
    for node in ordered_nodes:
        height = len(node.lines) * spacing.line_height + 2 * spacing.node_padding
        slots[node.node_id] = _Slot(node.node_id, layer_of[node.node_id], height, True, [], [])
    chains: list[list[str]] = []
    """Per edge, in `ordered_edges` order: the slots it runs through, source first."""
    for index, edge in enumerate(ordered_edges):
        chain = [edge.source]
        for layer in range(layer_of[edge.source] - 1, layer_of[edge.target], -1):
            key = f"\0{index}:{layer}"
            slots[key] = _Slot(key, layer, spacing.through_height, False, [], [])
            chain.append(key)
        chain.append(edge.target)
        for upper, lower in itertools.pairwise(chain):
            slots[upper].down.append(lower)
            slots[lower].up.append(upper)
        chains.append(chain)

    depth = max(layer_of.values(), default=0)
    layered: list[list[str]] = [[] for _ in range(depth + 1)]
    for key in sorted(slots, key=lambda k: (slots[k].layer, not slots[k].real, k)):
        layered[slots[key].layer].append(key)
    order, crossings = _order(layered, slots, sweeps)

    gap = spacing.row_gap
    first = order[0] if order else []
    _place(first, slots, {key: 0.0 for key in first}, gap)
    for index in range(1, len(order)):
        desired = {key: _centre(key, slots[key].down, slots) for key in order[index]}
        _place(order[index], slots, desired, gap)
    for index in range(len(order) - 2, -1, -1):
        desired = {key: _centre(key, slots[key].up, slots) for key in order[index]}
        _place(order[index], slots, desired, gap)

    if lot_first:
        # every layer from the top, in its order: the lot top left, what it was made from fanning out
        # to the right and down, so the top of the picture (what a phone shows) holds the lot
        for keys in order:
            stacked = 0.0
            for key in keys:
                slots[key].y = stacked
                stacked += slots[key].height + gap

    top = min((slot.y for slot in slots.values()), default=0.0)
    bottom = max((slot.y + slot.height for slot in slots.values()), default=0.0)
    shift = spacing.margin - top

    def x_of(layer: int) -> float:
        column = layer if lot_first else depth - layer
        return spacing.margin + column * (node_width + spacing.layer_gap)

    boxes = tuple(
        Box(
            node.node_id,
            x_of(layer_of[node.node_id]),
            slots[node.node_id].y + shift,
            node_width,
            slots[node.node_id].height,
            layer_of[node.node_id],
            node.group,
            node.lines,
        )
        for node in ordered_nodes
    )
    box_of = {box.node_id: box for box in boxes}

    # Ports: a box's edges leave (and arrive) spread over its side, in the order of where they go.
    def far_y(chain: list[str], index: int) -> float:
        return slots[chain[index]].y + slots[chain[index]].height / 2

    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    leaving: dict[str, list[int]] = defaultdict(list)
    arriving: dict[str, list[int]] = defaultdict(list)
    for index, chain in enumerate(chains):
        leaving[chain[0]].append(index)
        arriving[chain[-1]].append(index)
    for node_id, indices in leaving.items():
        indices.sort(key=lambda i: (far_y(chains[i], 1), i))
        box = box_of[node_id]
        for i, y in zip(indices, _ports(len(indices), box.y, box.height), strict=True):
            out_port[i] = y
    for node_id, indices in arriving.items():
        indices.sort(key=lambda i: (far_y(chains[i], -2), i))
        box = box_of[node_id]
        for i, y in zip(indices, _ports(len(indices), box.y, box.height), strict=True):
            in_port[i] = y

    # the side an edge leaves a box by, and the side it arrives by, as offsets from the box's x
    leave, arrive = (0.0, node_width) if lot_first else (node_width, 0.0)
    routes: list[Route] = []
    for index, (edge, chain) in enumerate(zip(ordered_edges, chains, strict=True)):
        source = box_of[edge.source]
        points: list[Point] = [(source.x + leave, out_port[index])]
        for key in chain[1:-1]:
            slot = slots[key]
            y = slot.y + shift + slot.height / 2
            points += [(x_of(slot.layer) + arrive, y), (x_of(slot.layer) + leave, y)]
        points.append((box_of[edge.target].x + arrive, in_port[index]))
        routes.append(Route(edge.source, edge.target, edge.weight, tuple(points)))

    width = 2 * spacing.margin + (depth + 1) * node_width + depth * spacing.layer_gap
    height = (bottom - top) + 2 * spacing.margin
    return Layout(width, height, boxes, tuple(routes), depth + 1, crossings)

"""The lineage picture's layout: boxes never overlap, every edge is drawn between its own boxes and
flows towards the lot, the same graph always gives the same picture, and 60 lots are quick."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from api.pages.lineage_layout import GraphEdge, GraphNode, Layout, LayoutError, layered_layout


def node(node_id: str, group: str | None = None) -> GraphNode:
    return GraphNode(node_id, (node_id, "1,000 kg"), group)


def staged_lineage(
    trucks: int = 48, per_merge: int = 8, per_blend: int = 3
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Truck lots merged in stages into one lot (the shape a smelter's feed has), plus two edges
    that skip layers."""
    nodes = [node(f"T{i:02d}", f"SITE-{i % 3}") for i in range(trucks)]
    edges: list[GraphEdge] = []
    merges = [f"M{i}" for i in range(trucks // per_merge)]
    for i, merge in enumerate(merges):
        nodes.append(node(merge))
        edges += [GraphEdge(f"T{t:02d}", merge, 500) for t in range(i * per_merge, (i + 1) * per_merge)]
    blends = [f"B{i}" for i in range(len(merges) // per_blend)]
    for i, blend in enumerate(blends):
        nodes.append(node(blend))
        edges += [GraphEdge(merge, blend, 4_000) for merge in merges[i * per_blend : (i + 1) * per_blend]]
    nodes += [node("X"), node("LOT")]
    edges += [GraphEdge(blend, "X", 12_000) for blend in blends]
    edges += [GraphEdge("X", "LOT", 24_000), GraphEdge("T00", "LOT", 500), GraphEdge("T47", blends[0], 500)]
    return nodes, edges


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def assert_sound(layout: Layout, nodes: list[GraphNode], edges: list[GraphEdge]) -> None:
    boxes = {box.node_id: box for box in layout.boxes}
    assert set(boxes) == {n.node_id for n in nodes}
    for a, b in itertools.combinations(layout.boxes, 2):
        assert not overlap((a.x, a.y, a.width, a.height), (b.x, b.y, b.width, b.height)), (a, b)
    for box in layout.boxes:
        assert box.x >= 0
        assert box.y >= 0
        assert box.x + box.width <= layout.width
        assert box.y + box.height <= layout.height
    drawn = sorted((r.source, r.target, r.weight) for r in layout.routes)
    assert drawn == sorted((e.source, e.target, e.weight) for e in edges)
    for route in layout.routes:
        source, target = boxes[route.source], boxes[route.target]
        (x0, y0), (x1, y1) = route.points[0], route.points[-1]
        assert x0 == source.x + source.width
        assert source.y < y0 < source.y + source.height
        assert x1 == target.x
        assert target.y < y1 < target.y + target.height
        xs = [x for x, _ in route.points]
        assert xs == sorted(xs), "edges run left to right, origins to the lot"
        assert source.layer > target.layer


def test_sixty_lots_in_stages_are_laid_out_without_overlap_and_quickly() -> None:
    nodes, edges = staged_lineage()
    assert len(nodes) >= 58

    started = time.perf_counter()
    layout = layered_layout(nodes, edges)
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0
    assert_sound(layout, nodes, edges)
    assert layout.layers == 5
    lot = next(box for box in layout.boxes if box.node_id == "LOT")
    assert lot.x == max(box.x for box in layout.boxes), "the lot is the rightmost column"
    assert {box.x for box in layout.boxes if box.node_id.startswith("T")} == {
        min(box.x for box in layout.boxes)
    }, "the origins share the leftmost column"


def test_boxes_keep_their_size_however_large_the_graph_so_labels_stay_readable() -> None:
    small = layered_layout([node("A"), node("B")], [GraphEdge("A", "B", 1)])
    nodes, edges = staged_lineage(trucks=96, per_merge=8, per_blend=4)
    large = layered_layout(nodes, edges)

    assert {(b.width, b.height) for b in large.boxes} == {(small.boxes[0].width, small.boxes[0].height)}
    assert large.height > 96 * small.boxes[0].height


def test_the_same_graph_in_any_order_gives_the_same_picture() -> None:
    nodes, edges = staged_lineage()
    first = layered_layout(nodes, edges)
    shuffler = random.Random(7)
    for _ in range(3):
        shuffled_nodes, shuffled_edges = nodes[:], edges[:]
        shuffler.shuffle(shuffled_nodes)
        shuffler.shuffle(shuffled_edges)
        assert layered_layout(shuffled_nodes, shuffled_edges) == first


def test_barycenter_ordering_untangles_a_crossing() -> None:
    # A and B feed Q and P crosswise; their ids alone would order them so that the edges cross.
    nodes = [node(n) for n in ("A", "B", "P", "Q", "LOT")]
    edges = [
        GraphEdge("A", "Q", 1),
        GraphEdge("B", "P", 1),
        GraphEdge("P", "LOT", 1),
        GraphEdge("Q", "LOT", 1),
    ]

    layout = layered_layout(nodes, edges)

    assert layout.crossings == 0
    y = {box.node_id: box.y for box in layout.boxes}
    assert (y["A"] < y["B"]) == (y["Q"] < y["P"])


def test_an_edge_that_skips_layers_is_routed_through_each_layer_between_the_boxes() -> None:
    nodes, edges = staged_lineage()
    layout = layered_layout(nodes, edges)

    skip = next(r for r in layout.routes if (r.source, r.target) == ("T00", "LOT"))
    assert len(skip.points) == 2 + 2 * 3, "two points for each of the three layers it passes"
    boxes = layout.boxes
    for x, y in skip.points[1:-1]:
        assert not any(b.x <= x <= b.x + b.width and b.y <= y <= b.y + b.height for b in boxes)
    assert skip.path.startswith("M")
    assert skip.path.count("C") + skip.path.count("L") == len(skip.points) - 1


def test_a_single_lot_is_one_box_and_no_edges() -> None:
    layout = layered_layout([node("ONLY")], [])

    assert [box.node_id for box in layout.boxes] == ["ONLY"]
    assert layout.routes == ()
    assert layout.layers == 1


def test_a_graph_that_is_not_a_lineage_is_refused() -> None:
    with pytest.raises(LayoutError, match="cycle"):
        layered_layout([node("A"), node("B")], [GraphEdge("A", "B", 1), GraphEdge("B", "A", 1)])
    with pytest.raises(LayoutError, match="not in the graph"):
        layered_layout([node("A")], [GraphEdge("A", "GHOST", 1)])

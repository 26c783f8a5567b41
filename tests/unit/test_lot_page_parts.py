"""The lot page's newer parts in plain Python: the lot-first layout, naming parties, the origin map."""

from __future__ import annotations

from fractions import Fraction

from api.pages.directory import Directory, Parties, Place, parse_directory
from api.pages.lineage_layout import GraphEdge, GraphNode, layered_layout
from api.pages.origin_map import FaceShare, origin_map
from provenance.domain.credentials import Credential
from provenance.domain.devices import DeviceFact
from provenance.domain.trace import Coordinates

WHERE = Coordinates(1, "0x" + "b1" * 32, "0x" + "a1" * 32, 0, 0)


def test_lot_first_puts_the_lot_top_left_and_edges_run_from_left_sides_to_right_sides() -> None:
    nodes = [GraphNode(f"T{i}", (f"T{i}", "1 t"), "PIT") for i in range(20)] + [
        GraphNode("LOT", ("LOT", "20 t"))
    ]
    edges = [GraphEdge(f"T{i}", "LOT", 1) for i in range(20)]

    layout = layered_layout(nodes, edges, lot_first=True)

    lot = next(box for box in layout.boxes if box.node_id == "LOT")
    assert lot.x == min(box.x for box in layout.boxes)
    assert lot.y == min(box.y for box in layout.boxes)
    boxes = {box.node_id: box for box in layout.boxes}
    for route in layout.routes:
        assert route.points[0][0] == boxes[route.source].x
        assert route.points[-1][0] == boxes[route.target].x + boxes[route.target].width


def test_parties_are_named_by_device_then_credential_else_unknown() -> None:
    device = DeviceFact("0x" + "d" * 40, "SH2", "truck-scale", "0x" + "a" * 40, True, WHERE)
    parties = Parties(
        [
            Credential("1", "lab-kigam", "0x" + "B" * 40, "dev:lab", "2030-01-01"),
            Credential("2", "lab-new", "0x" + "b" * 40, "dev:lab"),
        ],
        {device.device: device},
        {"0x" + "b" * 40: "KIGAM"},
    )

    lab = parties.of("0x" + "b" * 40)
    assert (lab.kind, lab.name, lab.organisation) == ("account", "lab-new", "KIGAM"), (
        "an active credential first"
    )
    scale = parties.of("0x" + "D" * 40)
    assert (scale.kind, scale.device_kind, scale.device_site) == ("device", "truck-scale", "SH2")
    assert parties.of("0x" + "e" * 40).kind == "unknown"


def test_a_malformed_directory_is_read_as_far_as_it_goes() -> None:
    directory = parse_directory(
        {
            "sites": {
                "A": {"lat": 91, "lon": 0},
                "B": {"lat": 37.2, "lon": 129.0, "faces": {"F1": "x"}},
                "C": 3,
            }
        }
    )

    assert directory.place("A", None) is None, "latitude beyond 90"
    assert directory.place("B", "F1") == Place(37.2, 129.0), "a face without a place is at its site's"
    assert parse_directory([1, 2]) == Directory()


def test_the_map_draws_placed_faces_merging_those_at_one_place_and_lists_the_rest() -> None:
    directory = parse_directory(
        {"sites": {"A": {"lat": 37.20, "lon": 129.00, "faces": {"F1": {"lat": 37.21, "lon": 129.01}}}}}
    )
    shares = [
        FaceShare("A", "F1", Fraction(1, 2), Fraction(50), 2),
        FaceShare("A", "F2", Fraction(1, 4), Fraction(25), 1),
        FaceShare("A", "F3", Fraction(1, 8), Fraction(25, 2), 1),
        FaceShare("Z", "F1", Fraction(1, 8), Fraction(25, 2), 1),
    ]

    drawn = origin_map(shares, ["50.00", "25.00", "12.50", "12.50"], directory, {"A": "#4e79a7"})

    assert drawn is not None
    assert [(p.face, p.percent, p.lots) for p in drawn.points] == [("F1", "50.00", 2), (None, "37.50", 2)]
    assert [(share.site, percent) for share, percent in drawn.unplaced] == [("Z", "12.50")]
    for point in drawn.points:
        assert 0 <= point.x <= drawn.width
        assert 0 <= point.y <= drawn.height
    assert drawn.scale_px <= drawn.width
    assert origin_map(shares[3:], ["100.00"], directory, {}) is None

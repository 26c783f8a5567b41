"""The EPCIS 2.0 mapping from plain facts: event types, bizSteps and quantities; the CBV 2.0 event
hash's properties (GS1's tool recomputes it in test_epcis_hash_tool.py); and every document valid
under GS1's official schema."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from provenance.domain.trace import Coordinates
from provenance.epcis.export import (
    Assayed,
    Chain,
    CustodyStep,
    Registered,
    Transformed,
    document,
    event_hash,
    events_of,
    lot_uri,
    pre_hash,
)
from tests.epcis_schema import DATA, schema_errors

CHAIN = Chain(131277322940537, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
BLOCK_TIME = 1_700_000_000
SELLER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BUYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def at(block: int, log_index: int = 0) -> Coordinates:
    return Coordinates(block, "0x" + "ab" * 32, "0x" + f"{block:064x}", 0, log_index)


def history() -> list[Any]:
    return [
        Registered("A1", "PIT-A", 1_000, at(10)),
        Registered("A 2/x", "PIT-A", 2_500, at(10, 1)),
        Transformed(7, "merge", "PIT-A", (("A1", 1_000), ("A 2/x", 2_500)), (("M", 3_400),), at(11)),
        CustodyStep("M", "offered", SELLER, BUYER, at(12)),
        CustodyStep("M", "accepted", SELLER, BUYER, at(13)),
        Assayed(
            "M",
            "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            8_800,
            "FireAssay",
            "0x" + "cd" * 32,
            BLOCK_TIME + 60,
            at(14),
        ),
    ]


def build(facts: list[Any]) -> dict[str, Any]:
    events = events_of(facts, CHAIN, lambda block: BLOCK_TIME + 12 * block)
    return document(events, BLOCK_TIME + 1_000)


def test_each_fact_maps_to_its_epcis_event_with_quantities_in_kilograms() -> None:
    registered, _, transformed, offered, accepted, assayed = build(history())["epcisBody"]["eventList"]

    assert (registered["type"], registered["action"], registered["bizStep"]) == (
        "ObjectEvent",
        "ADD",
        "commissioning",
    )
    assert registered["quantityList"] == [{"epcClass": lot_uri("A1"), "quantity": 1, "uom": "KGM"}]
    assert registered["bizLocation"] == {"id": "http://127.0.0.1:8000/id/sites/PIT-A"}
    assert registered["eventTime"] == "2023-11-14T22:15:20.000Z"

    assert transformed["type"] == "TransformationEvent"
    assert transformed["inputQuantityList"] == [
        {"epcClass": "http://127.0.0.1:8000/lots/A1", "quantity": 1, "uom": "KGM"},
        {"epcClass": "http://127.0.0.1:8000/lots/A%202%2Fx", "quantity": 2.5, "uom": "KGM"},
    ]
    assert transformed["outputQuantityList"] == [
        {"epcClass": "http://127.0.0.1:8000/lots/M", "quantity": 3.4, "uom": "KGM"}
    ]

    for event, step in ((offered, "shipping"), (accepted, "receiving")):
        assert (event["type"], event["action"], event["bizStep"]) == ("ObjectEvent", "OBSERVE", step)
        assert event["sourceList"] == [
            {"type": "possessing_party", "source": f"http://127.0.0.1:8000/id/accounts/{SELLER}"}
        ]
        assert event["destinationList"] == [
            {"type": "possessing_party", "destination": f"http://127.0.0.1:8000/id/accounts/{BUYER}"}
        ]

    assert assayed["bizStep"] == "inspecting"
    [sensor] = assayed["sensorElementList"]
    assert sensor["sensorReport"] == [{"type": "Dimensionless", "value": 8_800, "uom": "59"}]
    assert sensor["sensorMetadata"]["time"] == "2023-11-14T22:14:20.000Z"

    assert assayed["mp:chain"] == {
        "mp:chainId": CHAIN.chain_id,
        "mp:registry": CHAIN.registry,
        "mp:txHash": "0x" + f"{14:064x}",
        "mp:blockNumber": 14,
        "mp:logIndex": 0,
    }


def test_every_document_is_valid_under_gs1s_schema() -> None:
    assert schema_errors(build(history())) == []
    assert schema_errors(build([])) == []
    for fact in history():
        assert schema_errors(build([fact])) == []


def test_the_schema_validator_accepts_gs1s_own_examples_and_refuses_a_broken_event() -> None:
    for name in ("Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.4-TransformationEvent.jsonld"):
        assert schema_errors(json.loads((DATA / name).read_text())) == []
    broken = build(history()[:1])
    del broken["epcisBody"]["eventList"][0]["action"]
    broken["epcisBody"]["eventList"][0]["bizStep"] = "urn:epcglobal:cbv:bizstep:made-up"
    assert len(schema_errors(broken)) >= 1


def test_each_event_id_is_the_sha256_of_its_pre_hash_and_ignores_key_order_and_the_id_itself() -> None:
    for event in build(history())["epcisBody"]["eventList"]:
        digest = hashlib.sha256(pre_hash(event).encode()).hexdigest()
        assert event["eventID"] == f"ni:///sha-256;{digest}?ver=CBV2.0"
        shuffled = dict(reversed(list(event.items())))
        shuffled["eventID"] = "urn:uuid:ignored"
        assert event_hash(shuffled) == event["eventID"]
    again = build(history())["epcisBody"]["eventList"]
    ids = [event["eventID"] for event in again]
    assert ids == [event["eventID"] for event in build(history())["epcisBody"]["eventList"]]
    assert len(set(ids)) == len(ids)


def test_the_event_id_changes_with_any_hashed_fact() -> None:
    [event] = build(history()[:1])["epcisBody"]["eventList"]
    for change in (
        {"quantityList": [{"epcClass": lot_uri("A1"), "quantity": 1.001, "uom": "KGM"}]},
        {"eventTime": "2023-11-14T22:15:21.000Z"},
        {"mp:chain": event["mp:chain"] | {"mp:logIndex": 1}},
    ):
        assert event_hash(event | change) != event["eventID"]


def test_the_pre_hash_of_a_registration_follows_the_canonical_property_order() -> None:
    [event] = build(history()[:1])["epcisBody"]["eventList"]
    ns = "{urn:mineral-provenance:epcis:}"
    assert pre_hash(event) == (
        "eventType=ObjectEvent"
        "eventTime=2023-11-14T22:15:20.000Z"
        "eventTimeZoneOffset=+00:00"
        "quantityListquantityElementepcClass=http://127.0.0.1:8000/lots/A1quantity=1uom=KGM"
        "action=ADD"
        "bizStep=https://ref.gs1.org/cbv/BizStep-commissioning"
        "bizLocationid=http://127.0.0.1:8000/id/sites/PIT-A"
        f"{ns}chain"
        f"{ns}blockNumber=10"
        f"{ns}chainId={CHAIN.chain_id}"
        f"{ns}logIndex=0"
        f"{ns}registry={CHAIN.registry}"
        f"{ns}txHash=0x{10:064x}"
    )


def test_sensor_elements_hold_a_report_and_a_time_no_later_than_the_event() -> None:
    """GS1's mandatory requirements M121 (a sensorElement holds one or more sensorReports) and M122
    (a sensorMetadata time is at or before the eventTime, with a time zone), also for an assay the
    lab dated after the block that recorded it (the registry accepts one)."""
    late = Assayed("M", "0x90F79bf6EB2c4f870365E785982E1f101E93b906", 8_800, "FireAssay", "0x" + "cd" * 32,
                   BLOCK_TIME + 12 * 15 + 600, at(15))  # fmt: skip
    events = build([*history(), late])["epcisBody"]["eventList"]
    assays = [event for event in events if event["bizStep"] == "inspecting"]
    assert len(assays) == 2
    for event in assays:
        event_time = datetime.datetime.fromisoformat(event["eventTime"])
        for element in event["sensorElementList"]:
            assert len(element["sensorReport"]) >= 1
            sensed = element["sensorMetadata"].get("time")
            if sensed is not None:
                moment = datetime.datetime.fromisoformat(sensed)
                assert moment.tzinfo is not None
                assert moment <= event_time
    on_time, dated_late = assays
    assert on_time["sensorElementList"][0]["sensorMetadata"]["time"] == "2023-11-14T22:14:20.000Z"
    assert "time" not in dated_late["sensorElementList"][0]["sensorMetadata"]
    assert dated_late["mp:assayedAt"] == "2023-11-14T22:26:20.000Z"
    assert schema_errors(build([late])) == []

"""EPCIS capture without a server: what each event of our own export becomes (the JSON API's payload
for the same fact, written out here from the fact, not from the mapping), the refusals naming the
event and the field, GS1's example documents, and the limits."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from provenance.domain.operations import OperationKind
from provenance.domain.trace import Coordinates
from provenance.epcis.capture import (
    CAPTURE_LIMIT,
    CaptureLimitExceededException,
    CaptureRefused,
    IdentifierReaders,
    plan_capture,
    readers_of,
)
from provenance.epcis.export import (
    Assayed,
    Chain,
    CustodyStep,
    LotRecord,
    Names,
    Registered,
    Transformed,
    account_uri,
    document,
    events_of,
    lot_uri,
    parse_account_uri,
    parse_lot_uri,
    parse_method_uri,
    parse_site_uri,
    site_uri,
)
from provenance.epcis.ids import scheme_of

EXAMPLES = Path(__file__).parents[1] / "data" / "epcis" / "examples"
CHAIN = Chain(131277322940537, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
BLOCK_TIME = 1_700_000_000
SELLER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BUYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
LAB = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
HASH_A, HASH_T, HASH_M, CERT = ("0x" + digit * 64 for digit in "abcd")
SIGNATURE = "0x" + "1b" * 65


def at(block: int, log_index: int = 0) -> Coordinates:
    return Coordinates(block, "0x" + "ab" * 32, "0x" + f"{block:064x}", 0, log_index)


def history() -> list[Any]:
    return [
        Registered("A1", "PIT-A", 1_500, at(10), LotRecord("COAL", 12_345, HASH_A, "F3", 1_699_990_000)),
        Transformed(
            7,
            "split",
            "PIT-A",
            (("A1", 1_500),),
            (("M", 1_000), ("N", 400)),
            at(11),
            HASH_T,
            (LotRecord("COAL", 12_000, HASH_M), LotRecord("COAL", 11_000, HASH_M)),
        ),
        CustodyStep("M", "offered", SELLER, BUYER, at(12)),
        CustodyStep("M", "accepted", SELLER, BUYER, at(13)),
        Assayed("M", LAB, 8_800, "FireAssay", CERT, BLOCK_TIME + 60, at(14), SIGNATURE),
    ]


def exported() -> dict[str, Any]:
    events = events_of(history(), CHAIN, lambda block: BLOCK_TIME + 12 * block)
    return document(events, BLOCK_TIME + 1_000)


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_each_exported_event_becomes_the_json_apis_write_for_its_fact() -> None:
    plan = plan_capture(body(exported()), "rollback")
    assert plan.refused == ()
    assert [(write.index, write.kind, write.payload) for write in plan.writes] == [
        (
            0,
            OperationKind.REGISTER_LOTS,
            {
                "site": "PIT-A",
                "lots": [
                    {
                        "lot_id": "A1",
                        "face": "F3",
                        "commodity": "COAL",
                        "mass_g": 1_500,
                        "grade_ppm": 12_345,
                        "extracted_at": 1_699_990_000,
                        "record_hash": HASH_A,
                    }
                ],
            },
        ),
        (
            1,
            OperationKind.TRANSFORM,
            {
                "kind": "split",
                "site": "PIT-A",
                "inputs": [{"lot_id": "A1", "mass_g": 1_500}],
                "outputs": [
                    {
                        "lot_id": "M",
                        "commodity": "COAL",
                        "mass_g": 1_000,
                        "grade_ppm": 12_000,
                        "record_hash": HASH_M,
                    },
                    {
                        "lot_id": "N",
                        "commodity": "COAL",
                        "mass_g": 400,
                        "grade_ppm": 11_000,
                        "record_hash": HASH_M,
                    },
                ],
                "loss_g": 100,
                "record_hash": HASH_T,
            },
        ),
        (2, OperationKind.HAND_OVER, {"lot_ids": ["M"], "to": BUYER}),
        (3, OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["M"]}),
        (
            4,
            OperationKind.SUBMIT_ASSAY,
            {
                "assay": {
                    "lot_id": "M",
                    "grade_ppm": 8_800,
                    "method": "FireAssay",
                    "certificate_hash": CERT,
                    "assayed_at": BLOCK_TIME + 60,
                },
                "signature": SIGNATURE,
            },
        ),
    ]
    assert [write.sender for write in plan.writes] == [None, None, SELLER, BUYER, None]
    assert plan.writes[0].registrar_of == "PIT-A"
    assert plan.writes[1].role == "PROCESSOR_ROLE"
    assert plan.writes[4].lab == LAB


def test_the_identifier_parsers_invert_the_identifiers() -> None:
    for label in ("A1", "A 2/x", "lot:with:colons", "ü"):
        assert parse_lot_uri(lot_uri(label)) == label
        assert parse_site_uri(site_uri(label)) == label
        assert parse_lot_uri(site_uri(label)) is None
    assert parse_account_uri(account_uri(BUYER)) == BUYER
    assert parse_method_uri("urn:epc:id:sgtin:1.2.3") is None
    assert parse_lot_uri(lot_uri("")) is None


def test_quantities_in_tonnes_and_grams_are_the_same_mass() -> None:
    doc = exported()
    events = doc["epcisBody"]["eventList"]
    events[0]["quantityList"][0] |= {"quantity": 0.0015, "uom": "TNE"}
    assert plan_capture(body(doc), "rollback").writes[0].payload["lots"][0]["mass_g"] == 1_500
    events[0]["quantityList"][0] |= {"quantity": 1500, "uom": "GRM"}
    assert plan_capture(body(doc), "rollback").writes[0].payload["lots"][0]["mass_g"] == 1_500


def refusal(doc: dict[str, Any], index: int) -> CaptureRefused:
    plan = plan_capture(body(doc), "proceed")
    (refused,) = [error for error in plan.refused if error.index == index]
    return refused


CHANGES: list[tuple[str, int, Any, str]] = [
    # (what, event, change, the field named)
    (
        "a read point",
        0,
        lambda e: e.update(readPoint={"id": "urn:epc:id:sgln:0614141.07346.1234"}),
        "readPoint",
    ),
    (
        "instance-level EPCs",
        2,
        lambda e: e.update(epcList=["urn:epc:id:sgtin:0614141.107346.2017"]),
        "epcList",
    ),
    ("no record hash", 0, lambda e: e.pop("mp:recordHash"), "mp:recordHash"),
    ("no face", 0, lambda e: e.pop("mp:face"), "mp:face"),
    ("a mass in pounds", 0, lambda e: e["quantityList"][0].update(uom="LBR"), "quantityList[0].uom"),
    (
        "a fraction of a gram",
        0,
        lambda e: e["quantityList"][0].update(quantity=1.5004),
        "quantityList[0].quantity",
    ),
    (
        "a foreign lot",
        0,
        lambda e: e["quantityList"][0].update(epcClass="urn:epc:class:lgtin:4012345.012345.998877"),
        "quantityList[0].epcClass",
    ),
    (
        "a bizLocation not a site",
        0,
        lambda e: e.update(bizLocation={"id": "urn:epc:id:sgln:0614141.07346.0"}),
        "bizLocation.id",
    ),
    ("a grade out of range", 0, lambda e: e.update({"mp:gradePpm": 2_000_000}), "mp:gradePpm"),
    ("a foreign extension field", 0, lambda e: e.update({"example:myField": "x"}), "example:myField"),
    ("an unknown extension field of ours", 0, lambda e: e.update({"mp:colour": "black"}), "mp:colour"),
    (
        "outputs heavier than the inputs",
        1,
        lambda e: e["outputQuantityList"][0].update(quantity=2),
        "outputQuantityList",
    ),
    ("an output without its record", 1, lambda e: e["mp:outputs"].pop(), "mp:outputs"),
    (
        "an unknown transformation kind",
        1,
        lambda e: e.update({"mp:transformKind": "smelt"}),
        "mp:transformKind",
    ),
    (
        "a business transaction",
        2,
        lambda e: e.update(bizTransactionList=[{"type": "po", "bizTransaction": "urn:x:1"}]),
        "bizTransactionList",
    ),
    ("shipping with another disposition", 2, lambda e: e.update(disposition="in_progress"), "disposition"),
    ("shipping without a destination", 2, lambda e: e.pop("destinationList"), "destinationList"),
    (
        "shipping part of a lot",
        2,
        lambda e: e["quantityList"][0].update(quantity=1, uom="KGM"),
        "quantityList[0].quantity",
    ),
    (
        "receiving from an owning party",
        3,
        lambda e: e["sourceList"][0].update(type="owning_party"),
        "sourceList[0].type",
    ),
    ("an assay without the lab's signature", 4, lambda e: e.pop("mp:labSignature"), "mp:labSignature"),
    (
        "an assay in another unit",
        4,
        lambda e: e["sensorElementList"][0]["sensorReport"][0].update(uom="CEL"),
        "sensorElementList[0].sensorReport[0]",
    ),
    (
        "an assay by a device not a lab",
        4,
        lambda e: e["sensorElementList"][0]["sensorMetadata"].update(deviceID="urn:epc:id:giai:4000001.111"),
        "sensorElementList[0].sensorMetadata.deviceID",
    ),
    (
        "an error declaration",
        0,
        lambda e: e.update(
            errorDeclaration={"declarationTime": "2020-01-01T00:00:00Z", "reason": "incorrect_data"}
        ),
        "errorDeclaration",
    ),
    (
        "an event time without a zone (GS1's schema)",
        0,
        lambda e: e.update(eventTime="2020-01-01T00:00:00"),
        "eventTime",
    ),
]


@pytest.mark.parametrize(("what", "index", "change", "field"), CHANGES, ids=[case[0] for case in CHANGES])
def test_what_the_chain_cannot_record_is_refused_naming_the_event_and_the_field(
    what: str, index: int, change: Any, field: str
) -> None:
    doc = exported()
    event = doc["epcisBody"]["eventList"][index]
    change(event)
    refused = refusal(doc, index)
    assert refused.field == field, refused.detail
    assert refused.status == 400
    problem = refused.problem()
    assert problem["type"] == "epcisException:ValidationException"
    assert (problem["eventIndex"], problem["eventID"]) == (index, event["eventID"])
    assert f"event {index} ({event['eventID']}): {field}" in problem["detail"]


def test_rollback_refuses_the_document_at_its_first_refused_event_and_proceed_keeps_the_rest() -> None:
    doc = exported()
    doc["epcisBody"]["eventList"][2]["readPoint"] = {"id": "urn:epc:id:sgln:0614141.07346.1234"}
    plan = plan_capture(body(doc), "proceed")
    assert [write.index for write in plan.writes] == [0, 1, 3, 4]
    assert [error.index for error in plan.refused] == [2]


def test_a_query_document_and_a_single_event_are_captured_too() -> None:
    doc = exported()
    events = doc["epcisBody"]["eventList"]
    query_doc = copy.deepcopy(doc) | {
        "type": "EPCISQueryDocument",
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}
        },
    }
    assert len(plan_capture(body(query_doc), "rollback").writes) == 5
    single = {"@context": doc["@context"]} | events[2]
    (write,) = plan_capture(body(single), "rollback", single_event=True).writes
    assert write.kind is OperationKind.HAND_OVER


def test_another_prefix_for_our_namespace_is_the_same_field() -> None:
    text = json.dumps(exported()).replace('"mp:', '"ore:').replace('{"mp":', '{"ore":')
    assert len(plan_capture(text.encode(), "rollback").writes) == 5


def test_more_events_than_the_capture_limit_are_refused_before_anything_is_read() -> None:
    doc = exported()
    doc["epcisBody"]["eventList"] = doc["epcisBody"]["eventList"][2:3] * (CAPTURE_LIMIT + 1)
    with pytest.raises(CaptureLimitExceededException) as refused:
        plan_capture(body(doc), "rollback")
    assert refused.value.status == 413


def test_a_body_that_is_no_document_is_refused_naming_why() -> None:
    for text, field in ((b"{", "body"), (b"[]", "body"), (b'{"type": "Foo"}', "type")):
        with pytest.raises(CaptureRefused) as refused:
            plan_capture(text, "rollback")
        assert refused.value.field == field


GS1_EXAMPLES: dict[str, list[tuple[int, str]]] = {
    # every example document of the standard: the events refused, and the field named; none is
    # captured (each uses instance-level EPCs, read points, event types or error declarations this
    # registry has no counterpart for, and none carries a lot's record: mp:recordHash, ...)
    "AssociationEvent__AssociationEvent-a.jsonld": [(0, "type")],
    "AssociationEvent__AssociationEvent-b.jsonld": [(0, "type")],
    "AssociationEvent__AssociationEvent-c.jsonld": [(0, "type")],
    "AssociationEvent__AssociationEvent-d.jsonld": [(0, "type")],
    "AssociationEvent__AssociationEvent-e.jsonld": [(0, "type")],
    "AssociationEvent__AssociationEvent-f.jsonld": [(0, "type")],
    "AssociationEvent__AssociationEvent-g.jsonld": [(0, "errorDeclaration")],
    "AssociationEvent__AssociationEvent-h.jsonld": [(0, "type")],
    "EPCISQueryDocument.jsonld": [(0, "epcList"), (1, "epcList")],
    "Example-TransactionEvents-2020_07_03y.jsonld": [(0, "type"), (1, "type")],
    "Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld": [(0, "type")],
    "Example_9.6.1-ObjectEvent-with-pseudo-SBDH-headers.jsonld": [(0, "epcList"), (1, "epcList")],
    "Example_9.6.1-ObjectEvent.jsonld": [(0, "epcList"), (1, "epcList")],
    "Example_9.6.1-with-comment.jsonld": [(0, "epcList"), (1, "epcList")],
    "Example_9.6.2-ObjectEvent.jsonld": [(0, "readPoint")],
    "Example_9.6.3-AggregationEvent.jsonld": [(0, "type")],
    "Example_9.6.4-TransformationEvent.jsonld": [(0, "inputEPCList")],
    "PersistentDisposition-example.jsonld": [(0, "epcList"), (1, "epcList")],
    "WithDigitalLinkID__Example_9.6.1-ObjectEventWithDigitalLink.jsonld": [(0, "epcList"), (1, "epcList")],
    "WithDigitalLinkID__Example_9.6.2-ObjectEventWithDigitalLink.jsonld": [(0, "readPoint")],
    "WithDigitalLinkID__Example_9.6.3-AggregationEventWithDigitalLink.jsonld": [(0, "type")],
    "WithDigitalLinkID__Example_9.6.4-TransformationEventWithDigitalLink.jsonld": [(0, "inputEPCList")],
    "WithErrorDeclaration__ErrorDeclarationAndCorrectiveEvent.jsonld": [
        (0, "errorDeclaration"),
        (1, "inputEPCList"),
    ],
    "WithErrorDeclaration__Example_9.6.1-ObjectEvent-with-error-declaration.jsonld": [
        (0, "errorDeclaration"),
        (1, "epcList"),
    ],
    "WithFullCombinationOfFields__aggregation_event_all_possible_fields.jsonld": [(0, "errorDeclaration")],
    "WithFullCombinationOfFields__association_event_all_possible_fields.jsonld": [(0, "errorDeclaration")],
    "WithFullCombinationOfFields__object_event_all_possible_fields.jsonld": [(0, "errorDeclaration")],
    "WithFullCombinationOfFields__transaction_event_all_possible_fields.jsonld": [(0, "errorDeclaration")],
    "WithFullCombinationOfFields__transformation_event_all_possible_fields.jsonld": [(0, "errorDeclaration")],
    "WithSensorData__SensorDataExample1.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample10.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample11.jsonld": [(0, "type")],
    "WithSensorData__SensorDataExample12.jsonld": [(0, "errorDeclaration")],
    "WithSensorData__SensorDataExample13.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample14.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample15.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample16.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample17.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample1b.jsonld": [(0, "readPoint")],
    "WithSensorData__SensorDataExample2.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample3.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample4.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample5.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample6.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample7.jsonld": [(0, "epcList")],
    "WithSensorData__SensorDataExample8.jsonld": [(0, "type")],
    "WithSensorData__SensorDataExample9.jsonld": [(0, "epcList")],
}


def test_every_gs1_example_document_is_listed() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.jsonld")) == sorted(GS1_EXAMPLES)


@pytest.mark.parametrize("name", sorted(GS1_EXAMPLES))
def test_gs1_example_documents_pass_the_schema_and_are_refused_naming_why(name: str) -> None:
    plan = plan_capture((EXAMPLES / name).read_bytes(), "proceed")
    assert plan.writes == ()
    assert [(error.index, error.field) for error in plan.refused] == GS1_EXAMPLES[name]
    assert not any(error.message.startswith("GS1's EPCIS schema") for error in plan.refused)


def test_the_servers_copy_of_gs1s_schema_is_the_recorded_one() -> None:
    package = Path(__file__).parents[2] / "provenance" / "data" / "epcis" / "EPCIS-JSON-Schema.json"
    assert package.read_bytes() == (EXAMPLES.parent / "EPCIS-JSON-Schema.json").read_bytes()


def test_a_deployment_reads_its_own_identifiers_with_its_own_readers() -> None:
    doc = exported()
    event = doc["epcisBody"]["eventList"][2]
    event["quantityList"] = [{"epcClass": "urn:epc:class:lgtin:4012345.012345.M"}]
    assert refusal(doc, 2).field == "quantityList[0].epcClass"
    prefix = "urn:epc:class:lgtin:4012345.012345."
    gs1 = IdentifierReaders(lot=lambda uri: uri.removeprefix(prefix) if uri.startswith(prefix) else None)
    (write,) = [w for w in plan_capture(body(doc), "proceed", ids=gs1).writes if w.index == 2]
    assert write.payload == {"lot_ids": ["M"], "to": BUYER}


def test_a_deployment_with_gs1_identifiers_captures_what_it_exports() -> None:
    scheme = scheme_of("https://provenance.example.net", "http://127.0.0.1:8000", "4012345", "COAL=012345")
    names = Names(scheme, {"A1": "COAL", "M": "COAL", "N": "COAL"})
    events = events_of(history(), CHAIN, lambda block: BLOCK_TIME + 12 * block, names)
    assert (
        events[0]["quantityList"][0]["epcClass"]
        == "https://provenance.example.net/01/04012345123456/10/A1"  # GS1 9.6.2's GTIN
    )
    plan = plan_capture(body(document(events, BLOCK_TIME)), "rollback", ids=readers_of(scheme))

    def asked(writes: tuple[Any, ...]) -> list[Any]:
        return [(w.kind, w.payload, w.sender, w.lab, w.registrar_of, w.role) for w in writes]

    assert asked(plan.writes) == asked(plan_capture(body(exported()), "rollback").writes)
    assert plan_capture(body(document(events, BLOCK_TIME)), "proceed").writes == ()


def test_an_assay_dated_after_its_block_is_captured_with_the_labs_time_from_mp_assayed_at() -> None:
    events = events_of(history(), CHAIN, lambda block: BLOCK_TIME)  # every block before the lab's time
    doc = document(events, BLOCK_TIME + 1_000)
    assay = doc["epcisBody"]["eventList"][4]
    assert "time" not in assay["sensorElementList"][0]["sensorMetadata"]
    assert "mp:assayedAt" in assay

    write = plan_capture(body(doc), "rollback").writes[4]

    assert write.payload["assay"]["assayed_at"] == BLOCK_TIME + 60


def test_the_grade_is_typed_dimensionless_as_gs1s_schema_writes_it() -> None:
    doc = exported()
    report = doc["epcisBody"]["eventList"][4]["sensorElementList"][0]["sensorReport"][0]
    report["type"] = "gs1:Dimensionless"  # compact, with the EPCIS 2.0 context's gs1 prefix
    assert plan_capture(body(doc), "rollback").writes[4].payload["assay"]["grade_ppm"] == 8_800
    report["type"] = "Temperature"
    assert refusal(doc, 4).field == "sensorElementList[0].sensorReport[0]"

"""GET /v1/epcis/events over HTTP, on SQLite and PostgreSQL: a small history on eth-tester, indexed,
read back as an EPCIS 2.0 document, validated against GS1's official schema and checked against the
chain's receipts.

The history (masses in grams):

    A1 1000 (PIT-A)  B1 3000 (PIT-B), both handed over to the processor and accepted
    -- a day later (the `cut`) --
    blend A1 1000 + B1 3000 -> X 3900 at PIT-A (100 lost); X assayed; X sold to the buyer.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web3.types import TxReceipt

from api.app import create_app
from provenance.bootstrap import build_runtime
from provenance.config import Settings
from provenance.domain.records import Assay, LotRegistration
from provenance.domain.values import TransformKind
from provenance.epcis.export import event_hash, lot_uri
from provenance.index.db import make_engine, upgrade
from tests.dbs import empty_database
from tests.epcis_schema import schema_errors
from tests.index_chain import EXTRACTED_AT, SITE, IndexChain, record
from tests.nodes import unreachable_web3

pytestmark = pytest.mark.clock

OTHER_SITE = "PIT-B"
DAY = 86_400


@dataclass
class EpcisStack:
    chain: IndexChain
    http: TestClient
    receipts: dict[str, TxReceipt]
    cut: int

    def document(self, **params: Any) -> dict[str, Any]:
        response = self.http.get("/v1/epcis/events", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/ld+json")
        assert response.headers["X-Index-Block"] == str(self.chain.head)
        body: dict[str, Any] = response.json()
        assert schema_errors(body) == []
        return body

    def events(self, **params: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.document(**params)["epcisBody"]["eventList"]
        return events


def build_history(c: IndexChain) -> tuple[dict[str, TxReceipt], int]:
    c.client.grant_role(c.admin, c.client.registrar_role(OTHER_SITE), c.registrar)
    receipts = {
        "A1": c.register(
            LotRegistration("A1", SITE, "F1", "Au-ore", 1_000, 5_000, EXTRACTED_AT, record("A1"))
        ),
        "B1": c.register(
            LotRegistration("B1", OTHER_SITE, "F1", "Au-ore", 3_000, 5_000, EXTRACTED_AT, record("B1"))
        ),
    }
    receipts["offer"] = c.client.hand_over(c.registrar, ["A1", "B1"], c.processor)
    receipts["accept"] = c.client.accept_handover(c.processor, ["A1", "B1"])
    cut = int(c.w3.eth.get_block("pending")["timestamp"]) + DAY
    c.tester.time_travel(cut)
    receipts["blend"] = c.transform(TransformKind.BLEND, [("A1", 1_000), ("B1", 3_000)], [("X", 3_900)], 100)
    assay = Assay("X", 8_800, "FireAssay", record("certificate X"), EXTRACTED_AT + 7_200)
    receipts["assay"] = c.client.submit_assay(c.buyer, assay, c.client.sign_assay(c.lab, assay))
    receipts["sell"] = c.client.hand_over(c.processor, ["X"], c.buyer)
    receipts["sold"] = c.client.accept_handover(c.buyer, ["X"])
    return receipts, cut


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EpcisStack]:
    data_dir: Path = tmp_path_factory.mktemp("epcis")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        receipts, cut = build_history(chain)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        chain.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            yield EpcisStack(chain, TestClient(create_app(runtime)), receipts, cut)
        finally:
            engine.dispose()
            runtime.close()


def step(event: dict[str, Any]) -> tuple[str, str]:
    return event["type"], event["bizStep"]


def lots_of(event: dict[str, Any]) -> list[str]:
    lists = ("quantityList", "inputQuantityList", "outputQuantityList")
    return [entry["epcClass"] for name in lists for entry in event.get(name, [])]


def tx_of(receipt: TxReceipt) -> tuple[str, int]:
    return "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])


def test_the_whole_history_is_one_valid_epcis_document_in_chain_order(stack: EpcisStack) -> None:
    body = stack.document()
    assert (body["type"], body["schemaVersion"]) == ("EPCISDocument", "2.0")
    events = body["epcisBody"]["eventList"]
    assert [(step(event), lots_of(event)) for event in events] == [
        (("ObjectEvent", "commissioning"), [lot_uri("A1")]),
        (("ObjectEvent", "commissioning"), [lot_uri("B1")]),
        (("ObjectEvent", "shipping"), [lot_uri("A1")]),
        (("ObjectEvent", "shipping"), [lot_uri("B1")]),
        (("ObjectEvent", "receiving"), [lot_uri("A1")]),
        (("ObjectEvent", "receiving"), [lot_uri("B1")]),
        (("TransformationEvent", "creating_class_instance"), [lot_uri(x) for x in ("A1", "B1", "X")]),
        (("ObjectEvent", "inspecting"), [lot_uri("X")]),
        (("ObjectEvent", "shipping"), [lot_uri("X")]),
        (("ObjectEvent", "receiving"), [lot_uri("X")]),
    ]
    assert [event["action"] for event in events if event["type"] == "ObjectEvent"][:2] == ["ADD", "ADD"]


def test_quantities_are_kilograms_and_the_transformation_balances(stack: EpcisStack) -> None:
    events = stack.events()
    assert events[0]["quantityList"] == [{"epcClass": lot_uri("A1"), "quantity": 1, "uom": "KGM"}]
    assert events[0]["bizLocation"] == {"id": f"http://127.0.0.1:8000/id/sites/{SITE}"}
    [blend] = [event for event in events if event["type"] == "TransformationEvent"]
    assert blend["inputQuantityList"] == [
        {"epcClass": lot_uri("A1"), "quantity": 1, "uom": "KGM"},
        {"epcClass": lot_uri("B1"), "quantity": 3, "uom": "KGM"},
    ]
    assert blend["outputQuantityList"] == [{"epcClass": lot_uri("X"), "quantity": 3.9, "uom": "KGM"}]
    assert blend["mp:transformKind"] == "blend"
    [assay] = [event for event in events if event["bizStep"] == "inspecting"]
    [sensor] = assay["sensorElementList"]
    assert sensor["sensorReport"] == [{"type": "Dimensionless", "value": 8_800, "uom": "59"}]
    assert (
        sensor["sensorMetadata"]["deviceID"] == f"http://127.0.0.1:8000/id/accounts/{stack.chain.lab.address}"
    )
    sold = events[-1]
    assert sold["sourceList"] == [
        {"type": "possessing_party", "source": f"http://127.0.0.1:8000/id/accounts/{stack.chain.processor}"}
    ]
    assert sold["destinationList"] == [
        {"type": "possessing_party", "destination": f"http://127.0.0.1:8000/id/accounts/{stack.chain.buyer}"}
    ]


def test_each_event_carries_its_chain_coordinates_and_block_time(stack: EpcisStack) -> None:
    events = stack.events()
    receipts = [stack.receipts[name] for name in ("A1", "B1", "offer", "offer", "accept", "accept")]
    receipts += [stack.receipts[name] for name in ("blend", "assay", "sell", "sold")]
    w3 = stack.chain.w3
    for event, receipt in zip(events, receipts, strict=True):
        chain = event["mp:chain"]
        assert (chain["mp:txHash"], chain["mp:blockNumber"]) == tx_of(receipt)
        assert chain["mp:chainId"] == w3.eth.chain_id
        assert chain["mp:registry"] == stack.chain.client.address
        logs = {int(log["logIndex"]) for log in receipt["logs"]}
        assert chain["mp:logIndex"] in logs
        timestamp = int(w3.eth.get_block(receipt["blockNumber"])["timestamp"])
        expected = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
        assert event["eventTime"] == expected.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_each_event_id_is_its_recomputable_cbv_event_hash(stack: EpcisStack) -> None:
    events = stack.events()
    ids = [event["eventID"] for event in events]
    assert all(event_hash(event) == event["eventID"] for event in events)
    assert all(i.startswith("ni:///sha-256;") and i.endswith("?ver=CBV2.0") for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == [event["eventID"] for event in stack.events()]


def test_filters_by_lot_site_and_time(stack: EpcisStack) -> None:
    a1 = stack.events(lot="A1")
    assert [step(event)[1] for event in a1] == [
        "commissioning",
        "shipping",
        "receiving",
        "creating_class_instance",
    ]

    other = stack.events(site=OTHER_SITE)
    assert [step(event)[1] for event in other] == ["commissioning", "shipping", "receiving"]
    assert all(lots_of(event) == [lot_uri("B1")] for event in other)

    later = stack.events(**{"from": str(stack.cut)})
    assert [step(event)[1] for event in later] == [
        "creating_class_instance",
        "inspecting",
        "shipping",
        "receiving",
    ]
    earlier = stack.events(to=str(stack.cut))
    assert len(earlier) == 6
    assert all(step(event)[1] != "creating_class_instance" for event in earlier)

    x_later = stack.events(lot="X", **{"from": str(stack.cut)})
    assert [step(event)[1] for event in x_later] == [
        "creating_class_instance",
        "inspecting",
        "shipping",
        "receiving",
    ]
    assert stack.events(lot="nobody") == []


def test_with_the_node_down_the_same_events_come_with_the_same_times_and_filters(stack: EpcisStack) -> None:
    down = dataclasses.replace(stack.http.app.state.runtime, w3=unreachable_web3())
    http = TestClient(create_app(down))

    def events(**params: Any) -> list[dict[str, Any]]:
        response = http.get("/v1/epcis/events", params=params)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["epcisBody"]["eventList"]
        return found

    def dated(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(event["eventID"], event["eventTime"]) for event in found]

    assert dated(events()) == dated(stack.events())
    for params in (
        {"from": str(stack.cut)},
        {"to": str(stack.cut)},
        {"lot": "X", "to": str(stack.cut + DAY)},
    ):
        assert dated(events(**params)) == dated(stack.events(**params))
    assert len(events(**{"from": str(stack.cut)})) == 4


def test_bad_filters_are_422_naming_the_field(stack: EpcisStack) -> None:
    bad_time = stack.http.get("/v1/epcis/events", params={"from": "yesterday"})
    assert bad_time.status_code == 422
    assert bad_time.json()["error"]["field"] == "from"
    too_many = stack.http.get("/v1/epcis/events", params={"limit": 3})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "limit"

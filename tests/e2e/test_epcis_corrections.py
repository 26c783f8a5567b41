"""Corrections in the EPCIS export, over HTTP on SQLite and PostgreSQL, validated against GS1's
schema: the event that made a corrected lot is repeated with its eventID and an errorDeclaration
naming the corrective event, which follows it.

    A1 1000 g and A2 2000 g registered at PIT-A; A1 split into S1 600 + S2 400
    A2 corrected by -150 g (incorrect data); S2 declared never to have existed (did not occur)
"""

from __future__ import annotations

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
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.epcis.export import event_hash, lot_uri
from provenance.index.db import make_engine, upgrade
from tests.dbs import empty_database
from tests.epcis_schema import schema_errors
from tests.index_chain import SITE, IndexChain

pytestmark = pytest.mark.clock


@dataclass
class CorrectionStack:
    chain: IndexChain
    http: TestClient
    receipts: dict[str, TxReceipt]

    def events(self, **params: Any) -> list[dict[str, Any]]:
        response = self.http.get("/v1/epcis/events", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert schema_errors(body) == []
        events: list[dict[str, Any]] = body["epcisBody"]["eventList"]
        return events

    def block_time(self, name: str) -> str:
        block = self.chain.w3.eth.get_block(self.receipts[name]["blockNumber"])
        moment = datetime.datetime.fromtimestamp(int(block["timestamp"]), datetime.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def corrections(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorrectionStack]:
    data_dir: Path = tmp_path_factory.mktemp("epcis-corrections")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        c = IndexChain.fresh()
        receipts = {"register": c.register(c.lot("A1", 1_000), c.lot("A2", 2_000))}
        c.hand_to_processor("A1")
        receipts["split"] = c.transform(TransformKind.SPLIT, [("A1", 1_000)], [("S1", 600), ("S2", 400)], 0)
        receipts["incorrect"] = c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -150)
        receipts["void"] = c.correct(c.processor, "S2", CorrectionReason.DID_NOT_OCCUR, -400)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        c.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=c.w3)
        engine = make_engine(url)
        try:
            c.indexer(engine).sync()
            yield CorrectionStack(c, TestClient(create_app(runtime)), receipts)
        finally:
            engine.dispose()
            runtime.close()


def test_an_incorrect_record_is_declared_on_a_copy_of_its_event_with_the_corrective_event(
    corrections: CorrectionStack,
) -> None:
    events = corrections.events(lot="A2")
    registered, declared, corrective = events

    assert (registered["bizStep"], registered["action"]) == ("commissioning", "ADD")
    assert "errorDeclaration" not in registered
    assert declared["eventID"] == registered["eventID"]
    assert {key: value for key, value in declared.items() if key != "errorDeclaration"} == registered
    assert declared["errorDeclaration"] == {
        "declarationTime": corrections.block_time("incorrect"),
        "reason": "incorrect_data",
        "correctiveEventIDs": [corrective["eventID"]],
    }
    assert (corrective["action"], corrective["bizStep"]) == ("OBSERVE", "inspecting")
    assert corrective["quantityList"] == [{"epcClass": lot_uri("A2"), "quantity": 1.85, "uom": "KGM"}]
    assert corrective["mp:adjustmentG"] == -150
    assert corrective["mp:correctionReason"] == "https://ref.gs1.org/cbv/ER-incorrect_data"
    assert event_hash(corrective) == corrective["eventID"]
    assert corrective["mp:chain"]["mp:blockNumber"] == corrections.receipts["incorrect"]["blockNumber"]


def test_a_lot_that_did_not_occur_declares_the_transformation_that_made_it(
    corrections: CorrectionStack,
) -> None:
    events = corrections.events(lot="S2")
    split, declared, corrective = events

    assert split["type"] == "TransformationEvent"
    assert declared["type"] == "TransformationEvent"
    assert declared["eventID"] == split["eventID"]
    assert declared["errorDeclaration"]["reason"] == "did_not_occur"
    assert declared["errorDeclaration"]["correctiveEventIDs"] == [corrective["eventID"]]
    assert (corrective["action"], corrective["bizStep"], corrective["disposition"]) == (
        "DELETE",
        "decommissioning",
        "inactive",
    )
    assert corrective["quantityList"] == [{"epcClass": lot_uri("S2")}]


def test_the_site_document_holds_both_corrections_once_in_chain_order(corrections: CorrectionStack) -> None:
    events = corrections.events(site=SITE)
    declared = [event for event in events if "errorDeclaration" in event]
    assert [event["errorDeclaration"]["reason"] for event in declared] == ["incorrect_data", "did_not_occur"]
    corrective_ids = {i for event in declared for i in event["errorDeclaration"]["correctiveEventIDs"]}
    assert corrective_ids <= {event["eventID"] for event in events}
    blocks = [event["mp:chain"]["mp:blockNumber"] for event in events if "errorDeclaration" not in event]
    assert blocks == sorted(blocks)

"""The read-only NGSI-LD interface over HTTP, on SQLite and PostgreSQL, over the read API's history
(tests/e2e/test_read_api.py: registrations at two sites, split, merge, blend, process, handovers, an
assay, a correction): entities, one entity, a lot's history, paging, content negotiation, and a
400 BadRequestData for every part of the query language we do not answer. Each answer is checked
with the structural checks of tests/ngsi_ld_checks.py (the place for ETSI's schemas)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from provenance.bootstrap import build_runtime
from provenance.certificates import settle_certificate, store_certificate
from provenance.config import Settings
from provenance.documents import DocumentStore
from provenance.domain.ngsi_ld import iso_time
from provenance.domain.records import Assay
from provenance.index.db import make_engine, upgrade
from tests.dbs import empty_database
from tests.e2e.test_read_api import OTHER_SITE, build_history
from tests.index_chain import EXTRACTED_AT, SITE, IndexChain
from tests.ngsi_ld_checks import check_entity, check_problem, check_temporal_entity

PUBLIC = "https://provenance.test-city.kr"
CONTEXT = PUBLIC + "/ngsi-ld/context.jsonld"
VOCAB = PUBLIC + "/ngsi-ld/vocab#"
X1 = f"urn:ngsi-ld:OreLot:{SITE}:X1"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, IndexChain]]:
    data_dir: Path = tmp_path_factory.mktemp("ngsi")
    (data_dir / "directory.json").write_text(
        json.dumps(
            {
                "sites": {
                    SITE: {
                        "name": "Pit A",
                        "lat": 37.2,
                        "lon": 129.0,
                        "faces": {"F1": {"lat": 37.25, "lon": 129.05}},
                    }
                }
            }
        )
    )
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        build_history(chain)
        certified_assay(chain, data_dir)
        settings = Settings(
            data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url, public_url=PUBLIC
        )
        chain.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            yield TestClient(create_app(runtime)), chain
        finally:
            engine.dispose()
            runtime.close()


ANALYTES = [
    {"analyte": "Au", "value": "8.8", "unit": "g/t", "method": "ISO 10378, fire assay"},
    {"analyte": "Cu", "value": "0.12", "unit": "%", "method": "ISO 13658, ICP-OES"},
]


def certified_assay(chain: IndexChain, data_dir: Path) -> None:
    """X2 assayed with analytes whose certificate is held in the data directory's store."""
    certificate = settle_certificate("X2", ANALYTES, None)
    store_certificate(DocumentStore(data_dir / "documents", 1 << 20), certificate)
    assay = Assay(
        "X2", 8_700, "FireAssay", bytes.fromhex(certificate.certificate_hash[2:]), EXTRACTED_AT + 9_000
    )
    chain.client.submit_assay(chain.buyer, assay, chain.client.sign_assay(chain.lab, assay))


def get(client: TestClient, path: str, status: int = 200, **params: Any) -> httpx.Response:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    return response


def test_our_context_maps_our_terms_and_the_smart_data_models_terms(
    api: tuple[TestClient, IndexChain],
) -> None:
    client, _ = api
    response = get(client, "/ngsi-ld/context.jsonld")
    assert response.headers["content-type"].startswith("application/ld+json")
    core, terms = response.json()["@context"]
    assert core == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
    assert terms["OreLot"] == VOCAB + "OreLot"
    assert terms["massTaken"] == VOCAB + "massTaken"
    assert terms["DLTtxReceipt"] == "https://smartdatamodels.org/dataModel.DistributedLedgerTech/DLTtxReceipt"
    assert "example" not in response.text


def test_a_lot_as_an_entity_with_units_place_parents_custody_and_its_last_fact(
    api: tuple[TestClient, IndexChain],
) -> None:
    client, chain = api
    response = get(client, f"/ngsi-ld/v1/entities/{X1}")
    assert response.headers["content-type"].startswith("application/json")
    assert (
        response.headers["link"]
        == f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    )
    x1 = response.json()
    check_entity(x1, where="response")
    assert "@context" not in x1
    assert (x1["type"], x1["commodity"]["value"], x1["status"]["value"]) == ("OreLot", "Au-conc", "active")
    assert x1["mass"] == {
        "type": "Property",
        "value": 1.8,
        "unitCode": "KGM",
        "observedAt": x1["mass"]["observedAt"],
    }
    assert x1["grade"]["value"] == 8_800  # the assay, not the 9,000 the processor declared
    assert x1["grade"]["unitCode"] == "59"
    assert x1["grade"]["observedAt"] == iso_time(EXTRACTED_AT + 7_200)
    assert x1["custodian"]["value"] == chain.buyer
    assert x1["site"] == {"type": "Relationship", "object": f"urn:ngsi-ld:MiningSite:{SITE}"}
    parent = x1["parent"]
    assert parent["object"] == f"urn:ngsi-ld:OreLot:{SITE}:X"
    assert parent["massTaken"] == {"type": "Property", "value": 1.8, "unitCode": "KGM"}
    receipt_id = x1["lastFact"]["object"]
    receipt = get(client, f"/ngsi-ld/v1/entities/{receipt_id}").json()
    check_entity(receipt, where="response")
    assert receipt["type"] == "DLTtxReceipt"
    assert receipt["refEntity"]["object"] == X1
    assert receipt["eventName"]["value"] == "CustodyAccepted"
    tx = receipt["TxReceipts"]["value"]
    assert tx["logs"]["blockNumber"] == x1["lastFact"]["chainPosition"]["value"][0]
    on_chain = chain.w3.eth.get_transaction_receipt(tx["transactionHash"])
    assert on_chain["blockNumber"] == tx["blockNumber"]
    assert int(on_chain["logs"][-1]["logIndex"]) >= tx["logs"]["logIndex"]


def test_a_registered_lot_is_placed_at_its_face_and_a_merged_lot_names_each_parent_with_its_mass(
    api: tuple[TestClient, IndexChain],
) -> None:
    client, _ = api
    a1 = get(client, f"/ngsi-ld/v1/entities/urn:ngsi-ld:OreLot:{SITE}:A1").json()
    assert a1["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [129.05, 37.25]},
    }
    assert a1["mass"]["observedAt"] == iso_time(EXTRACTED_AT)
    assert (a1["remainingMass"]["value"], a1["status"]["value"]) == (0, "consumed")
    merged = get(client, f"/ngsi-ld/v1/entities/urn:ngsi-ld:OreLot:{SITE}:M").json()
    taken = {p["object"].rsplit(":", 1)[1]: p["massTaken"]["value"] for p in merged["parent"]}
    assert taken == {"S1": 0.36, "A2": 1.8}
    assert len({p["datasetId"] for p in merged["parent"]}) == 2
    b1 = get(client, f"/ngsi-ld/v1/entities/urn:ngsi-ld:OreLot:{OTHER_SITE}:B1").json()
    assert "location" not in b1  # PIT-B is not in the directory
    site = get(client, f"/ngsi-ld/v1/entities/urn:ngsi-ld:MiningSite:{SITE}").json()
    assert site["name"]["value"] == "Pit A"
    assert site["location"]["value"]["coordinates"] == [129.0, 37.2]


def test_json_ld_puts_the_context_in_the_body(api: tuple[TestClient, IndexChain]) -> None:
    client, _ = api
    response = client.get(f"/ngsi-ld/v1/entities/{X1}", headers={"Accept": "application/ld+json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assert "link" not in response.headers
    assert response.json()["@context"] == CONTEXT
    refused = client.get(f"/ngsi-ld/v1/entities/{X1}", headers={"Accept": "text/html"})
    assert refused.status_code == 406


def test_queries_filter_by_q_and_page_with_offset_links_and_a_count(
    api: tuple[TestClient, IndexChain],
) -> None:
    client, _ = api
    active_at_a = get(
        client,
        "/ngsi-ld/v1/entities",
        type="OreLot",
        q=f'status=="active";site=="urn:ngsi-ld:MiningSite:{SITE}"',
    )
    ids = {entity["id"].rsplit(":", 1)[1] for entity in active_at_a.json()}
    assert ids == {"S2", "X1", "X2"}
    for entity in active_at_a.json():
        check_entity(entity, where="response")
    heavy = get(client, "/ngsi-ld/v1/entities", type="OreLot", q="mass>=1.8;mass<=2.16").json()
    assert {entity["id"].rsplit(":", 1)[1] for entity in heavy} == {"A2", "M", "X1"}
    ranged = get(client, "/ngsi-ld/v1/entities", type="OreLot", q="mass==0.1..0.102").json()
    assert {entity["id"].rsplit(":", 1)[1] for entity in ranged} == {"C0", "C1", "C2"}
    listed = get(
        client,
        "/ngsi-ld/v1/entities",
        type="OreLot",
        q='commodity=="Au-ore";status!="consumed","voided"',
        count="true",
    )
    assert int(listed.headers["NGSILD-Results-Count"]) == len(listed.json()) == 6  # B1, C0-C4

    first = get(client, "/ngsi-ld/v1/entities", type="OreLot", limit=4, count="true")
    total = int(first.headers["NGSILD-Results-Count"])
    seen = [entity["id"] for entity in first.json()]
    link = first.headers["link"]
    while 'rel="next"' in link:
        next_url = (
            next(part for part in link.split(", <") if 'rel="next"' in part).split(">", 1)[0].lstrip("<")
        )
        page = client.get(next_url)  # httpx would drop the link's query for an empty params
        assert page.status_code == 200, page.text
        seen += [entity["id"] for entity in page.json()]
        link = page.headers.get("link", "")
    assert len(seen) == len(set(seen)) == total == 14
    simple = get(client, f"/ngsi-ld/v1/entities/{X1}", options="keyValues", attrs="mass,status").json()
    assert simple == {"id": X1, "type": "OreLot", "mass": 1.8, "status": "active"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"type": "OreLot", "q": 'status=="active"|status=="consumed"'}, "OR"),
        ({"type": "OreLot", "q": 'commodity=~"Au.*"'}, "pattern"),
        ({"type": "OreLot", "q": "mass.observedAt>=2020"}, "attribute paths"),
        ({"type": "OreLot", "q": "recordHash==1"}, "recordHash cannot be queried"),
        ({"type": "OreLot", "q": "status"}, "bare attribute"),
        ({"type": "OreLot", "georel": "near;maxDistance==10", "geometry": "Point"}, "georel"),
        ({"type": "OreLot", "idPattern": ".*"}, "idPattern"),
        ({"type": "Vehicle"}, "Vehicle"),
        ({"q": 'status=="active"'}, "type"),
        ({"type": "OreLot", "limit": "5000"}, "limit"),
        ({"type": "OreLot", "options": "sysAttrs"}, "sysAttrs"),
    ],
)
def test_what_we_do_not_answer_is_a_bad_request_naming_it(
    api: tuple[TestClient, IndexChain], params: dict[str, str], named: str
) -> None:
    client, _ = api
    response = get(client, "/ngsi-ld/v1/entities", 400, **params)
    problem = response.json()
    check_problem(problem)
    assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert named in problem["detail"]


def test_an_unknown_entity_is_resource_not_found(api: tuple[TestClient, IndexChain]) -> None:
    client, _ = api
    not_an_id = get(client, "/ngsi-ld/v1/entities/X1", 400).json()
    assert not_an_id["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    for entity_id in (
        f"urn:ngsi-ld:OreLot:{OTHER_SITE}:X1",
        f"urn:ngsi-ld:OreLot:{SITE}:NOPE",
        "urn:ngsi-ld:Thing:1",
    ):
        problem = get(client, f"/ngsi-ld/v1/entities/{entity_id}", 404).json()
        check_problem(problem)
        assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


def test_a_lots_history_is_its_facts_as_attribute_instances_in_chain_order(
    api: tuple[TestClient, IndexChain],
) -> None:
    client, chain = api
    history = get(client, f"/ngsi-ld/v1/temporal/entities/{X1}").json()
    check_temporal_entity(history)
    custodians = [instance["value"] for instance in history["custodian"]]
    assert custodians == [chain.processor, chain.buyer]
    positions = [instance["chainPosition"]["value"] for instance in history["lastFact"]]
    assert positions == sorted(positions)
    assert len(positions) == len(set(map(tuple, positions)))
    assert [instance["value"] for instance in history["grade"]] == [9_000, 8_800]
    times = [instance["observedAt"] for instance in history["lastFact"]]
    late = get(
        client, f"/ngsi-ld/v1/temporal/entities/{X1}", timerel="after", timeAt=times[1], attrs="lastFact"
    ).json()
    assert [instance["observedAt"] for instance in late["lastFact"]] == [t for t in times if t > times[1]]
    last = get(client, f"/ngsi-ld/v1/temporal/entities/{X1}", lastN="1").json()
    assert [instance["value"] for instance in last["custodian"]] == [chain.buyer]
    problem = get(
        client, f"/ngsi-ld/v1/temporal/entities/{X1}", 400, timerel="during", timeAt=times[0]
    ).json()
    assert "timerel" in problem["detail"]


def test_an_assay_shows_its_analytes_only_when_its_certificate_is_held_and_matches(
    api: tuple[TestClient, IndexChain],
) -> None:
    client, _ = api
    x2 = get(client, f"/ngsi-ld/v1/entities/urn:ngsi-ld:OreLot:{SITE}:X2").json()
    check_entity(x2, where="response")
    assay = x2["assay"]["value"]
    assert {item["analyte"]: (item["value"], item["unit"]) for item in assay["analytes"]} == {
        "Au": ("8.8", "g/t"),
        "Cu": ("0.12", "%"),
    }
    assert x2["grade"]["value"] == 8_700
    x1 = get(client, f"/ngsi-ld/v1/entities/{X1}").json()
    assert "analytes" not in x1["assay"]["value"], "X1's certificate is not held here"
    history = get(client, f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:OreLot:{SITE}:X2", attrs="assay").json()
    assert [len(instance["value"]["analytes"]) for instance in history["assay"]] == [2]

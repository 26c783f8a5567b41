"""POST /epcis/capture over HTTP, on SQLite and PostgreSQL, with the outbox worker on eth-tester:
each kind of event captured and read back through GET /epcis/events as it was sent; refusals naming
the event and the field; rollback and proceed; the limits; retries; roles; GS1's examples.

Events here are written out by hand in EPCIS 2.0 terms (not by `provenance.epcis.event_of`), so a
read back equal to what was sent checks the capture and the export against each other. What the
chain assigns is left out of the comparison: eventID and eventTime (the block's time: a capture
cannot choose it), recordTime, transformationID and `mp:chain`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from provenance.chain.logsource import RpcLogSource
from provenance.domain.records import Assay
from provenance.epcis.capture import CAPTURE_FILE_SIZE_LIMIT, CAPTURE_LIMIT
from provenance.epcis.export import (
    EPCIS_CONTEXT,
    EXTENSION_NAMESPACE,
    account_uri,
    lot_uri,
    method_uri,
    site_uri,
)
from provenance.index.indexer import Indexer
from tests.dbs import empty_database
from tests.e2e.conftest import SITE, Account, Stack, digest, start_stack
from tests.epcis_schema import schema_errors

EXAMPLES = Path(__file__).parents[1] / "data" / "epcis" / "examples"
EXTRACTED = "2023-11-14T22:13:20.000Z"
"""1,700,000,000 in Unix seconds."""
CHAIN_ASSIGNED = ("eventID", "eventTime", "recordTime", "transformationID", "mp:chain")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("capture")
    with empty_database(request.param, data_dir) as url:
        yield from start_stack(data_dir, "CAP", database_url=url)


# ------------------------------------------------------------------------------- documents


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [EPCIS_CONTEXT, {"mp": EXTENSION_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-07T10:00:00.000Z",
        "epcisBody": {"eventList": list(events)},
    }


def _base(event_type: str) -> dict[str, Any]:
    return {"type": event_type, "eventTime": "2026-12-07T09:00:00.000Z", "eventTimeZoneOffset": "+00:00"}


def commissioning(lot: str, kilograms: int = 24_500, *, site: str = SITE) -> dict[str, Any]:
    return _base("ObjectEvent") | {
        "action": "ADD",
        "bizStep": "commissioning",
        "quantityList": [{"epcClass": lot_uri(lot), "quantity": kilograms, "uom": "KGM"}],
        "bizLocation": {"id": site_uri(site)},
        "mp:commodity": "COAL",
        "mp:gradePpm": 12_345,
        "mp:face": "F3",
        "mp:extractedAt": EXTRACTED,
        "mp:recordHash": digest(lot),
    }


def transformation(inputs: list[tuple[str, int]], outputs: list[tuple[str, int]]) -> dict[str, Any]:
    return _base("TransformationEvent") | {
        "inputQuantityList": [{"epcClass": lot_uri(lot), "quantity": kg, "uom": "KGM"} for lot, kg in inputs],
        "outputQuantityList": [
            {"epcClass": lot_uri(lot), "quantity": kg, "uom": "KGM"} for lot, kg in outputs
        ],
        "bizStep": "creating_class_instance",
        "bizLocation": {"id": site_uri(SITE)},
        "mp:transformKind": "split",
        "mp:recordHash": digest("split " + inputs[0][0]),
        "mp:outputs": [
            {
                "mp:epcClass": lot_uri(lot),
                "mp:commodity": "COAL",
                "mp:gradePpm": 11_000,
                "mp:recordHash": digest(lot),
            }
            for lot, _ in outputs
        ],
    }


def custody(lot: str, step: str, source: Account, destination: Account) -> dict[str, Any]:
    return _base("ObjectEvent") | {
        "action": "OBSERVE",
        "bizStep": step,
        "disposition": "in_transit" if step == "shipping" else "in_progress",
        "quantityList": [{"epcClass": lot_uri(lot)}],
        "sourceList": [{"type": "possessing_party", "source": account_uri(source.address)}],
        "destinationList": [{"type": "possessing_party", "destination": account_uri(destination.address)}],
    }


def inspecting(stack: Stack, lot: str, grade_ppm: int = 8_800) -> dict[str, Any]:
    assay = Assay(lot, grade_ppm, "FireAssay", bytes.fromhex(digest("cert " + lot)[2:]), 1_700_003_600)
    signature = stack.runtime.client.sign_assay(stack.lab.key, assay)
    return _base("ObjectEvent") | {
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "quantityList": [{"epcClass": lot_uri(lot)}],
        "sensorElementList": [
            {
                "sensorMetadata": {
                    "time": "2023-11-14T23:13:20.000Z",
                    "deviceID": account_uri(stack.lab.address),
                    "dataProcessingMethod": method_uri("FireAssay"),
                },
                "sensorReport": [{"type": "Dimensionless", "value": grade_ppm, "uom": "59"}],
            }
        ],
        "mp:certificateHash": digest("cert " + lot),
        "mp:labSignature": "0x" + signature.hex(),
    }


# ------------------------------------------------------------------------------- HTTP


def capture(stack: Stack, account: Account | None, body: Any, **headers: str) -> Any:
    sent = {"Content-Type": "application/ld+json", **headers, **(account.auth if account else {})}
    return stack.http.post("/epcis/capture", content=json.dumps(body), headers=sent)


def job(stack: Stack, account: Account, location: str) -> dict[str, Any]:
    """The job once it stops running (the worker sends its operations)."""
    deadline = time.monotonic() + 60
    while True:
        response = stack.http.get(location, headers=account.auth)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        if not found["running"] or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def captured(stack: Stack, account: Account, body: Any, **headers: str) -> dict[str, Any]:
    response = capture(stack, account, body, **headers)
    assert response.status_code == 202, response.text
    return job(stack, account, response.headers["Location"])


def index(stack: Stack) -> None:
    deployment = stack.runtime.deployment
    Indexer(stack.runtime.engine, RpcLogSource(stack.w3, deployment.registry), deployment).sync()


def events_of(stack: Stack, *lots: str) -> list[dict[str, Any]]:
    index(stack)
    response = stack.http.get("/epcis/events", params={"MATCH_anyEPCClass": "|".join(map(lot_uri, lots))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert schema_errors(body) == []
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def without_chain(event: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in event.items() if name not in CHAIN_ASSIGNED}


def refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == "epcisException:ValidationException"
    return problem


def jobs_of(stack: Stack, account: Account) -> list[dict[str, Any]]:
    response = stack.http.get("/epcis/capture", params={"perPage": 1_000}, headers=account.auth)
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()
    return jobs


# ------------------------------------------------------------------------------- tests


def test_each_kind_of_event_is_captured_and_read_back_as_it_was_sent(stack: Stack) -> None:
    a, m, n = stack.lot_id(), stack.lot_id(), stack.lot_id()
    sent = [
        commissioning(a, 1_500),
        transformation([(a, 1_500)], [(m, 1_000), (n, 400)]),
        inspecting(stack, m),
        custody(m, "shipping", stack.operator, stack.buyer),
    ]
    found = captured(stack, stack.operator, document(*sent))
    assert (found["running"], found["success"], found["errors"]) == (False, True, [])
    assert [item["status"] for item in found["operations"]] == ["confirmed"] * 4
    receiving = custody(m, "receiving", stack.operator, stack.buyer)
    assert captured(stack, stack.buyer, document(receiving))["success"] is True

    read = events_of(stack, a, m, n)
    assert [without_chain(event) for event in read] == [without_chain(event) for event in [*sent, receiving]]
    assert "transformationID" not in sent[1]
    assert read[1]["transformationID"]  # the chain numbers transformations
    blocks = [event["mp:chain"]["mp:blockNumber"] for event in read]
    assert blocks == sorted(blocks)
    for event in read:
        block = stack.w3.eth.get_block(event["mp:chain"]["mp:blockNumber"])
        assert event["eventTime"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(block["timestamp"]))


def test_a_single_event_is_captured_through_post_events(stack: Stack) -> None:
    lot = stack.lot_id()
    body = {"@context": [EPCIS_CONTEXT, {"mp": EXTENSION_NAMESPACE}]} | commissioning(lot)
    response = stack.http.post(
        "/epcis/events",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **stack.operator.auth},
    )
    assert response.status_code == 202, response.text
    assert job(stack, stack.operator, response.headers["Location"])["success"] is True
    assert [without_chain(event) for event in events_of(stack, lot)] == [without_chain(commissioning(lot))]


REFUSED = [
    # (kind of event, change, field named)
    ("commissioning", lambda e: e.pop("mp:recordHash"), "mp:recordHash"),
    (
        "commissioning",
        lambda e: e.update(readPoint={"id": "urn:epc:id:sgln:0614141.07346.1234"}),
        "readPoint",
    ),
    ("transformation", lambda e: e["outputQuantityList"][0].update(quantity=9_000), "outputQuantityList"),
    ("shipping", lambda e: e["destinationList"][0].update(type="owning_party"), "destinationList[0].type"),
    ("receiving", lambda e: e.update(disposition="in_transit"), "disposition"),
    ("inspecting", lambda e: e.update({"mp:labSignature": "0x" + "1b" * 65}), "mp:labSignature"),
]


@pytest.mark.parametrize(("kind", "change", "field"), REFUSED, ids=[f"{k}-{f}" for k, _, f in REFUSED])
def test_an_event_the_chain_cannot_record_is_a_400_naming_the_event_and_the_field(
    stack: Stack, kind: str, change: Any, field: str
) -> None:
    lot = stack.lot_id()
    event = {
        "commissioning": lambda: commissioning(lot),
        "transformation": lambda: transformation([(lot, 1_000)], [(stack.lot_id(), 900)]),
        "shipping": lambda: custody(lot, "shipping", stack.operator, stack.buyer),
        "receiving": lambda: custody(lot, "receiving", stack.operator, stack.operator),
        "inspecting": lambda: inspecting(stack, lot),
    }[kind]()
    event["eventID"] = "urn:uuid:" + lot
    change(event)
    before = len(jobs_of(stack, stack.operator))
    problem = refusal(capture(stack, stack.operator, document(commissioning(stack.lot_id()), event)))
    assert (problem["eventIndex"], problem["eventID"]) == (1, event["eventID"])
    assert f"event 1 (urn:uuid:{lot}): {field}:" in problem["detail"]
    assert len(jobs_of(stack, stack.operator)) == before  # all or nothing: nothing was stored


def test_rollback_stores_nothing_and_proceed_captures_what_it_can(stack: Stack) -> None:
    good, bad = stack.lot_id(), stack.lot_id()
    refused = commissioning(bad) | {"readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"}}
    body = document(commissioning(good), refused)
    assert refusal(capture(stack, stack.operator, body))["eventIndex"] == 1
    assert events_of(stack, good, bad) == []

    found = captured(stack, stack.operator, body, **{"GS1-Capture-Error-Behaviour": "proceed"})
    assert (found["running"], found["success"], found["captureErrorBehaviour"]) == (False, False, "proceed")
    assert [(error["eventIndex"], error["type"]) for error in found["errors"]] == [
        (1, "epcisException:ValidationException")
    ]
    assert [event["quantityList"][0]["epcClass"] for event in events_of(stack, good, bad)] == [lot_uri(good)]


def test_a_later_failure_on_chain_is_reported_in_the_job(stack: Stack) -> None:
    """Both registrations pass every check before they are stored; the chain refuses the second
    (the lot exists by then): the first stays recorded, the job names the second."""
    lot = stack.lot_id()
    found = captured(stack, stack.operator, document(commissioning(lot), commissioning(lot, 1_000)))
    assert (found["running"], found["success"]) == (False, False)
    (error,) = found["errors"]
    assert error["eventIndex"] == 1
    assert "failed on chain" in error["detail"]
    assert [item["status"] for item in found["operations"]] == ["confirmed", "failed"]
    assert len(events_of(stack, lot)) == 1


def test_the_limits_are_announced_and_enforced(stack: Stack) -> None:
    options = stack.http.options("/epcis/capture")
    assert options.status_code == 204
    assert set(options.headers["Allow"].replace(" ", "").split(",")) == {"OPTIONS", "GET", "POST"}
    for answer in (options, stack.http.get("/epcis/events"), capture(stack, None, {})):
        assert answer.headers["GS1-EPCIS-Capture-Limit"] == str(CAPTURE_LIMIT)
        assert answer.headers["GS1-EPCIS-Capture-File-Size-Limit"] == str(CAPTURE_FILE_SIZE_LIMIT)
    too_many = document(*[commissioning(f"X{n}") for n in range(CAPTURE_LIMIT + 1)])
    response = capture(stack, stack.operator, too_many)
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "epcisException:CaptureLimitExceededException"
    padded = document(commissioning(stack.lot_id()) | {"mp:face": "F" * CAPTURE_FILE_SIZE_LIMIT})
    response = capture(stack, stack.operator, padded)
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "epcisException:CaptureLimitExceededException"


def test_a_retry_returns_the_same_job_and_writes_once(stack: Stack) -> None:
    lot = stack.lot_id()
    body = document(commissioning(lot))
    first = capture(stack, stack.operator, body)
    again = capture(stack, stack.operator, body)
    assert first.status_code == again.status_code == 202
    assert first.headers["Location"] == again.headers["Location"]
    assert job(stack, stack.operator, first.headers["Location"])["success"] is True

    keyed = document(commissioning(stack.lot_id()))
    key = {"Idempotency-Key": "capture-" + lot}
    one = capture(stack, stack.operator, keyed, **key)
    two = capture(stack, stack.operator, keyed, **key)
    assert one.headers["Location"] == two.headers["Location"]
    conflict = capture(stack, stack.operator, document(commissioning(stack.lot_id())), **key)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["type"] == "epcisException:ResourceAlreadyExistsException"
    job(stack, stack.operator, one.headers["Location"])
    assert len(events_of(stack, lot)) == 1


def test_the_json_apis_tokens_and_roles_apply(stack: Stack) -> None:
    assert capture(stack, None, document(commissioning(stack.lot_id()))).status_code == 401
    response = capture(stack, stack.buyer, document(commissioning(stack.lot_id())))
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "epcisException:SecurityException"
    assert "event 0" in response.json()["detail"]
    lot = stack.register(stack.clerk)
    response = capture(
        stack, stack.clerk, document(transformation([(lot, 24_500)], [(stack.lot_id(), 24_000)]))
    )
    assert response.status_code == 403, response.text
    assert "PROCESSOR_ROLE" in response.json()["detail"]
    shipping = custody(lot, "shipping", stack.clerk, stack.buyer)
    assert refusal(capture(stack, stack.operator, document(shipping)))["detail"].startswith(
        "event 0: sourceList[0].source:"
    )
    other = stack.http.get(capture_location(stack), headers=stack.buyer.auth)
    assert other.status_code == 404


def capture_location(stack: Stack) -> str:
    location: str = f"/epcis/capture/{jobs_of(stack, stack.operator)[0]['captureID']}"
    return location


def test_jobs_are_listed_a_page_at_a_time(stack: Stack) -> None:
    for _ in range(3):
        captured(stack, stack.lab, document(inspecting(stack, stack.register())))
    first = stack.http.get("/epcis/capture", params={"perPage": 2}, headers=stack.lab.auth)
    assert first.status_code == 200
    assert len(first.json()) == 2
    link = first.headers["Link"]
    assert 'rel="next"' in link
    second = stack.http.get(
        link[1 : link.index(">")].removeprefix("http://testserver"), headers=stack.lab.auth
    )
    assert len(second.json()) == 1
    assert "Link" not in second.headers
    ids = [found["captureID"] for found in [*first.json(), *second.json()]]
    assert len(set(ids)) == 3


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("*.jsonld")))
def test_gs1_example_documents_are_refused_naming_why(stack: Stack, name: str) -> None:
    response = stack.http.post(
        "/epcis/capture",
        content=(EXAMPLES / name).read_bytes(),
        headers={"Content-Type": "application/ld+json", **stack.operator.auth},
    )
    problem = refusal(response)
    assert problem["eventIndex"] == 0
    assert problem["detail"].startswith("event 0")


def test_twin_captures_at_once_make_one_job(stack: Stack) -> None:
    """Both may find no job before either commits; the unique (token, key) then turns the second
    into a read of the first (PostgreSQL), or the writer lock serialises them (SQLite)."""
    body = document(commissioning(stack.lot_id()))
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: capture(stack, stack.operator, body), range(4)))
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.headers["Location"] for answer in answers}) == 1
    assert job(stack, stack.operator, answers[0].headers["Location"])["success"] is True

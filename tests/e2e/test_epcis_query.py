"""The EPCIS 2.0 REST query binding (`/epcis`), over HTTP on SQLite and PostgreSQL, on a small
history on eth-tester with every kind of event this repository emits:

    A1 1000 g (PIT-A), B1 3000 g (PIT-B), A2 2000 g (PIT-A); A1 and B1 handed to the processor
    -- a day later (the `cut`) --
    blend A1 + B1 -> X 3900 (100 lost); X assayed; X sold to the buyer; A2 corrected (-150 g,
    incorrect data); X split into S1 2000 + S2 1900; S2 declared never to have existed

The oracle of every filter is the whole history as `GET /v1/epcis/events` gives it (tested on its
own against the chain's receipts) filtered here, in plain Python, by what each parameter means in
GS1's OpenAPI; no expected value is copied from the binding's own answers. Time windows come from
the events' own times.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from provenance.bootstrap import build_runtime
from provenance.config import Settings
from provenance.domain.records import LotRegistration
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.epcis.export import lot_uri, site_uri
from provenance.index.db import make_engine, upgrade
from tests.dbs import empty_database
from tests.epcis_schema import schema_errors
from tests.index_chain import EXTRACTED_AT, SITE, IndexChain, record

pytestmark = pytest.mark.clock

OTHER_SITE = "PIT-B"
DAY = 86_400
SEOUL = datetime.timezone(datetime.timedelta(hours=9))
Event = dict[str, Any]


@dataclass
class QueryStack:
    chain: IndexChain
    engine: Engine
    http: TestClient
    cut: int
    token: str
    """An API token of this system (any role): named queries are created with it."""
    runtime: Any = None

    def all_events(self) -> list[Event]:
        """The oracle: the whole history from the existing export."""
        response = self.http.get("/v1/epcis/events")
        assert response.status_code == 200, response.text
        events: list[Event] = response.json()["epcisBody"]["eventList"]
        return events

    def get(self, path: str, params: Any = None, **headers: str) -> Any:
        return self.http.get(f"/epcis{path}", params=params, headers=headers)

    def document(self, path: str = "/events", params: Any = None) -> dict[str, Any]:
        response = self.get(path, params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/ld+json")
        body: dict[str, Any] = response.json()
        assert schema_errors(body) == []
        assert body["type"] == "EPCISQueryDocument"
        return body

    def events(self, path: str = "/events", params: Any = None) -> list[Event]:
        """Every event of a query, following the Link headers through all pages."""
        events: list[Event] = []
        url: str | None = f"/epcis{path}"
        first = True
        while url is not None:
            response = self.http.get(url, params=params if first else None)
            first = False
            assert response.status_code == 200, response.text
            body = response.json()
            assert schema_errors(body) == []
            events += body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            url = next_url(response)
        return events

    def index(self) -> None:
        self.chain.indexer(self.engine).sync()


def next_url(response: Any) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    target, rel = link.split(";")
    assert rel.strip() == 'rel="next"'
    url: str = target.strip().removeprefix("<").removesuffix(">")
    return url.removeprefix("http://testserver")


def build_history(c: IndexChain) -> int:
    c.client.grant_role(c.admin, c.client.registrar_role(OTHER_SITE), c.registrar)
    c.register(c.lot("A1", 1_000), c.lot("A2", 2_000))
    c.register(LotRegistration("B1", OTHER_SITE, "F1", "Au-ore", 3_000, 5_000, EXTRACTED_AT, record("B1")))
    c.client.hand_over(c.registrar, ["A1", "B1"], c.processor)
    c.client.accept_handover(c.processor, ["A1", "B1"])
    cut = int(c.w3.eth.get_block("pending")["timestamp"]) + DAY
    c.tester.time_travel(cut)
    c.transform(TransformKind.BLEND, [("A1", 1_000), ("B1", 3_000)], [("X", 3_900)], 100)
    c.assay("X", 8_800)
    c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -150)
    c.transform(TransformKind.SPLIT, [("X", 3_900)], [("S1", 2_000), ("S2", 1_900)], 0)
    c.correct(c.processor, "S2", CorrectionReason.DID_NOT_OCCUR, -1_900)
    c.client.hand_over(c.processor, ["S1"], c.buyer)
    c.client.accept_handover(c.buyer, ["S1"])
    return cut


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryStack]:
    data_dir: Path = tmp_path_factory.mktemp("epcis-query")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        cut = build_history(chain)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        chain.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            _, token = runtime.credentials.create("epcis-client", chain.buyer, "none")
            yield QueryStack(chain, engine, TestClient(create_app(runtime)), cut, token, runtime)
        finally:
            engine.dispose()
            runtime.close()


# ---------------------------------------------------------------------------- the oracle


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="milliseconds")


def seconds_of(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def classes(event: Event, *lists: str) -> set[str]:
    return {entry["epcClass"] for name in lists for entry in event.get(name, [])}


def without_record_time(event: Event) -> Event:
    return {name: value for name, value in event.items() if name != "recordTime"}


Oracle = Callable[[Event], bool]


def cases(stack: QueryStack, events: list[Event]) -> dict[str, tuple[dict[str, str], Oracle]]:
    """Query parameters and what they mean, by GS1's descriptions."""
    cut = iso(stack.cut)
    declared = next(event for event in events if "errorDeclaration" in event)
    blend = next(event for event in events if event["type"] == "TransformationEvent")
    return {
        "eventType": ({"eventType": "TransformationEvent"}, lambda e: e["type"] == "TransformationEvent"),
        "eventType list": (
            {"eventType": "TransformationEvent|AggregationEvent"},
            lambda e: e["type"] == "TransformationEvent",
        ),
        "GE_eventTime": ({"GE_eventTime": cut}, lambda e: seconds_of(e["eventTime"]) >= stack.cut),
        "LT_eventTime": ({"LT_eventTime": cut}, lambda e: seconds_of(e["eventTime"]) < stack.cut),
        "window with an offset": (
            {"GE_eventTime": datetime.datetime.fromtimestamp(stack.cut, SEOUL).isoformat()},
            lambda e: seconds_of(e["eventTime"]) >= stack.cut,
        ),
        "EQ_action": ({"EQ_action": "ADD|DELETE"}, lambda e: e.get("action") in ("ADD", "DELETE")),
        "EQ_bizStep": (
            {"EQ_bizStep": "shipping|https://ref.gs1.org/cbv/BizStep-receiving"},
            lambda e: e["bizStep"] in ("shipping", "receiving"),
        ),
        "EQ_bizStep as a URN": (
            {"EQ_bizStep": "urn:epcglobal:cbv:bizstep:inspecting"},
            lambda e: e["bizStep"] == "inspecting",
        ),
        "EQ_disposition": ({"EQ_disposition": "in_transit"}, lambda e: e.get("disposition") == "in_transit"),
        "EQ_bizLocation": (
            {"EQ_bizLocation": site_uri(OTHER_SITE)},
            lambda e: e.get("bizLocation", {}).get("id") == site_uri(OTHER_SITE),
        ),
        "EQ_readPoint": ({"EQ_readPoint": site_uri(SITE)}, lambda e: "readPoint" in e),
        "MATCH_epc": ({"MATCH_epc": lot_uri("A1")}, lambda e: "epcList" in e),
        "MATCH_anyEPC": ({"MATCH_anyEPC": lot_uri("A1")}, lambda e: "epcList" in e),
        "MATCH_epcClass": (
            {"MATCH_epcClass": f"{lot_uri('X')}|{lot_uri('A2')}"},
            lambda e: bool(classes(e, "quantityList") & {lot_uri("X"), lot_uri("A2")}),
        ),
        "MATCH_inputEPCClass": (
            {"MATCH_inputEPCClass": lot_uri("X")},
            lambda e: lot_uri("X") in classes(e, "inputQuantityList"),
        ),
        "MATCH_outputEPCClass": (
            {"MATCH_outputEPCClass": lot_uri("S2")},
            lambda e: lot_uri("S2") in classes(e, "outputQuantityList"),
        ),
        "MATCH_anyEPCClass": (
            {"MATCH_anyEPCClass": lot_uri("X")},
            lambda e: lot_uri("X") in classes(e, "quantityList", "inputQuantityList", "outputQuantityList"),
        ),
        "EQ_eventID": (
            {"EQ_eventID": f"{declared['eventID']}|{blend['eventID']}"},
            lambda e: e["eventID"] in (declared["eventID"], blend["eventID"]),
        ),
        "EXISTS_errorDeclaration": ({"EXISTS_errorDeclaration": "true"}, lambda e: "errorDeclaration" in e),
        "EXISTS_errorDeclaration false": ({"EXISTS_errorDeclaration": "false"}, lambda e: True),
        "EQ_errorReason": (
            {"EQ_errorReason": "did_not_occur"},
            lambda e: e.get("errorDeclaration", {}).get("reason") == "did_not_occur",
        ),
        "combined": (
            {
                "EQ_bizStep": "receiving|commissioning",
                "GE_eventTime": cut,
                "MATCH_anyEPCClass": lot_uri("S1"),
            },
            lambda e: (
                e["bizStep"] in ("receiving", "commissioning")
                and seconds_of(e["eventTime"]) >= stack.cut
                and lot_uri("S1") in classes(e, "quantityList", "outputQuantityList", "inputQuantityList")
            ),
        ),
    }


# ---------------------------------------------------------------------------- events


def test_all_events_are_the_exports_events_in_chain_order_with_their_record_times(stack: QueryStack) -> None:
    expected = stack.all_events()
    found = stack.events(params={"perPage": "1000"})
    assert [without_record_time(event) for event in found] == expected
    assert {event["type"] for event in found} == {"ObjectEvent", "TransformationEvent"}
    assert any("errorDeclaration" in event for event in found)
    # recordTime is when the index stored the event (not the chain's clock, which eth-tester runs
    # ahead): one per block, and never later than now. (A declaration is a copy of an earlier
    # event, `mp:chain` included, recorded when its correction was.)
    by_block: dict[int, set[str]] = {}
    for event in found:
        assert seconds_of(event["recordTime"]) <= time.time() + 1
        if "errorDeclaration" not in event:
            by_block.setdefault(event["mp:chain"]["mp:blockNumber"], set()).add(event["recordTime"])
    assert all(len(times) == 1 for times in by_block.values())


@pytest.mark.parametrize(
    "case",
    [
        "eventType",
        "eventType list",
        "GE_eventTime",
        "LT_eventTime",
        "window with an offset",
        "EQ_action",
        "EQ_bizStep",
        "EQ_bizStep as a URN",
        "EQ_disposition",
        "EQ_bizLocation",
        "EQ_readPoint",
        "MATCH_epc",
        "MATCH_anyEPC",
        "MATCH_epcClass",
        "MATCH_inputEPCClass",
        "MATCH_outputEPCClass",
        "MATCH_anyEPCClass",
        "EQ_eventID",
        "EXISTS_errorDeclaration",
        "EXISTS_errorDeclaration false",
        "EQ_errorReason",
        "combined",
    ],
)
def test_each_parameter_selects_what_it_means(stack: QueryStack, case: str) -> None:
    events = stack.all_events()
    params, oracle = cases(stack, events)[case]
    expected = [event for event in events if oracle(event)]
    found = [without_record_time(event) for event in stack.events(params={**params, "perPage": "2"})]
    assert found == expected
    if case not in ("EQ_readPoint", "MATCH_epc", "MATCH_anyEPC", "EXISTS_errorDeclaration false"):
        assert 0 < len(expected) < len(events), case  # the case tells something apart


def test_record_time_windows_split_the_events_by_their_record_times(stack: QueryStack) -> None:
    found = stack.events(params={"perPage": "1000"})
    times = sorted({seconds_of(event["recordTime"]) for event in found})
    middle = times[len(times) // 2] if len(times) > 1 else times[0]
    since = stack.events(params={"GE_recordTime": iso(middle)})
    before = stack.events(params={"LT_recordTime": iso(middle)})
    assert [e["eventID"] for e in since] == [
        e["eventID"] for e in found if seconds_of(e["recordTime"]) >= middle
    ]
    assert [e["eventID"] for e in before] == [
        e["eventID"] for e in found if seconds_of(e["recordTime"]) < middle
    ]
    assert stack.events(params={"GE_recordTime": iso(times[-1] + 1)}) == []


def test_resources_of_the_events_resource_narrow_it_like_their_parameters(stack: QueryStack) -> None:
    events = stack.all_events()

    def ids(found: list[Event]) -> list[str]:
        return [event["eventID"] for event in found]

    transformations = [e for e in events if e["type"] == "TransformationEvent"]
    assert ids(stack.events("/eventTypes/TransformationEvent/events")) == ids(transformations)
    shipping = [e for e in events if e["bizStep"] == "shipping"]
    assert ids(stack.events("/bizSteps/shipping/events")) == ids(shipping)
    step_urn = quote("urn:epcglobal:cbv:bizstep:shipping", safe="")
    assert ids(stack.events(f"/bizSteps/{step_urn}/events")) == ids(shipping)
    inactive = [e for e in events if e.get("disposition") == "inactive"]
    assert ids(stack.events("/dispositions/inactive/events")) == ids(inactive) != []
    at_b = [e for e in events if e.get("bizLocation", {}).get("id") == site_uri(OTHER_SITE)]
    assert (
        ids(stack.events(f"/bizLocations/{quote(site_uri(OTHER_SITE), safe='')}/events")) == ids(at_b) != []
    )
    about_a1 = [e for e in events if lot_uri("A1") in classes(e, "quantityList", "inputQuantityList")]
    assert ids(stack.events(f"/epcs/{quote(lot_uri('A1'), safe='')}/events")) == ids(about_a1) != []
    assert stack.events(f"/readPoints/{quote(site_uri(SITE), safe='')}/events") == []
    later_shipping = stack.events("/bizSteps/shipping/events", {"GE_eventTime": iso(stack.cut)})
    assert ids(later_shipping) == [e["eventID"] for e in shipping if seconds_of(e["eventTime"]) >= stack.cut]


def test_one_event_by_its_id_comes_with_its_error_declaration(stack: QueryStack) -> None:
    events = stack.all_events()
    declared = next(event for event in events if "errorDeclaration" in event)
    same = [event for event in events if event["eventID"] == declared["eventID"]]
    assert len(same) == 2  # the event as captured, and its declaration
    body = stack.document(f"/events/{quote(declared['eventID'], safe='')}")
    found = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [without_record_time(event) for event in found] == same
    # a client that leaves the `?` of `?ver=CBV2.0` unencoded sends it as a query parameter
    unencoded = stack.get(f"/events/{declared['eventID']}")
    assert unencoded.status_code == 200, unencoded.text


def test_an_unknown_event_id_is_no_such_resource(stack: QueryStack) -> None:
    missing = "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"
    response = stack.get(f"/events/{quote(missing, safe='')}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "epcisException:NoSuchNameException"
    assert stack.get("/eventTypes/NoSuchEvent/events").json()["type"] == "epcisException:NoSuchNameException"
    assert stack.get("/nothing/here").status_code == 404


# ---------------------------------------------------------------------------- pages


def test_pages_return_every_event_once_and_the_last_page_has_no_link(stack: QueryStack) -> None:
    events = stack.all_events()
    response = stack.get("/events", {"perPage": "3"})
    pages = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        pages.append(page)
        url = next_url(response)
        if url is None:
            break
        assert "nextPageToken=" in url
        assert "perPage=3" in url
        response = stack.http.get(url)
    assert [len(page) for page in pages[:-1]] == [3] * (len(pages) - 1)
    assert 1 <= len(pages[-1]) <= 3
    assert [without_record_time(event) for page in pages for event in page] == events
    exact = stack.get("/events", {"perPage": str(len(events))})
    assert "link" not in exact.headers


def test_pages_stay_stable_when_events_are_added_after_the_first(stack: QueryStack) -> None:
    before = stack.all_events()
    first = stack.get("/events", {"perPage": "4"})
    url = next_url(first)
    assert url is not None
    seen = list(first.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
    lot_id = f"N{len(before)}"
    stack.chain.register(stack.chain.lot(lot_id, 500))
    stack.index()
    while url is not None:
        response = stack.http.get(url)
        assert response.status_code == 200, response.text
        seen += response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        url = next_url(response)
    after = stack.all_events()
    assert [without_record_time(event) for event in seen] == after
    assert after[: len(before)] == before
    assert classes(after[-1], "quantityList") == {lot_uri(lot_id)}


def test_a_page_token_is_refused_for_another_query(stack: QueryStack) -> None:
    first = stack.get("/events", {"perPage": "2", "EQ_bizStep": "shipping"})
    url = next_url(first)
    assert url is not None
    token = url.split("nextPageToken=")[1]
    response = stack.get("/events", {"perPage": "2", "EQ_bizStep": "receiving", "nextPageToken": token})
    assert response.status_code == 400
    assert response.json()["parameter"] == "nextPageToken"


# ---------------------------------------------------------------------------- errors and headers


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"EQ_bizstep": "shipping"}, "EQ_bizstep"),
        ({"limit": "3"}, "limit"),
        ({"orderBy": "eventTime"}, "orderBy"),
        ({"GE_eventTime": "yesterday"}, "GE_eventTime"),
        ({"GE_eventTime": "2026-11-03T08:00:00"}, "GE_eventTime"),
        ({"LT_recordTime": "2026-11-03"}, "LT_recordTime"),
        ({"perPage": "0"}, "perPage"),
        ({"perPage": "many"}, "perPage"),
        ({"EQ_action": "MOVE"}, "EQ_action"),
        ({"MATCH_epcClass": "not a uri"}, "MATCH_epcClass"),
        ({"EXISTS_errorDeclaration": "yes"}, "EXISTS_errorDeclaration"),
        ({"nextPageToken": "bogus"}, "nextPageToken"),
        ({"eventType": "Shipment"}, "eventType"),
        ({"EQ_bizStep": "shipping||receiving"}, "EQ_bizStep"),
    ],
)
def test_an_unknown_or_malformed_parameter_is_a_query_parameter_exception_naming_it(
    stack: QueryStack, params: dict[str, str], parameter: str
) -> None:
    response = stack.get("/events", params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "epcisException:QueryParameterException"
    assert body["status"] == 400
    assert body["parameter"] == parameter
    assert parameter in body["detail"]


def test_a_repeated_single_valued_parameter_is_refused(stack: QueryStack) -> None:
    response = stack.get("/events?GE_eventTime=2026-01-01T00:00:00Z&GE_eventTime=2026-01-02T00:00:00Z")
    assert response.status_code == 400
    assert response.json()["parameter"] == "GE_eventTime"


def test_every_answer_carries_the_gs1_headers(stack: QueryStack) -> None:
    for path in ("/events", "/eventTypes", "/bizSteps", "/queries", "/events?bogus=1"):
        response = stack.get(path)
        for header in ("GS1-EPCIS-Version", "GS1-CBV-Version", "GS1-EPCIS-Min", "GS1-EPCIS-Max"):
            assert response.headers[header] == "2.0.0", (path, header)
        assert response.headers["GS1-Extensions"].startswith("mp=")
        assert response.headers["GS1-EPC-Format"] == "Never_Translates"


def test_content_negotiation_answers_json_ld_or_json_and_406_otherwise(stack: QueryStack) -> None:
    assert stack.get("/events", Accept="application/json").headers["content-type"] == "application/json"
    ld = stack.get("/events", Accept="application/ld+json, application/json;q=0.5")
    assert ld.headers["content-type"] == "application/ld+json"
    assert stack.get("/events", Accept="*/*").headers["content-type"] == "application/ld+json"
    refused = stack.get("/events", Accept="application/xml")
    assert refused.status_code == 406
    assert refused.json()["type"] == "epcisException:NotAcceptableException"
    assert stack.get("/events", **{"GS1-EPCIS-Min": "2.1.0"}).status_code == 406
    assert stack.get("/events", **{"GS1-EPCIS-Max": "1.2"}).status_code == 406
    assert stack.get("/events", **{"GS1-EPCIS-Min": "1.2.0", "GS1-EPCIS-Max": "2.0.0"}).status_code == 200
    assert stack.get("/events", **{"GS1-EPC-Format": "Sometimes"}).status_code == 406
    urn = stack.get("/events", **{"GS1-EPC-Format": "Always_EPC_URN"})
    assert (urn.status_code, urn.headers["GS1-EPC-Format"]) == (200, "Never_Translates")


def test_options_answers_the_methods_and_the_gs1_headers(stack: QueryStack) -> None:
    for path, allow in (
        ("/", "OPTIONS, GET"),
        ("/events", "OPTIONS, GET, POST"),  # POST: capture one event
        ("/queries", "OPTIONS, GET, POST"),
        ("/queries/some-name", "OPTIONS, GET, DELETE"),
    ):
        response = stack.http.options(f"/epcis{path}")
        assert response.status_code == 204, path
        assert response.headers["allow"] == allow
        assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
        assert response.headers["GS1-CBV-Max"] == "2.0.0"


# ---------------------------------------------------------------------------- collections


def collected(stack: QueryStack, path: str, per_page: int = 2) -> list[Any]:
    members: list[Any] = []
    url: str | None = f"/epcis{path}?perPage={per_page}"
    while url is not None:
        response = stack.http.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        if isinstance(body, dict):
            assert body["type"] == "Collection"
            assert "@context" in body
            members += body["member"]
        else:
            members += body
        url = next_url(response)
    return members


def test_collections_list_their_members_a_page_at_a_time(stack: QueryStack) -> None:
    events = stack.all_events()
    assert collected(stack, "/eventTypes") == [
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    ]
    steps = collected(stack, "/bizSteps", per_page=7)
    assert {event["bizStep"] for event in events} <= set(steps)
    assert len(steps) == len(set(steps)) > 30
    dispositions = collected(stack, "/dispositions", per_page=10)
    assert {event["disposition"] for event in events if "disposition" in event} <= set(dispositions)
    locations = {event["bizLocation"]["id"] for event in events if "bizLocation" in event}
    assert collected(stack, "/bizLocations", per_page=1) == sorted(locations)
    assert collected(stack, "/readPoints") == []
    top = stack.get("/").json()
    assert {"events", "eventTypes", "bizSteps", "queries"} <= set(top["member"])


def test_a_collection_takes_only_paging_parameters(stack: QueryStack) -> None:
    response = stack.get("/bizSteps", {"EQ_bizStep": "shipping"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "EQ_bizStep"


# ---------------------------------------------------------------------------- named queries


def test_a_named_query_is_created_with_a_token_listed_run_and_deleted(stack: QueryStack) -> None:
    auth = {"Authorization": f"Bearer {stack.token}"}
    definition = {
        "name": "received-later",
        "query": {"EQ_bizStep": ["receiving"], "GE_eventTime": iso(stack.cut)},
    }
    assert stack.http.post("/epcis/queries", json=definition).status_code == 401
    created = stack.http.post("/epcis/queries", json=definition, headers=auth)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/epcis/queries/received-later"
    again = stack.http.post("/epcis/queries", json=definition, headers=auth)
    assert again.status_code == 409
    assert again.json()["type"] == "epcisException:ResourceAlreadyExistsException"

    assert stack.get("/queries/received-later").json() == [definition]
    assert definition in collected(stack, "/queries", per_page=1)
    expected = [
        e["eventID"]
        for e in stack.all_events()
        if e["bizStep"] == "receiving" and seconds_of(e["eventTime"]) >= stack.cut
    ]
    found = stack.events("/queries/received-later/events", {"perPage": "1"})
    assert [event["eventID"] for event in found] == expected != []
    body = stack.document("/queries/received-later/events")
    assert body["epcisBody"]["queryResults"]["queryName"] == "received-later"
    assert stack.get("/queries/received-later/events", {"EQ_bizStep": "shipping"}).status_code == 400

    assert stack.http.delete("/epcis/queries/received-later").status_code == 401
    assert stack.http.delete("/epcis/queries/received-later", headers=auth).status_code == 204
    assert stack.get("/queries/received-later").status_code == 404
    assert stack.get("/queries/received-later/events").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"name": "bad", "query": {"EQ_bizstep": ["shipping"]}}, 400, "QueryParameterException"),
        ({"name": "bad", "query": {"GE_eventTime": "soon"}}, 400, "QueryParameterException"),
        ({"name": "a/b", "query": {}}, 400, "ValidationException"),
        ({"name": "bad"}, 400, "ValidationException"),
        ({"name": "bad", "query": {"perPage": 3}}, 400, "ValidationException"),
    ],
)
def test_a_named_query_that_is_not_a_valid_query_is_refused(
    stack: QueryStack, body: dict[str, Any], status: int, kind: str
) -> None:
    auth = {"Authorization": f"Bearer {stack.token}"}
    response = stack.http.post("/epcis/queries", json=body, headers=auth)
    assert response.status_code == status, response.text
    assert response.json()["type"] == f"epcisException:{kind}"
    assert stack.get("/queries/bad").status_code == 404


GS1_SETTINGS = {
    "public_url": "https://provenance.example.net",
    "epcis_gs1_company_prefix": "4012345",
    "epcis_gs1_item_references": "Au-ore=012345,Au-conc=112345",
}


def test_with_gs1_identifiers_a_lot_is_found_by_any_form_and_written_in_the_form_asked(
    stack: QueryStack,
) -> None:
    settings = stack.runtime.settings.model_copy(update=GS1_SETTINGS)
    http = TestClient(create_app(dataclasses.replace(stack.runtime, settings=settings)))
    exported = http.get("/v1/epcis/events").json()["epcisBody"]["eventList"]
    link = "https://provenance.example.net/01/04012345123456/10/A1"  # GS1's 9.6.2 GTIN, lot A1
    about_a1 = [event["eventID"] for event in exported if link in str(event)]
    assert len(about_a1) >= 3  # registered, offered, accepted, consumed by the blend
    forms = (
        link,
        "https://id.gs1.org/01/04012345123456/10/A1",
        "urn:epc:class:lgtin:4012345.012345.A1",
        "https://provenance.example.net/lots/A1",
    )
    for form in forms:
        response = http.get("/epcis/events", params={"MATCH_anyEPCClass": form, "perPage": "100"})
        assert response.status_code == 200, response.text
        found = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert [event["eventID"] for event in found] == about_a1, form
        by_path = http.get(f"/epcis/epcs/{quote(form, safe='')}/events", params={"perPage": "100"})
        assert [
            e["eventID"] for e in by_path.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        ] == about_a1

    as_urns = http.get(
        "/epcis/events", params={"MATCH_anyEPCClass": link}, headers={"GS1-EPC-Format": "Always_EPC_URN"}
    )
    assert as_urns.headers["GS1-EPC-Format"] == "Always_EPC_URN"
    urn_events = as_urns.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert urn_events[0]["quantityList"][0]["epcClass"] == "urn:epc:class:lgtin:4012345.012345.A1"
    assert urn_events[0]["bizLocation"]["id"].startswith("urn:epc:id:sgln:4012345.00000.")
    assert [event["eventID"] for event in urn_events] == about_a1
    assert schema_errors(as_urns.json()) == []
    # the default deployment's identifiers are other URIs, so other eventIDs: none is served stale
    default_ids = {event["eventID"] for event in stack.all_events()}
    assert default_ids.isdisjoint(event["eventID"] for event in exported)

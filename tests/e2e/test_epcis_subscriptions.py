"""EPCIS 2.0 query subscriptions over HTTP (`/epcis/queries/{name}/subscriptions`), on SQLite and
PostgreSQL, one stack per database: a subscriber to a named query receives, through a receiver
that fails some calls, exactly the events `GET /epcis/queries/{name}/events` answers, once each by
delivery id, in chain order, signed in `GS1-Signature` with its token (checked with the recipe of
docs/deliveries.md); deleting the subscription (its creator only) stops them, and so does deleting
the query; a `dest` that reaches loopback or private addresses, a `schedule` and
`reportIfEmpty: true` are refused naming the field."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from provenance.chain.logsource import RpcLogSource
from provenance.deliveries import Deliverer, build_deliverer
from provenance.index.indexer import Indexer
from tests.dbs import empty_database
from tests.e2e.conftest import Stack, start_stack
from tests.epcis_receiver import TOKEN, EpcisReceiver
from tests.epcis_schema import schema_errors

QUERY = {"eventType": ["ObjectEvent"], "EQ_bizStep": ["commissioning", "shipping"]}
"""Registrations and hand-over offers; not acceptances (receiving) nor cancellations."""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("epcis-subscriptions")
    with empty_database(request.param, directory) as url:
        yield from start_stack(
            directory,
            "QSUB",
            database_url=url,
            delivery_allowed_hosts="127.0.0.1",
            delivery_timeout_s=2.0,
            delivery_retry_base_s=0.01,
            delivery_retry_max_s=0.05,
        )


@pytest.fixture
def receiver() -> Iterator[EpcisReceiver]:
    receiver = EpcisReceiver(fails=lambda number: number % 3 == 1).start()
    yield receiver
    receiver.stop()


def index(stack: Stack) -> None:
    runtime = stack.runtime
    Indexer(runtime.engine, RpcLogSource(runtime.w3, runtime.deployment.registry), runtime.deployment).sync()


def deliverer(stack: Stack) -> Deliverer:
    runtime = stack.runtime
    return build_deliverer(
        runtime.engine,
        runtime.settings,
        chain_id=runtime.deployment.chain_id,
        registry=runtime.deployment.registry,
    )


def deliver_until(stack: Stack, done: Callable[[], bool], seconds: float = 20.0) -> None:
    running = deliverer(stack)
    deadline = time.monotonic() + seconds
    try:
        while not done() and time.monotonic() < deadline:
            if not running.step():
                time.sleep(0.02)
    finally:
        running.close()


def named_query(stack: Stack, name: str) -> str:
    created = stack.post("/epcis/queries", stack.operator, {"name": name, "query": QUERY})
    assert created.status_code == 201, created.text
    return f"/epcis/queries/{name}/subscriptions"


def subscribe(stack: Stack, path: str, body: dict[str, Any], account: Any = None) -> Any:
    return stack.post(path, account or stack.buyer, body)


def query_events(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Every event of the named query, page after page, as a client reads them."""
    found: list[dict[str, Any]] = []
    url: str | None = f"/epcis/queries/{name}/events?perPage=2"
    while url is not None:
        response = stack.http.get(url)
        assert response.status_code == 200, response.text
        found.extend(response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
        link = response.headers.get("Link")
        url = link.split(">", 1)[0].removeprefix("<").removeprefix("http://testserver") if link else None
    return found


def without_record_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in event.items() if key != "recordTime"} for event in events]


def test_a_subscriber_receives_exactly_the_named_querys_events_once_each_in_chain_order(
    stack: Stack, receiver: EpcisReceiver
) -> None:
    before = [stack.register(), stack.register()]
    index(stack)
    path = named_query(stack, "registered-and-shipped")
    history = subscribe(
        stack,
        path,
        {
            "dest": receiver.url,
            "signatureToken": TOKEN,
            "stream": True,
            "initialRecordTime": "1970-01-01T00:00:00Z",
        },
    )
    assert history.status_code == 201, history.text
    assert history.headers["Location"].endswith(f"{path}/{history.json()['subscriptionID']}")
    assert "signatureToken" not in history.json()
    assert TOKEN not in history.text
    late = EpcisReceiver().start()
    try:
        fresh = subscribe(stack, path, {"dest": late.url, "signatureToken": TOKEN, "stream": True})
        assert fresh.status_code == 201, fresh.text
        kept, other = stack.register(), stack.register()
        stack.write(
            "/v1/handovers", stack.operator, {"lot_ids": [kept, other, before[0]], "to": stack.buyer.address}
        )
        stack.write("/v1/handovers/cancel", stack.operator, {"lot_ids": [other]})
        stack.write("/v1/handovers/accept", stack.buyer, {"lot_ids": [kept]})
        index(stack)
        expected = query_events(stack, "registered-and-shipped")
        assert len(expected) >= 7, "every registration and the three offers"

        deliver_until(stack, lambda: len(receiver.events()) >= len(expected) and len(late.events()) >= 5)

        assert without_record_time(receiver.events()) == without_record_time(expected)
        ids = [delivery_id for delivery_id, _ in receiver.acknowledged]
        assert len(ids) == len(set(ids)) == len(expected), "one delivery per chain event, none twice"
        assert receiver.requests > len(ids), "the receiver failed some calls: they were sent again"
        assert receiver.bad_signatures == 0
        for document in receiver.documents():
            assert schema_errors(document) == []
            results = document["epcisBody"]["queryResults"]
            assert (results["queryName"], results["subscriptionID"]) == (
                "registered-and-shipped",
                history.json()["subscriptionID"],
            )
        # subscribed without initialRecordTime: only what the index stored after it subscribed
        # (two registrations, three offers)
        assert without_record_time(late.events()) == without_record_time(expected[-5:])
        assert late.bad_signatures == 0
    finally:
        late.stop()


def test_deleting_a_subscription_stops_its_deliveries_and_only_its_creator_may(
    stack: Stack, receiver: EpcisReceiver
) -> None:
    receiver.fails = lambda _n: False
    index(stack)
    path = named_query(stack, "stopped")
    created = subscribe(stack, path, {"dest": receiver.url, "signatureToken": TOKEN, "stream": True}).json()
    one = f"{path}/{created['subscriptionID']}"
    assert stack.http.get(one, headers=stack.buyer.auth).json()["stream"] is True
    listed = stack.http.get(path, headers=stack.buyer.auth).json()
    assert [item["subscriptionID"] for item in listed] == [created["subscriptionID"]]
    assert stack.http.get(path, headers=stack.operator.auth).json() == [], "each account lists its own"
    assert stack.http.delete(one, headers=stack.operator.auth).status_code == 403
    stack.register()
    index(stack)
    deliver_until(stack, lambda: len(receiver.events()) >= 1)
    assert len(receiver.events()) == 1

    assert stack.http.delete(one, headers=stack.buyer.auth).status_code == 204
    stack.register()
    index(stack)
    deliver_until(stack, lambda: False, seconds=1.0)

    assert len(receiver.events()) == 1, "nothing after the deletion"
    assert stack.http.get(one, headers=stack.buyer.auth).status_code == 404


def test_deleting_the_named_query_ends_its_subscriptions(stack: Stack, receiver: EpcisReceiver) -> None:
    path = named_query(stack, "ended")
    created = subscribe(stack, path, {"dest": receiver.url, "stream": True}).json()
    assert stack.http.delete("/epcis/queries/ended", headers=stack.operator.auth).status_code == 204
    named_query(stack, "ended")  # the same name again: a new query, without the old subscriptions
    assert stack.http.get(path, headers=stack.buyer.auth).json() == []
    assert stack.http.get(f"{path}/{created['subscriptionID']}", headers=stack.buyer.auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dest": "http://127.0.0.2:9/hook", "stream": True}, "dest"),
        ({"dest": "http://[::1]:9/hook", "stream": True}, "dest"),
        ({"dest": "http://10.0.0.1/hook", "stream": True}, "dest"),
        ({"dest": "http://172.16.5.4/hook", "stream": True}, "dest"),
        ({"dest": "http://192.168.1.1/hook", "stream": True}, "dest"),
        ({"dest": "http://169.254.169.254/latest", "stream": True}, "dest"),
        ({"dest": "ftp://example.com/hook", "stream": True}, "dest"),
        ({"stream": True}, "dest"),
        ({"dest": "RECEIVER", "schedule": {"hour": "1", "minute": "5"}}, "schedule"),
        ({"dest": "RECEIVER"}, "stream"),
        ({"dest": "RECEIVER", "stream": False}, "stream"),
        ({"dest": "RECEIVER", "stream": True, "reportIfEmpty": True}, "reportIfEmpty"),
        ({"dest": "RECEIVER", "stream": True, "initialRecordTime": "yesterday"}, "initialRecordTime"),
        ({"dest": "RECEIVER", "stream": True, "signatureToken": 7}, "signatureToken"),
        ({"dest": "RECEIVER", "stream": True, "colour": "red"}, "colour"),
    ],
    ids=[
        "loopback",
        "ipv6-loopback",
        "private-10",
        "private-172",
        "private-192",
        "metadata",
        "ftp",
        "no-dest",
        "schedule",
        "no-stream",
        "stream-false",
        "report-if-empty",
        "bad-time",
        "bad-token",
        "extra",
    ],
)
def test_a_subscription_it_cannot_take_is_a_400_naming_the_field(
    stack: Stack, receiver: EpcisReceiver, body: dict[str, Any], field: str
) -> None:
    path = "/epcis/queries/refusals/subscriptions"
    if stack.http.get("/epcis/queries/refusals").status_code == 404:
        named_query(stack, "refusals")
    if body.get("dest") == "RECEIVER":
        body = {**body, "dest": receiver.url}

    response = subscribe(stack, path, body)

    assert response.status_code == 400, response.text
    problem = response.json()
    assert (problem["type"], problem["parameter"]) == ("epcisException:SubscriptionControlsException", field)


def test_subscriptions_need_a_token_and_an_existing_query(stack: Stack, receiver: EpcisReceiver) -> None:
    body = {"dest": receiver.url, "stream": True}
    assert stack.http.post("/epcis/queries/refusals/subscriptions", json=body).status_code == 401
    missing = subscribe(stack, f"/epcis/queries/{quote('no-such-query')}/subscriptions", body)
    assert missing.status_code == 404
    assert missing.json()["type"] == "epcisException:NoSuchNameException"


def test_subscriptions_are_listed_a_page_at_a_time(stack: Stack, receiver: EpcisReceiver) -> None:
    path = named_query(stack, "paged")
    made = sorted(
        subscribe(stack, path, {"dest": receiver.url, "stream": True}).json()["subscriptionID"]
        for _ in range(3)
    )

    first = stack.http.get(path, params={"perPage": "2"}, headers=stack.buyer.auth)
    link = first.headers["Link"]
    rest = stack.http.get(link.split(">", 1)[0].removeprefix("<"), headers=stack.buyer.auth)

    assert [item["subscriptionID"] for item in first.json()] == made[:2]
    assert [item["subscriptionID"] for item in rest.json()] == made[2:]
    assert "Link" not in rest.headers
    assert stack.http.get(path, params={"colour": "red"}, headers=stack.buyer.auth).status_code == 400
    for subscription in made:
        assert stack.http.delete(f"{path}/{subscription}", headers=stack.buyer.auth).status_code == 204

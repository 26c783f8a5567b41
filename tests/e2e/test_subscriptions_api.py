"""Buyers' webhook subscriptions over HTTP, on SQLite and PostgreSQL: create (the secret once),
list, read, delete; refusals that name the field; operators' views for admins only; and the whole
path: a buyer subscribes, lots are offered to it and accepted through the API, the indexer and
the deliverer run, and the buyer's receiver gets signed messages it verifies with the recipe of
docs/deliveries.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from provenance.chain.keys import dev_key_ref
from provenance.chain.logsource import RpcLogSource
from provenance.deliveries import build_deliverer
from provenance.domain.deliveries import signature_header
from provenance.index.indexer import Indexer
from tests.dbs import empty_database
from tests.delivery_receiver import Receiver, documented_verifier, running_receiver
from tests.e2e.conftest import Account, Stack, error_of, start_stack


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("subscriptions")
    with empty_database(request.param, directory) as url:
        yield from start_stack(
            directory, "SUBS", database_url=url, delivery_allowed_hosts="127.0.0.1", delivery_timeout_s=2.0
        )


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Account:
    _, token = stack.runtime.credentials.create("admin", stack.admin.address, dev_key_ref("admin"))
    return Account("admin", stack.admin, token)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


def subscribe(stack: Stack, account: Account | None, body: dict[str, Any]) -> Any:
    return stack.post("/v1/subscriptions", account, body)


def test_a_buyer_subscribes_reads_lists_and_deletes_and_sees_the_secret_once(
    stack: Stack, receiver: Receiver
) -> None:
    created = subscribe(stack, stack.buyer, {"callback_url": receiver.url, "held": True})
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["secret"].startswith("whsec_")
    assert len(subscription["secret"]) > 40
    path = f"/v1/subscriptions/{subscription['id']}"

    read = stack.http.get(path, headers=stack.buyer.auth).json()
    listed = stack.http.get("/v1/subscriptions", headers=stack.buyer.auth).json()
    assert read["secret"] is None
    assert read["callback_url"] == receiver.url
    assert (read["held"], read["lot_ids"], read["descendants"], read["event_types"]) == (True, [], True, [])
    assert subscription["id"] in [item["id"] for item in listed]
    assert all(item["secret"] is None for item in listed)
    assert stack.http.get(path, headers=stack.operator.auth).status_code == 404, "another account's"
    assert stack.http.delete(path, headers=stack.operator.auth).status_code == 404

    assert stack.http.delete(path, headers=stack.buyer.auth).status_code == 204
    assert stack.http.get(path, headers=stack.buyer.auth).status_code == 404
    assert stack.http.delete(path, headers=stack.buyer.auth).status_code == 404


def test_subscriptions_need_a_token(stack: Stack, receiver: Receiver) -> None:
    assert subscribe(stack, None, {"callback_url": receiver.url, "held": True}).status_code == 401
    assert stack.http.get("/v1/subscriptions").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"callback_url": "http://10.0.0.1/hook", "held": True}, "callback_url"),
        ({"callback_url": "http://169.254.169.254/latest", "held": True}, "callback_url"),
        ({"callback_url": "http://[::1]:9/hook", "held": True}, "callback_url"),
        ({"callback_url": "http://127.0.0.2:9/hook", "held": True}, "callback_url"),
        ({"callback_url": "ftp://example.com/hook", "held": True}, "callback_url"),
        ({"callback_url": "RECEIVER", "event_types": ["RoleGranted"], "held": True}, "event_types"),
        ({"callback_url": "RECEIVER"}, "lot_ids"),
        ({"callback_url": "RECEIVER", "lot_ids": ["not a label!"]}, "lot_ids[0]"),
        ({"callback_url": "RECEIVER", "held": True, "colour": "red"}, "colour"),
        ({"held": True}, "callback_url"),
    ],
    ids=[
        "private",
        "metadata",
        "ipv6-loopback",
        "other-loopback",
        "ftp",
        "event-type",
        "no-lots",
        "bad-lot",
        "extra",
        "missing-url",
    ],
)
def test_bad_subscriptions_are_422_naming_the_field(
    stack: Stack, receiver: Receiver, body: dict[str, Any], field: str
) -> None:
    if body.get("callback_url") == "RECEIVER":
        body = {**body, "callback_url": receiver.url}

    response = subscribe(stack, stack.buyer, body)

    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field


def test_operators_views_are_for_admins(stack: Stack, admin: Account) -> None:
    assert stack.http.get("/v1/deliveries", headers=stack.buyer.auth).status_code == 403
    assert stack.http.get("/v1/deliveries/dead-letters", headers=stack.buyer.auth).status_code == 403
    assert stack.http.get("/v1/deliveries", headers=admin.auth).status_code == 200
    assert stack.http.get("/v1/deliveries/dead-letters", headers=admin.auth).json() == []


def test_a_buyer_is_sent_signed_events_about_the_lots_it_receives(
    stack: Stack, receiver: Receiver, admin: Account
) -> None:
    runtime = stack.runtime
    indexer = Indexer(
        runtime.engine, RpcLogSource(runtime.w3, runtime.deployment.registry), runtime.deployment
    )
    indexer.sync()
    created = subscribe(stack, stack.buyer, {"callback_url": receiver.url, "held": True}).json()
    receiver.secret = created["secret"]
    kept, other = stack.register(), stack.register()
    stack.write("/v1/handovers", stack.operator, {"lot_ids": [kept, other], "to": stack.buyer.address})
    stack.write("/v1/handovers/cancel", stack.operator, {"lot_ids": [other]})
    stack.write("/v1/handovers/accept", stack.buyer, {"lot_ids": [kept]})
    indexer.sync()
    deliverer = build_deliverer(
        runtime.engine,
        runtime.settings,
        chain_id=runtime.deployment.chain_id,
        registry=runtime.deployment.registry,
    )

    deadline = time.monotonic() + 30
    try:
        while len(receiver.ids()) < 4 and time.monotonic() < deadline:
            deliverer.step()
    finally:
        deliverer.close()

    got = [(item.body["event"]["name"], item.lot_id) for item in receiver.items()]
    assert got == [
        ("CustodyOffered", kept),
        ("CustodyOffered", other),
        ("CustodyOfferCancelled", other),
        ("CustodyAccepted", kept),
    ]
    assert receiver.bad_signatures == 0
    assert all(item.body["destination"] == created["id"] for item in receiver.items())
    health = stack.http.get("/health").json()
    lag = next(item for item in health["deliveries"] if item["destination"] == created["id"])
    assert (lag["pending_events"], lag["dead_letters"], lag["failures"]) == (0, 0, 0)
    listed = stack.http.get("/v1/deliveries", headers=admin.auth).json()
    assert created["id"] in [item["destination"] for item in listed]
    mine = stack.http.get(f"/v1/subscriptions/{created['id']}", headers=stack.buyer.auth).json()
    assert mine["delivered"] == 4


def test_the_documented_recipe_accepts_only_fresh_signatures_of_the_secret() -> None:
    verify = documented_verifier()
    body = b'{"id":"evt_x"}'
    now = int(time.time())

    assert verify("whsec_k", signature_header("whsec_k", now, body), body)
    assert not verify("whsec_k", signature_header("whsec_k", now - 600, body), body)
    assert not verify("whsec_k", signature_header("whsec_other", now, body), body)
    assert not verify("whsec_k", signature_header("whsec_k", now, body), body + b" ")

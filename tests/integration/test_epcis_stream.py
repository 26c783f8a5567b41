"""EPCIS query subscriptions (`stream: true`) below the API, on SQLite and PostgreSQL: the real
indexer on an eth-tester chain, the deliverer with the `epcis-query` kind, a receiver on 127.0.0.1
that fails some calls. Every kind of event we emit (registrations, transformations, hand-overs,
assays, a correction's declaration and corrective event) is delivered exactly as the query engine
answers the named query, once each, in chain order; a reorg retracts what it undid, newest first,
before the new branch. The deliverer's clock is a fake one the test moves."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from provenance.config import Settings
from provenance.deliveries import Deliverer, DeliveryStore, EpcisQueryKind
from provenance.deliveries.query_subscriptions import QuerySubscriptionRequest, QuerySubscriptions
from provenance.domain.deliveries import AllowList, RetryPolicy
from provenance.domain.values import CorrectionReason
from provenance.epcis.query import parse_query, query_of_definition
from provenance.index.epcis_queries import EpcisQueries, NamedQueries
from tests.epcis_receiver import TOKEN, EpcisReceiver
from tests.epcis_schema import schema_errors
from tests.index_chain import IndexChain
from tests.integration.test_deliveries import FakeClock, history

SETTINGS = Settings(delivery_allowed_hosts="127.0.0.1")


@pytest.fixture
def chain() -> IndexChain:
    return IndexChain.fresh()


@pytest.fixture
def receiver() -> Iterator[EpcisReceiver]:
    receiver = EpcisReceiver(fails=lambda number: number % 3 == 1).start()
    yield receiver
    receiver.stop()


def subscribe(engine: Engine, receiver: EpcisReceiver, name: str, query: dict[str, Any]) -> str:
    queries = NamedQueries(engine)
    queries.create(name, query, "0x" + "11" * 20)
    destination = QuerySubscriptions(DeliveryStore(engine), queries, SETTINGS).subscribe(
        name,
        QuerySubscriptionRequest(receiver.url, TOKEN, None, None),
        account="0x" + "22" * 20,
        credential_id="test",
        epc_format=None,
    )
    return destination.id


def deliverer(chain: IndexChain, engine: Engine, clock: FakeClock) -> Deliverer:
    kind = EpcisQueryKind(
        engine=engine,
        scheme=SETTINGS.epcis_identifiers(),
        chain_id=chain.client.chain_id,
        registry=chain.client.address,
        allowed=AllowList.parse("127.0.0.1"),
        timeout_s=1.0,
    )  # signs at the real time: the receiver checks it against its own clock
    return Deliverer(
        DeliveryStore(engine),
        {kind.name: kind},
        chain_id=chain.client.chain_id,
        policy=RetryPolicy(base_s=1.0, max_s=16.0, give_up_after_s=3_600.0),
        clock=clock,
        rng=random.Random(3),
    )


def drive(sender: Deliverer, clock: FakeClock, done: Any) -> None:
    try:
        for _ in range(400):
            sender.step()
            if done():
                return
            clock.advance(5.0)
        raise AssertionError("the deliveries did not finish")
    finally:
        sender.close()


def answered(engine: Engine, query: dict[str, Any]) -> list[dict[str, Any]]:
    """What `GET /epcis/queries/{name}/events` answers for the query (the same engine, every page)."""
    with engine.connect() as connection:
        page = EpcisQueries(connection, SETTINGS.epcis_identifiers()).page(
            parse_query(query_of_definition(query)), per_page=1_000
        )
    assert page.next_key is None
    return page.events


def without_record_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in event.items() if key != "recordTime"} for event in events]


@pytest.mark.parametrize(
    "query",
    [{}, {"MATCH_anyEPCClass": ["LOT"]}],
    ids=["everything", "one-lot-by-uri"],
)
def test_the_stream_is_what_the_query_answers_once_each_in_chain_order(
    chain: IndexChain, engine: Engine, receiver: EpcisReceiver, query: dict[str, Any]
) -> None:
    if "MATCH_anyEPCClass" in query:  # S1 (made by a split, assayed, sold), by the URI a client reads
        query = {"MATCH_anyEPCClass": [SETTINGS.epcis_identifiers().lot("S1")]}
    subscription = subscribe(engine, receiver, "q", query)
    history(chain)
    chain.indexer(engine).sync()
    expected = answered(engine, query)
    assert expected, "the history holds events of the query"
    clock = FakeClock()

    drive(deliverer(chain, engine, clock), clock, lambda: len(receiver.events()) >= len(expected))

    assert without_record_time(receiver.events()) == without_record_time(expected)
    ids = [delivery_id for delivery_id, _ in receiver.acknowledged]
    assert len(ids) == len(set(ids)), "nothing twice"
    assert receiver.requests > len(ids), "the receiver failed some calls"
    assert receiver.bad_signatures == 0
    for document in receiver.documents():
        assert schema_errors(document) == []
        assert document["epcisBody"]["queryResults"]["subscriptionID"] == subscription
    if not query:  # the correction's declaration and corrective event come in one delivery
        sizes = [
            len(document["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
            for document in receiver.documents()
        ]
        assert 2 in sizes


def test_a_reorg_retracts_the_deliveries_it_undid_newest_first_then_sends_the_new_branch(
    chain: IndexChain, engine: Engine, receiver: EpcisReceiver
) -> None:
    receiver.fails = lambda _n: False
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    indexer = chain.indexer(engine)
    indexer.sync()
    subscribe(engine, receiver, "all", {})
    chain.client.hand_over(chain.registrar, ["A1"], chain.processor)
    fork_point = chain.tester.take_snapshot()
    chain.client.accept_handover(chain.processor, ["A1"])  # the branch that will be dropped
    chain.correct(chain.admin, "A2", CorrectionReason.DID_NOT_OCCUR, -2_000)
    indexer.sync()
    clock = FakeClock()
    drive(deliverer(chain, engine, clock), clock, lambda: len(receiver.acknowledged) >= 3)
    delivered = [delivery_id for delivery_id, _ in receiver.acknowledged]
    assert len(delivered) == 3, "the offer, the acceptance, the correction"

    chain.tester.revert_to_snapshot(fork_point)
    chain.client.cancel_handover(chain.registrar, ["A1"])
    chain.register(chain.lot("C1", 700))
    assert indexer.sync().reorgs == 1
    drive(deliverer(chain, engine, clock), clock, lambda: len(receiver.acknowledged) >= 6)

    retractions = receiver.retractions()
    assert [body["mp:retracts"] for body in retractions] == [delivered[2], delivered[1]], "newest first"
    assert all(
        body["type"] == "urn:mineral-provenance:epcis:retraction" and body["title"] for body in retractions
    )
    last = receiver.documents()[-1]
    assert [event["bizStep"] for event in last["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [
        "commissioning"
    ], "then the new branch: C1's registration"
    assert without_record_time(receiver.events()[-1:]) == without_record_time(answered(engine, {})[-1:])

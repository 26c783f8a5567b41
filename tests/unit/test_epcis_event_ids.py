"""Stored events and eventIDs (`provenance.index.epcis_ids_store`), on SQLite and PostgreSQL over a
small eth-tester history with every kind of event: the indexer stores each event, and its CBV 2.0
hash, with the block that holds it; reads take them from the index (and build and hash nothing)
while they were made with the deployment's identifiers and this code's mapping; other identifiers
or another mapping are noticed and the events stored anew, never served stale. The oracle is the
export built and hashed on the fly (`EpcisFacts` + `events_of`), which reads nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

import provenance.epcis.export as epcis
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.epcis.export import events_of
from provenance.epcis.ids import LOCAL_SCHEME, Gs1Keys, IdentifierScheme
from provenance.epcis.query import parse_query
from provenance.index import epcis_ids_store, epcis_queries
from provenance.index.db import make_engine, upgrade
from provenance.index.epcis_documents import current_fingerprints, mapping_fingerprint
from provenance.index.epcis_facts import EpcisFacts, EpcisFilter
from provenance.index.epcis_models import EpcisEventId, EpcisIdScheme
from provenance.index.epcis_queries import EpcisQueries
from provenance.index.models import BlockTime
from tests.dbs import empty_database
from tests.index_chain import IndexChain

GS1 = IdentifierScheme("https://mine.example.net", Gs1Keys("4012345", (("Au-ore", "012345"),)))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def indexed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[IndexChain, Engine]]:
    data_dir: Path = tmp_path_factory.mktemp("event-ids")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        c = IndexChain.fresh()
        c.register(c.lot("A1", 1_000), c.lot("A2", 2_000), c.lot("A3", 500))
        c.client.hand_over(c.registrar, ["A1", "A3"], c.processor)
        c.client.accept_handover(c.processor, ["A1", "A3"])
        c.transform(TransformKind.BLEND, [("A1", 1_000), ("A3", 500)], [("X", 1_400)], 100)
        c.assay("X", 8_800)
        c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -150)
        c.correct(c.processor, "X", CorrectionReason.DID_NOT_OCCUR, -1_400)
        engine = make_engine(url)
        try:
            c.indexer(engine).sync()
            yield c, engine
        finally:
            engine.dispose()


def hashed_export(engine: Engine, scheme: IdentifierScheme) -> list[dict[str, Any]]:
    """Every event as the export makes it: hashed on the fly, no stored ID read."""
    facts = EpcisFacts(engine)
    chain = facts.chain()
    assert chain is not None
    found = facts.facts(EpcisFilter(), 1_000)
    with engine.connect() as connection:
        times = {
            number: timestamp
            for number, timestamp in connection.execute(select(BlockTime.number, BlockTime.timestamp))
        }
    return events_of(found, chain, times.__getitem__, facts.names(scheme, found))


def stored(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(EpcisEventId.event_id).order_by(
                    EpcisEventId.block_number,
                    EpcisEventId.tx_index,
                    EpcisEventId.log_index,
                    EpcisEventId.part,
                )
            )
        )


def fingerprint(engine: Engine) -> str | None:
    with engine.connect() as connection:
        found: str | None = connection.scalar(select(EpcisIdScheme.fingerprint))
        return found


def page(engine: Engine, scheme: IdentifierScheme, parameters: list[tuple[str, str]]) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return EpcisQueries(connection, scheme).page(parse_query(parameters), per_page=1_000).events


def documents(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            json.loads(document)
            for document in connection.scalars(
                select(EpcisEventId.document).order_by(
                    EpcisEventId.block_number,
                    EpcisEventId.tx_index,
                    EpcisEventId.log_index,
                    EpcisEventId.part,
                )
            )
        ]


def pages(engine: Engine, parameters: list[tuple[str, str]], per_page: int) -> list[tuple[list[str], Any]]:
    """Every page of a query, each as its texts and keys, following the next keys."""
    query = parse_query(parameters)
    found = []
    with engine.connect() as connection:
        while True:
            got = EpcisQueries(connection, LOCAL_SCHEME).page(query, per_page=per_page)
            found.append((got.texts, got.keys))
            if got.next_key is None:
                return found
            query = replace(query, after=got.next_key)


def set_mapping(engine: Engine, mapping: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(EpcisIdScheme).values(mapping=mapping))


QUERIES = [
    [],
    [("EQ_bizStep", "receiving")],
    [("EQ_bizStep", "shipping"), ("EQ_bizStep", "commissioning")],
    [("eventType", "TransformationEvent")],
    [("EXISTS_errorDeclaration", "true")],
    [("EQ_bizStep", "decommissioning")],
    [("EQ_bizStep", "inspecting")],
    [("MATCH_anyEPCClass", epcis.lot_uri("A1"))],
    [("EQ_bizLocation", epcis.site_uri("PIT-A"))],
]


def test_the_indexer_stores_each_events_hash_in_chain_order(indexed: tuple[IndexChain, Engine]) -> None:
    _, engine = indexed
    oracle = hashed_export(engine, LOCAL_SCHEME)
    # 3 registrations, 2 offers, 2 acceptances, the blend, the assay, 2 x (declaration + correction)
    assert len(oracle) == 13
    assert stored(engine) == [event["eventID"] for event in oracle]
    assert fingerprint(engine) == LOCAL_SCHEME.fingerprint()


def test_the_indexer_stores_each_event_as_the_export_makes_it(indexed: tuple[IndexChain, Engine]) -> None:
    _, engine = indexed
    assert documents(engine) == hashed_export(engine, LOCAL_SCHEME)


@pytest.mark.parametrize("parameters", QUERIES)
def test_pages_of_stored_events_are_the_pages_built_on_the_fly(
    indexed: tuple[IndexChain, Engine], parameters: list[tuple[str, str]]
) -> None:
    _, engine = indexed
    stored = pages(engine, parameters, 2)
    assert stored[0][0], "the query finds events"
    set_mapping(engine, "0" * 64)  # not this code's: every read builds and hashes
    try:
        built = pages(engine, parameters, 2)
    finally:
        set_mapping(engine, current_fingerprints(LOCAL_SCHEME)[1])
    assert stored == built
    assert all('"recordTime":"' in text for texts, _ in stored for text in texts)


def test_reads_take_the_stored_events_and_build_and_hash_nothing(
    indexed: tuple[IndexChain, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, engine = indexed
    oracle = hashed_export(engine, LOCAL_SCHEME)

    def no_hashing(*_: object, **__: object) -> str:
        raise AssertionError("a read hashed an event")

    def no_building(*_: object, **__: object) -> dict[str, Any]:
        raise AssertionError("a read built an event")

    monkeypatch.setattr(epcis, "event_hash", no_hashing)
    monkeypatch.setattr(epcis_queries, "event_of", no_building)
    everything = page(engine, LOCAL_SCHEME, [])
    assert [event["eventID"] for event in everything] == [event["eventID"] for event in oracle]
    assert [{k: v for k, v in event.items() if k != "recordTime"} for event in everything] == oracle
    declaration = next(event for event in oracle if "errorDeclaration" in event)
    [corrective_id] = declaration["errorDeclaration"]["correctiveEventIDs"]
    by_id = page(engine, LOCAL_SCHEME, [("EQ_eventID", declaration["eventID"])])
    assert {event["eventID"] for event in by_id} == {declaration["eventID"]}
    assert len(by_id) == 2  # the declared event and its declaration
    by_corrective = page(engine, LOCAL_SCHEME, [("EQ_correctiveEventID", corrective_id)])
    assert [event["eventID"] for event in by_corrective] == [declaration["eventID"]]
    assert page(engine, LOCAL_SCHEME, [("EQ_eventID", "ni:///sha-256;00?ver=CBV2.0")]) == []


def test_with_other_identifiers_the_stored_ids_are_not_served(indexed: tuple[IndexChain, Engine]) -> None:
    _, engine = indexed
    oracle = hashed_export(engine, GS1)
    served = page(engine, GS1, [])
    assert [event["eventID"] for event in served] == [event["eventID"] for event in oracle]
    assert set(stored(engine)).isdisjoint(event["eventID"] for event in served)
    one = oracle[3]["eventID"]
    assert [event["eventID"] for event in page(engine, GS1, [("EQ_eventID", one)])] == [one]


def test_events_stored_by_another_mapping_are_not_served_and_are_stored_anew_at_start(
    indexed: tuple[IndexChain, Engine],
) -> None:
    chain, engine = indexed
    oracle = hashed_export(engine, LOCAL_SCHEME)
    with engine.begin() as connection:
        # as an older version of the code might have written them
        connection.execute(update(EpcisEventId).values(document='{"eventID":"stale"}'))
    set_mapping(engine, "0" * 64)
    try:
        served = page(engine, LOCAL_SCHEME, [])
        assert [{k: v for k, v in event.items() if k != "recordTime"} for event in served] == oracle
    finally:
        chain.indexer(engine).sync()
    with engine.connect() as connection:
        assert EpcisQueries(connection, LOCAL_SCHEME).stored_current()
    assert documents(engine) == oracle


def test_the_mapping_fingerprint_is_the_mappings_output(monkeypatch: pytest.MonkeyPatch) -> None:
    before = mapping_fingerprint(LOCAL_SCHEME)
    assert mapping_fingerprint(GS1) != before  # the specimens are written with the scheme's names
    mapping_fingerprint.cache_clear()
    changed = epcis.kilograms
    monkeypatch.setattr(epcis, "kilograms", lambda grams: changed(grams) + 1)
    try:
        assert mapping_fingerprint(LOCAL_SCHEME) != before
    finally:
        mapping_fingerprint.cache_clear()


def test_an_indexer_with_other_identifiers_recomputes_them_at_start(
    indexed: tuple[IndexChain, Engine],
) -> None:
    chain, engine = indexed
    try:
        chain.indexer(engine, identifiers=GS1).sync()
        assert fingerprint(engine) == GS1.fingerprint()
        assert stored(engine) == [event["eventID"] for event in hashed_export(engine, GS1)]
        assert documents(engine) == hashed_export(engine, GS1)
    finally:
        chain.indexer(engine).sync()
    assert fingerprint(engine) == LOCAL_SCHEME.fingerprint()
    assert stored(engine) == [event["eventID"] for event in hashed_export(engine, LOCAL_SCHEME)]


def test_a_backfill_stores_the_core_rows_first_and_the_events_once_at_the_head(
    indexed: tuple[IndexChain, Engine], tmp_path: Path
) -> None:
    chain, engine = indexed
    oracle = hashed_export(engine, LOCAL_SCHEME)
    with empty_database("sqlite", tmp_path) as url:
        upgrade(url)
        fresh = make_engine(url)
        try:
            indexer = chain.indexer(fresh)
            result = indexer.sync(defer_epcis=True)
            assert result.events > 0
            # the ranges stored no event: reads build and hash them meanwhile, as they must
            assert stored(fresh) == []
            assert fingerprint(fresh) is None
            built = page(fresh, LOCAL_SCHEME, [])
            assert [{k: v for k, v in event.items() if k != "recordTime"} for event in built] == oracle
            assert indexer.store_epcis_events() == len(oracle)
            assert documents(fresh) == oracle
            assert fingerprint(fresh) == LOCAL_SCHEME.fingerprint()
            assert indexer.store_epcis_events() is None  # current: each range stores its own from now on
            assert chain.indexer(fresh).sync().blocks == 0
            assert documents(fresh) == oracle
        finally:
            fresh.dispose()


def test_a_stopped_refresh_resumes_after_the_last_block_it_stored(
    indexed: tuple[IndexChain, Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh killed part way (a crash, a restart) goes on where it stopped, for the same
    fingerprints; for others it starts over. Reads trust none of it until it is whole."""
    chain, engine = indexed
    oracle = hashed_export(engine, LOCAL_SCHEME)
    monkeypatch.setattr(epcis_ids_store, "REFRESH_FIRST_BLOCKS", 1)  # one block per transaction
    monkeypatch.setattr(epcis_ids_store, "REFRESH_BLOCKS", 1)
    real = epcis_ids_store.write_event_ids
    calls: list[int] = []
    storing: list[int] = []

    def killed_after_two_blocks_of_events(
        connection: Any, scheme: IdentifierScheme, first: int, last: int
    ) -> int:
        if len(storing) == 2:
            raise SystemExit("killed")
        calls.append(first)
        stored = real(connection, scheme, first, last)
        if stored:
            storing.append(first)
        return stored

    with empty_database("sqlite", tmp_path) as url:
        upgrade(url)
        fresh = make_engine(url)
        try:
            chain.indexer(fresh).sync(defer_epcis=True)
            monkeypatch.setattr(epcis_ids_store, "write_event_ids", killed_after_two_blocks_of_events)
            with pytest.raises(SystemExit):
                chain.indexer(fresh).sync()
            with fresh.connect() as connection:
                assert not EpcisQueries(connection, LOCAL_SCHEME).stored_current()
                last_stored = connection.scalar(select(func.max(EpcisEventId.block_number)))
            assert last_stored == storing[-1]
            built = page(fresh, LOCAL_SCHEME, [])
            assert [{k: v for k, v in event.items() if k != "recordTime"} for event in built] == oracle

            # another process, the same identifiers: it resumes after the last block stored
            monkeypatch.setattr(epcis_ids_store, "write_event_ids", real)
            resumed: list[int] = []
            monkeypatch.setattr(
                epcis_ids_store,
                "write_event_ids",
                lambda connection, scheme, first, last: (
                    resumed.append(first) or real(connection, scheme, first, last)
                ),
            )
            chain.indexer(fresh).sync()
            assert resumed[0] == last_stored + 1
            assert documents(fresh) == oracle
            assert fingerprint(fresh) == LOCAL_SCHEME.fingerprint()

            # stopped again, then started with other identifiers: it starts over
            with fresh.begin() as connection:
                connection.execute(update(EpcisIdScheme).values(id=epcis_ids_store.PENDING))
            resumed.clear()
            chain.indexer(fresh, identifiers=GS1).sync()
            assert resumed[0] == calls[0]
            assert documents(fresh) == hashed_export(fresh, GS1)
            assert fingerprint(fresh) == GS1.fingerprint()
        finally:
            fresh.dispose()


def test_an_index_far_behind_catches_up_first_and_stores_the_new_events_once_at_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Current stored events, and a cursor far behind the head: the ranges store no event (reads
    build meanwhile), and the pass at the head stores only the blocks after the last stored."""
    chain = IndexChain.fresh()
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    with empty_database("sqlite", tmp_path) as url:
        upgrade(url)
        fresh = make_engine(url)
        try:
            chain.indexer(fresh).sync()
            before = stored(fresh)
            with fresh.connect() as connection:
                last_stored = connection.scalar(select(func.max(EpcisEventId.block_number)))
            chain.client.hand_over(chain.registrar, ["A1"], chain.processor)
            chain.client.accept_handover(chain.processor, ["A1"])
            chain.assay("A2", 5_000)
            behind = chain.indexer(fresh, catch_up_blocks=1)
            assert behind.sync(defer_epcis=True).events > 0
            assert stored(fresh) == before
            with fresh.connect() as connection:
                assert not EpcisQueries(connection, LOCAL_SCHEME).stored_current()
            oracle = hashed_export(fresh, LOCAL_SCHEME)
            built = page(fresh, LOCAL_SCHEME, [])
            assert [{k: v for k, v in event.items() if k != "recordTime"} for event in built] == oracle

            real = epcis_ids_store.write_event_ids
            written: list[int] = []

            def recorded(connection: Any, scheme: IdentifierScheme, first: int, last: int) -> int:
                written.append(first)
                return real(connection, scheme, first, last)

            monkeypatch.setattr(epcis_ids_store, "write_event_ids", recorded)
            assert behind.store_epcis_events() == len(oracle) - len(before)
            assert written[0] == last_stored + 1
            assert documents(fresh) == oracle
            assert fingerprint(fresh) == LOCAL_SCHEME.fingerprint()

            # near the head (the default), each range stores its own events again
            chain.assay("A1", 4_000)
            assert chain.indexer(fresh).sync(defer_epcis=True).events > 0
            assert documents(fresh) == hashed_export(fresh, LOCAL_SCHEME)
        finally:
            fresh.dispose()

"""The data hub publisher end to end below the API, on SQLite and PostgreSQL: the real indexer on
an eth-tester chain fills the index; the deliverer publishes every lot fact in NGSI-LD batch
upserts to a local hub (tests/hub_receiver.py) that speaks ETSI's or KETI's batch semantics,
needs an OAuth token, and fails at random (seeded): whole batches answered 500, single entities
refused with a 4xx, tokens revoked. Checked: every fact arrives, none is applied twice or out of
order per lot, what the hub ends up holding for each lot equals the lot as our own NGSI-LD read
endpoint states it from the index, and a reorg's retraction deletes the undone fact's receipt."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from provenance.background import Child, deliveries_main, release_lease_of
from provenance.config import Settings
from provenance.deliveries import Deliverer, DeliveryStore
from provenance.deliveries.hub import KIND, ClientCredentials, HubConfig, HubKind, UrllibTransport
from provenance.domain.deliveries import RetryPolicy, SubscriptionFilter
from provenance.domain.ngsi_ld import LOT_FACTS, key_values, lot_entity, receipt_entity_id
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.index.models import Event
from provenance.index.ngsi_queries import NgsiQueries
from provenance.leadership import DELIVERIES
from tests.hub_receiver import CLIENT_ID, CLIENT_SECRET, HubReceiver
from tests.index_chain import SITE, IndexChain
from tests.integration.test_deliveries import FakeClock, drive
from tests.integration.test_deliveries_child import wait_for

CONTEXT = "https://provenance.test-city.kr/ngsi-ld/context.jsonld"


@pytest.fixture
def chain() -> IndexChain:
    return IndexChain.fresh()


def history(chain: IndexChain) -> None:
    """Registrations, handovers, a split, a merge, an assay-free correction: facts of many lots."""
    chain.register(*(chain.lot(f"A{i}", 1_000 + i) for i in range(6)))
    chain.client.hand_over(chain.registrar, ["A0", "A1", "A2", "A3"], chain.processor)
    chain.client.accept_handover(chain.processor, ["A0", "A1", "A2", "A3"])
    chain.transform(TransformKind.SPLIT, [("A0", 1_000)], [("S1", 400), ("S2", 600)], 0)
    chain.transform(TransformKind.MERGE, [("S1", 400), ("A1", 1_001)], [("M1", 1_300)], 101)
    chain.correct(chain.processor, "S2", CorrectionReason.INCORRECT_DATA, -100)
    chain.client.hand_over(chain.processor, ["M1"], chain.buyer)
    chain.client.cancel_handover(chain.processor, ["M1"])
    chain.client.hand_over(chain.processor, ["M1", "A2"], chain.buyer)
    chain.client.accept_handover(chain.buyer, ["M1", "A2"])
    chain.register(*(chain.lot(f"B{i}", 2_000 + i) for i in range(5)))


def config(hub: HubReceiver, batch_size: int) -> HubConfig:
    return HubConfig.from_settings(
        Settings(
            hub_ingest_url=hub.ingest_url,
            hub_api=hub.api,  # type: ignore[arg-type]
            hub_context_url=CONTEXT,
            hub_batch_size=batch_size,
            hub_timeout_s=2.0,
            hub_token_url=hub.token_url,
            hub_client_id=CLIENT_ID,
            hub_client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
        )
    )


def publisher(
    chain: IndexChain, engine: Engine, hub: HubReceiver, clock: FakeClock, batch_size: int
) -> Deliverer:
    transport = UrllibTransport()
    hub_config = config(hub, batch_size)
    kind = HubKind(
        hub_config,
        NgsiQueries(engine),
        chain_id=chain.client.chain_id,
        registry=chain.client.address,
        transport=transport,
        credentials=ClientCredentials(hub_config, transport),
    )
    return Deliverer(
        DeliveryStore(engine),
        {kind.name: kind},
        chain_id=chain.client.chain_id,
        policy=RetryPolicy(base_s=1.0, max_s=8.0, give_up_after_s=86_400.0),
        clock=clock,
        rng=random.Random(5),
    )


def add_hub(engine: Engine, hub: HubReceiver) -> str:
    store = DeliveryStore(engine)
    destination = store.create(
        kind=KIND,
        url=hub.ingest_url,
        secret="",
        filter=SubscriptionFilter(),
        owner=None,
        credential_id=None,
        now=0.0,
        prefix="hub_",
    )
    store.replay(destination.id, 0)
    return destination.id


def facts(engine: Engine) -> list[Any]:
    """The index's lot facts in chain order."""
    e = Event.__table__.c
    query = (
        select(e.name, e.lot_id, e.block_number, e.tx_index, e.log_index, e.tx_hash)
        .where(e.lot_id.is_not(None))
        .order_by(e.block_number, e.tx_index, e.log_index)
    )
    with engine.connect() as connection:
        return [row for row in connection.execute(query) if row.name in LOT_FACTS]


def published_state_matches_the_index(hub: HubReceiver, engine: Engine) -> None:
    """Folding the published facts gives each lot as the index states it now (our read endpoint's
    entity), attribute for attribute."""
    queries = NgsiQueries(engine)
    lots = {row.lot_id for row in facts(engine)}
    for lot_id in lots:
        state = queries.lot(lot_id)
        assert state is not None
        expected = key_values(lot_entity(state, None))
        held = hub.entities[expected["id"]]
        assert key_values(held) == expected, lot_id


@pytest.mark.parametrize("api", ["etsi", "keti"])
def test_every_fact_reaches_a_failing_hub_once_and_in_order_per_lot(
    chain: IndexChain, engine: Engine, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    history(chain)
    chain.indexer(engine).sync()
    hub = HubReceiver(api=api, seed=17, fail_batch=0.25, refuse_entity=0.1, revoke_token=0.1)
    with hub.running():
        destination = add_hub(engine, hub)
        clock = FakeClock()
        sender = publisher(chain, engine, hub, clock, batch_size=4)
        expected = facts(engine)
        receipts = {receipt_entity_id(chain.client.chain_id, row.tx_hash, row.log_index) for row in expected}
        drive(sender, clock, lambda: receipts <= set(hub.entities), rounds=600)
        sender.close()

    assert hub.malformed == []
    assert hub.out_of_order == []
    assert hub.twice == [], "a partly taken message is sent again with the rest only"
    per_lot: dict[str, list[tuple[int, ...]]] = {}
    for entity_id, position in hub.applied:
        per_lot.setdefault(entity_id, []).append(position)
    wanted: dict[str, list[tuple[int, ...]]] = {}
    for row in expected:
        wanted.setdefault(row.lot_id, []).append((row.block_number, row.tx_index, row.log_index))
    assert {lot.rsplit(":", 1)[1]: positions for lot, positions in per_lot.items()} == wanted
    assert max(hub.batch_sizes) <= 4 * 3, "a batch holds at most 4 facts of 3 entities each"
    assert any(size > 3 for size in hub.batch_sizes), "facts of several lots share a batch"
    assert hub.batches_failed > 0
    assert hub.entities_refused > 0
    assert hub.unauthorised > 0, "a revoked token was met"
    assert hub.tokens_issued > 1, "and a new one fetched"
    published_state_matches_the_index(hub, engine)
    sites = {entity_id for entity_id in hub.entities if ":MiningSite:" in entity_id}
    assert sites == {"urn:ngsi-ld:MiningSite:PIT-A"}
    stored = DeliveryStore(engine)
    assert len(stored.log_entries(destination)) == len(expected)
    assert stored.dead_letters(destination) == []
    logged = caplog.text + "".join(str(entry.error) for entry in stored.log_entries(destination))
    assert CLIENT_SECRET not in logged
    assert "Bearer" not in logged


def test_a_reorg_deletes_the_undone_facts_receipt_and_restates_the_lot(
    chain: IndexChain, engine: Engine
) -> None:
    chain.register(chain.lot("A1", 1_000), chain.lot("A2", 2_000))
    chain.client.hand_over(chain.registrar, ["A1"], chain.processor)
    indexer = chain.indexer(engine)
    indexer.sync()
    hub = HubReceiver(api="etsi", seed=1)
    with hub.running():
        add_hub(engine, hub)
        clock = FakeClock()
        sender = publisher(chain, engine, hub, clock, batch_size=10)
        fork_point = chain.tester.take_snapshot()
        chain.client.accept_handover(chain.processor, ["A1"])  # the branch that will be dropped
        chain.register(chain.lot("Z1", 500))  # a lot that will never have been
        indexer.sync()
        undone = [row for row in facts(engine) if row.name == "CustodyAccepted"]
        drive(sender, clock, lambda: len(hub.applied) == len(facts(engine)))
        a1 = hub.entities["urn:ngsi-ld:OreLot:PIT-A:A1"]
        assert a1["custodian"]["value"] == chain.processor
        gone = receipt_entity_id(chain.client.chain_id, undone[0].tx_hash, undone[0].log_index)
        assert gone in hub.entities
        assert "urn:ngsi-ld:OreLot:PIT-A:Z1" in hub.entities

        chain.tester.revert_to_snapshot(fork_point)
        chain.client.cancel_handover(chain.registrar, ["A1"])
        assert indexer.sync().reorgs == 1
        cancelled = [row for row in facts(engine) if row.name == "CustodyOfferCancelled"]
        new_receipt = receipt_entity_id(chain.client.chain_id, cancelled[0].tx_hash, cancelled[0].log_index)
        drive(
            sender,
            clock,
            lambda: (
                gone not in hub.entities
                and new_receipt in hub.entities
                and "urn:ngsi-ld:OreLot:PIT-A:Z1" not in hub.entities
            ),
        )
        sender.close()

    assert "urn:ngsi-ld:OreLot:PIT-A:Z1" not in hub.entities, "a lot whose creation was undone is deleted"
    assert not [
        entity_id
        for entity_id in hub.entities
        if entity_id.startswith("urn:ngsi-ld:DLTtxReceipt")
        and hub.entities[entity_id]["refEntity"]["object"].endswith(":Z1")
    ]
    a1 = hub.entities["urn:ngsi-ld:OreLot:PIT-A:A1"]
    assert a1["custodian"]["value"] == chain.registrar, "restated from the index: the acceptance is gone"
    assert a1["pendingCustodian"]["value"] == ""
    published_state_matches_the_index(hub, engine)
    assert hub.out_of_order == []


def test_publish_adds_the_hub_once_from_the_first_block_and_keeps_the_secret_out_of_the_database(
    chain: IndexChain, engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenance.cli.main import app

    chain.register(chain.lot("A1", 1_000))
    chain.indexer(engine).sync()
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", db_url)
    monkeypatch.setenv("PROVENANCE_HUB_INGEST_URL", "https://hub.test-city.kr:8443")
    monkeypatch.setenv("PROVENANCE_PUBLIC_URL", "https://provenance.test-city.kr")
    monkeypatch.setenv("PROVENANCE_HUB_TOKEN_URL", "https://auth.test-city.kr/oauth2.0/token")
    monkeypatch.setenv("PROVENANCE_HUB_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PROVENANCE_HUB_CLIENT_SECRET", CLIENT_SECRET)
    runner = CliRunner()
    first = runner.invoke(app, ["hub", "publish"])
    assert first.exit_code == 0, first.output
    assert "from block 0" in first.output
    again = runner.invoke(app, ["hub", "publish"])
    assert "already publishing" in again.output
    [destination] = [d for d in DeliveryStore(engine).destinations() if d.kind == KIND]
    assert destination.cursor.block_number == -1, "a new hub is sent all history"
    assert destination.secret == ""
    assert CLIENT_SECRET not in first.output + again.output
    monkeypatch.setenv("PROVENANCE_HUB_INGEST_URL", "https://other-hub.test-city.kr")
    moved = runner.invoke(app, ["hub", "publish", "--from-now"])
    assert "retired " + destination.id in moved.output
    monkeypatch.delenv("PROVENANCE_PUBLIC_URL")
    refused = runner.invoke(app, ["hub", "publish"])
    assert refused.exit_code == 2
    assert "PROVENANCE_HUB_CONTEXT_URL" in refused.output


def test_serves_deliveries_child_publishes_to_the_hub_it_is_configured_for(
    chain: IndexChain, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """As `provenance serve` runs it: the supervised `deliveries` child builds the hub kind from the
    settings and publishes what the index holds, then what comes next."""
    chain.register(*(chain.lot(f"R{n}", 1_000 + n) for n in range(4)))
    chain.indexer(engine).sync()
    hub = HubReceiver(api="keti", seed=3, fail_batch=0.2)
    with hub.running():
        settings = Settings(
            data_dir=tmp_path,
            database_url=db_url,
            rpc_url="http://unused.invalid",
            lease_s=2.0,
            hub_ingest_url=hub.ingest_url,
            hub_api="keti",
            hub_context_url=CONTEXT,
            hub_token_url=hub.token_url,
            hub_client_id=CLIENT_ID,
            hub_client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
            delivery_retry_base_s=0.05,
            delivery_retry_max_s=0.2,
        )
        chain.deployment.save(settings.deployment_path)
        add_hub(engine, hub)
        child = Child("deliveries", deliveries_main, settings, on_exit=release_lease_of(settings, DELIVERIES))
        try:
            child.supervise()
            wait_for(lambda: len(hub.applied) >= len(facts(engine)))
            chain.client.hand_over(chain.registrar, ["R1"], chain.processor)
            chain.indexer(engine).sync()
            wait_for(lambda: len(hub.applied) >= len(facts(engine)))
        finally:
            child.stop(timeout_s=30)
    assert hub.out_of_order == []
    assert hub.twice == []
    r1 = hub.entities[f"urn:ngsi-ld:OreLot:{SITE}:R1"]
    assert r1["pendingCustodian"]["value"] == chain.processor
    published_state_matches_the_index(hub, engine)

"""The deliverer as `provenance serve` runs it: a supervised child process (`deliveries_main`)
that delivers only while it holds the `deliveries` lease. Two replicas on one database: one leads,
the receiver gets every event once; the leader stops and the other takes over, still once."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from provenance.background import Child, deliveries_main, release_lease_of
from provenance.config import Settings
from provenance.deliveries import DeliveryStore, SubscriptionRequest, Subscriptions
from provenance.index.leases import read_leases
from provenance.index.models import Event
from provenance.leadership import DELIVERIES
from tests.delivery_receiver import Receiver, running_receiver
from tests.index_chain import IndexChain


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_replicas_elect_one_deliverer_and_a_standby_takes_over_without_repeating(
    engine: Engine, db_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    chain = IndexChain.fresh()
    chain.indexer(engine).sync()
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        rpc_url="http://unused.invalid",
        delivery_allowed_hosts="127.0.0.1",
        lease_s=2.0,
        delivery_timeout_s=2.0,
    )
    chain.deployment.save(settings.deployment_path)
    destination, secret = Subscriptions(DeliveryStore(engine), settings).create(
        SubscriptionRequest(receiver.url, held=True), account=chain.registrar, credential_id="test"
    )
    receiver.secret = secret
    for number in range(6):
        chain.register(chain.lot(f"R{number}", 1_000 + number))
    chain.indexer(engine).sync()
    with engine.connect() as connection:
        rows = connection.execute(
            select(Event.block_hash, Event.tx_hash, Event.log_index)
            .where(Event.name == "LotRegistered", Event.block_number > destination.start_block)
            .order_by(Event.block_number, Event.tx_index, Event.log_index)
        ).all()
    chain_id = chain.client.chain_id
    expected = [
        "evt_" + hashlib.sha256(f"{chain_id}:{h.lower()}:{t.lower()}:{i}".encode()).hexdigest()[:40]
        for h, t, i in rows
    ]
    replicas = [
        Child(f"deliveries-{n}", deliveries_main, settings, on_exit=release_lease_of(settings, DELIVERIES))
        for n in (1, 2)
    ]
    try:
        for replica in replicas:
            replica.supervise()
        wait_for(lambda: len(receiver.ids()) >= len(expected))
        leases = [lease for lease in read_leases(engine) if lease.name == DELIVERIES]
        assert len(leases) == 1
        leader = next(r for r in replicas if r.process is not None and str(r.process.pid) in leases[0].holder)
        assert receiver.ids() == expected

        leader.stop(timeout_s=30)
        for number in range(6, 9):
            chain.register(chain.lot(f"R{number}", 1_000 + number))
        chain.indexer(engine).sync()
        wait_for(lambda: len(receiver.ids()) >= len(expected) + 3)
        time.sleep(1.0)  # anything sent twice would have arrived by now
        standby = next(r for r in replicas if r is not leader)
        holder = next(lease.holder for lease in read_leases(engine) if lease.name == DELIVERIES)
        assert standby.process is not None
        assert str(standby.process.pid) in holder
    finally:
        for replica in replicas:
            replica.stop(timeout_s=30)
    acknowledged = receiver.ids()
    assert len(acknowledged) == len(set(acknowledged)) == len(expected) + 3
    assert acknowledged[: len(expected)] == expected
    assert receiver.bad_signatures == 0

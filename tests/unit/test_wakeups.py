"""Wake-ups across replicas through PostgreSQL's LISTEN/NOTIFY (provenance/index/wakeups.py), on a
real server: a stored operation wakes a listener in another session, operations made final reach
every listener with all their ids, nothing is announced by a transaction that rolls back, and a
listener whose session is killed listens again. A listener skips the notices of its own origin
(its `serve`'s processes tell each other through pipes)."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Engine, text

from provenance.domain.commands import command_of
from provenance.domain.operations import OperationKind, OperationStatus, OperationView
from provenance.domain.outbox import TransactionUpdate
from provenance.index.credentials_store import CredentialStore
from provenance.index.db import make_engine, upgrade
from provenance.index.outbox import OutboxStore
from provenance.index.wakeups import (
    MAX_PAYLOAD_BYTES,
    WakeupListener,
    announce_final,
    announce_work,
    final_payloads,
    new_origin,
)
from tests.dbs import postgres_database
from tests.outbox_support import register_payload
from tests.unit.test_final_waits import run
from tests.unit.test_outbox_store import SENDER, fake_signature

pytestmark = pytest.mark.postgres

WAIT_S = 20
"""Far longer than a notification takes: only a missing one waits this long."""
OTHER = new_origin()
"""The origin of what this module's tests send as another replica would."""


class Heard:
    def __init__(self) -> None:
        self.work = threading.Semaphore(0)
        self.final: queue.Queue[list[str]] = queue.Queue()

    def on_work(self) -> None:
        self.work.release()

    def on_final(self, operation_ids: Sequence[str]) -> None:
        self.final.put(list(operation_ids))

    def drain_work(self) -> None:
        while self.work.acquire(blocking=False):
            pass


def submit_one(store: OutboxStore) -> OperationView:
    """One registration stored by a new credential of SENDER."""
    credential_id, _ = CredentialStore(store.engine).create(f"ops-{uuid.uuid4().hex[:6]}", SENDER, "dev:ops")
    view, _ = store.submit(
        credential_id=credential_id,
        sender=SENDER,
        command=command_of(OperationKind.REGISTER_LOTS, register_payload(f"W-{uuid.uuid4().hex[:8]}")),
        idempotency_key=None,
    )
    return view


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def heard(engine: Engine) -> Iterator[tuple[Heard, WakeupListener]]:
    heard = Heard()
    listener = WakeupListener(
        engine, origin=new_origin(), on_work=heard.on_work, on_final=heard.on_final, poll_s=0.2
    ).start()
    assert listener.listening.wait(WAIT_S)
    assert heard.work.acquire(timeout=WAIT_S), "a listener that (re)connects calls on_work once"
    try:
        yield heard, listener
    finally:
        listener.stop()


def test_the_ids_of_many_final_operations_fit_in_payloads_postgresql_accepts() -> None:
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    payloads = final_payloads(ids, OTHER)
    assert len(payloads) > 1
    assert all(len(payload.encode()) <= MAX_PAYLOAD_BYTES for payload in payloads)
    assert all(payload.split()[0] == OTHER for payload in payloads)
    assert [i for payload in payloads for i in payload.split()[1:]] == ids
    assert final_payloads([], OTHER) == []


def test_a_stored_operation_wakes_a_listener_in_another_session(
    engine: Engine, heard: tuple[Heard, WakeupListener]
) -> None:
    listened, _ = heard
    store = OutboxStore(engine)  # nothing in this process connects the two: only the server does
    view = submit_one(store)
    assert listened.work.acquire(timeout=WAIT_S)

    signed = store.sign_and_record(view.id, [0], 0, fake_signature)
    store.apply(
        [TransactionUpdate(view.id, signed[0].sequence, OperationStatus.CONFIRMED, 7, "0x" + "22" * 32, 1)]
    )
    assert listened.final.get(timeout=WAIT_S) == [view.id]


def test_every_id_of_a_large_commit_arrives_and_a_rollback_announces_nothing(
    engine: Engine, heard: tuple[Heard, WakeupListener]
) -> None:
    listened, _ = heard
    rolled_back = [str(uuid.uuid4()) for _ in range(3)]
    with engine.connect() as connection:
        announce_final(connection, rolled_back, OTHER)
        connection.rollback()
    committed = [str(uuid.uuid4()) for _ in range(600)]
    with engine.begin() as connection:
        announce_final(connection, committed, OTHER)

    arrived: list[str] = []
    while len(arrived) < len(committed):
        arrived.extend(listened.final.get(timeout=WAIT_S))
    assert arrived == committed
    assert not set(arrived) & set(rolled_back)
    assert listened.final.empty()


def test_a_listener_skips_the_notices_of_its_own_origin(engine: Engine) -> None:
    heard = Heard()
    mine = new_origin()
    listener = WakeupListener(
        engine, origin=mine, on_work=heard.on_work, on_final=heard.on_final, poll_s=0.2
    ).start()
    try:
        assert listener.listening.wait(WAIT_S)
        assert heard.work.acquire(timeout=WAIT_S)
        with engine.begin() as connection:
            announce_work(connection, mine)
            announce_final(connection, ["mine"], mine)
        with engine.begin() as connection:  # after the first in the server's order of commits
            announce_final(connection, ["theirs"], OTHER)
        assert heard.final.get(timeout=WAIT_S) == ["theirs"]
        assert heard.final.empty()
        assert not heard.work.acquire(blocking=False), "its own stored operation wakes nothing"
    finally:
        listener.stop()


def test_a_listener_whose_session_is_killed_listens_again(
    engine: Engine, heard: tuple[Heard, WakeupListener]
) -> None:
    listened, listener = heard
    killed = listener.session_pid
    listened.drain_work()
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})

    assert listened.work.acquire(timeout=WAIT_S), "listening again calls on_work: a wake-up may be missed"
    assert listener.listening.wait(WAIT_S)
    assert listener.session_pid != killed
    with engine.begin() as connection:
        announce_final(connection, ["after-the-kill"], OTHER)
    assert listened.final.get(timeout=WAIT_S) == ["after-the-kill"]


def test_a_wait_on_one_replica_ends_when_a_worker_on_another_makes_it_final(engine: Engine) -> None:
    """The API replica's `?wait=true` (FinalWaits) polls once an hour here: only the notice from
    the worker's commit, through the server, can end the wait in time."""
    import asyncio

    from api.waiting import FinalWaits

    api_engine = make_engine(engine.url.render_as_string(hide_password=False))
    api_outbox = OutboxStore(api_engine)
    waits = FinalWaits(api_outbox, poll_s=3600)
    listener = WakeupListener(
        api_engine, origin=api_outbox.origin, on_final=api_outbox.signal.wake, poll_s=0.2
    ).start()
    worker_store = OutboxStore(engine)
    try:
        assert listener.listening.wait(WAIT_S)
        view = submit_one(api_outbox)

        async def wait_and_confirm() -> OperationStatus | None:
            future = waits.expect(view.id)
            signed = worker_store.sign_and_record(view.id, [0], 0, fake_signature)
            confirmed = TransactionUpdate(
                view.id, signed[0].sequence, OperationStatus.CONFIRMED, 9, "0x" + "33" * 32, 1
            )
            await asyncio.to_thread(worker_store.apply, [confirmed])
            try:  # the future itself, not until_final: that reads the operation after a timeout
                final = await asyncio.wait_for(asyncio.shield(future), WAIT_S)
            finally:
                waits.forget(view.id, future)
            return final.status

        assert run(wait_and_confirm) is OperationStatus.CONFIRMED  # not on Playwright's loop
        assert waits.waiting() == 0
    finally:
        listener.stop()
        api_engine.dispose()

"""Reads on a PostgreSQL read replica (`PROVENANCE_READ_DATABASE_URL`), against a real streaming
standby (tests/pg_replica.py): the whole write path over HTTP on the primary, the indexer writing
the primary, and the API's reads answered by the standby whenever it holds what the read asks for.

The standby is held in the past by pausing its replay, so every answer shows which database gave
it: a lot indexed after the pause exists on the primary only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance.chain.logsource import RpcLogSource
from provenance.index.db import make_engine, upgrade
from provenance.index.indexer import Indexer
from provenance.index.queries import ReadQueries
from tests.e2e.conftest import Stack, lot_body, start_stack
from tests.pg_replica import ReplicatedServer, replicated_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DATABASE = "provenance"


class ReplicaStack:
    def __init__(self, stack: Stack, server: ReplicatedServer) -> None:
        self.stack = stack
        self.server = server
        self.engine = make_engine(server.primary_url(DATABASE))
        runtime = stack.runtime
        self.indexer = Indexer(
            self.engine, RpcLogSource(stack.w3, runtime.client.address), runtime.deployment
        )

    def register(self) -> tuple[str, dict[str, Any]]:
        """A lot written over HTTP (waited for), then indexed into the primary."""
        lot_id = self.stack.lot_id()
        operation = self.stack.write("/v1/lots", self.stack.operator, lot_body(lot_id))
        assert operation["status"] == "confirmed", operation
        self.indexer.sync()
        return lot_id, operation

    def read(self, path: str, **headers: str) -> Any:
        return self.stack.http.get(path, headers=headers)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaStack]:
    with replicated_server() as server:
        server.create_database(DATABASE)
        upgrade(server.primary_url(DATABASE))
        server.wait_caught_up()
        data_dir: Path = tmp_path_factory.mktemp("replica")
        stacks = start_stack(
            data_dir,
            "REPL",
            database_url=server.primary_url(DATABASE),
            read_database_url=server.standby_url(DATABASE),
        )
        stack = next(stacks)
        replica = ReplicaStack(stack, server)
        try:
            yield replica
        finally:
            replica.engine.dispose()
            stacks.close()


@pytest.fixture
def replica(replicated: ReplicaStack) -> Iterator[ReplicaStack]:
    """The standby caught up and replaying at the start of each test, and again after it."""
    replicated.server.wait_caught_up()
    yield replicated
    replicated.server.resume_replay()
    replicated.server.wait_caught_up()


def test_reads_come_from_the_standby_and_say_so(replica: ReplicaStack) -> None:
    lot_id, _ = replica.register()
    replica.server.wait_caught_up()

    for path in (f"/v1/lots/{lot_id}", f"/v1/epcis/events?lot={lot_id}"):
        answer = replica.read(path)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Index-Source"] == "replica"
        assert answer.headers["X-Index-Block"] == str(ReadQueries(replica.engine).index_block())
    assert replica.read(f"/lots/{lot_id}").status_code == 200


def test_a_standby_behind_answers_from_its_past_until_a_read_asks_for_more(replica: ReplicaStack) -> None:
    before, _ = replica.register()
    replica.server.wait_caught_up()
    replica.server.pause_replay()
    held_at = int(replica.read(f"/v1/lots/{before}").headers["X-Index-Block"])

    lot_id, operation = replica.register()  # the write and its indexing land on the primary only
    written_at = operation["transactions"][-1]["block_number"]
    assert written_at > held_at

    behind = replica.read(f"/v1/lots/{lot_id}")
    assert behind.status_code == 404  # the standby does not hold it yet
    assert (behind.headers["X-Index-Source"], behind.headers["X-Index-Block"]) == ("replica", str(held_at))

    # reading one's own write: the block of the write, and the primary answers
    own = replica.read(f"/v1/lots/{lot_id}", **{"X-Min-Index-Block": str(written_at)})
    assert own.status_code == 200, own.text
    assert own.headers["X-Index-Source"] == "primary"
    assert int(own.headers["X-Index-Block"]) >= written_at
    assert own.json()["lot_id"] == lot_id
    # a read that asks for no more than the standby holds stays on the standby
    old = replica.read(f"/v1/lots/{before}", **{"X-Min-Index-Block": str(held_at)})
    assert old.headers["X-Index-Source"] == "replica"

    # operations are the primary's: the one just written is there, and final
    answered = replica.read(f"/v1/operations/{operation['id']}", **replica.stack.operator.auth)
    assert answered.status_code == 200
    assert answered.json()["status"] == "confirmed"

    health = replica.read("/health").json()
    assert health["read_replica"]["cursor_block"] == held_at
    assert health["read_replica"]["behind_primary_blocks"] == health["index"]["cursor_block"] - held_at > 0

    replica.server.resume_replay()
    replica.server.wait_caught_up()
    caught_up = replica.read(f"/v1/lots/{lot_id}")
    assert (caught_up.status_code, caught_up.headers["X-Index-Source"]) == (200, "replica")


def test_a_malformed_minimum_block_is_a_client_error_naming_the_header(replica: ReplicaStack) -> None:
    answer = replica.read("/v1/lots", **{"X-Min-Index-Block": "soon"})
    assert answer.status_code == 422
    assert "X-Min-Index-Block" in answer.text


def test_a_standby_that_is_down_leaves_the_reads_to_the_primary(replica: ReplicaStack) -> None:
    lot_id, _ = replica.register()
    replica.server.stop_standby()
    try:
        answer = replica.read(f"/v1/lots/{lot_id}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Index-Source"] == "primary"
        assert replica.read(f"/lots/{lot_id}").status_code == 200
        health = replica.read("/health").json()
        assert health["status"] == "degraded"
        assert health["read_replica"]["error"]
        assert any("read replica" in reason for reason in health["reasons"])
    finally:
        replica.server.start_standby()
    replica.server.wait_caught_up()
    assert replica.read(f"/v1/lots/{lot_id}").headers["X-Index-Source"] == "replica"
    assert replica.read("/health").json()["read_replica"]["error"] is None

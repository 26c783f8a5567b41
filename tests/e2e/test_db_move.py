"""`provenance db move`: an operator who moves the embedded SQLite index to PostgreSQL keeps every
API token, every acknowledged operation and the index; the move is all or nothing and refuses a
database in use or a target that holds data."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from api.app import create_app
from provenance.bootstrap import build_runtime
from provenance.chain.logsource import RpcLogSource
from provenance.chain.outbox import OutboxWorker
from provenance.cli.main import app
from provenance.index import Indexer
from provenance.index.db import make_engine
from provenance.index.epcis_models import RecordTime
from provenance.index.leases import Leases
from provenance.index.write_models import ApiCredential, Operation
from tests.dbs import postgres_database
from tests.e2e.conftest import lot_body, start_stack

pytestmark = pytest.mark.postgres


def move(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["db", "move", *args])
    return result.exit_code, result.stdout + result.stderr


def counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return (
                connection.execute(select(func.count()).select_from(ApiCredential)).scalar_one(),
                connection.execute(select(func.count()).select_from(Operation)).scalar_one(),
            )
    finally:
        engine.dispose()


def record_times(url: str) -> list[tuple[int, int]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(RecordTime.number, RecordTime.recorded_ms).order_by(RecordTime.number)
            )
            return [(int(number), int(recorded)) for number, recorded in rows]
    finally:
        engine.dispose()


def test_tokens_and_operations_move_from_sqlite_to_postgresql(tmp_path: Path) -> None:
    running = start_stack(tmp_path, "MOVE")
    stack = next(running)
    before = [stack.write("/v1/lots", stack.operator, lot_body(f"MOVE-{n}"))["id"] for n in range(3)]
    sqlite_url = stack.settings.effective_database_url
    source = RpcLogSource(stack.w3, stack.runtime.deployment.registry)
    Indexer(stack.runtime.engine, source, stack.runtime.deployment).sync()
    running.close()  # serve stopped: the worker is gone

    with postgres_database() as postgres_url:
        code, output = move("--from", sqlite_url, "--to", postgres_url)

        assert code == 0, output
        assert counts(postgres_url) == counts(sqlite_url)
        # the index came along, with when each block was recorded (not when it was moved)
        assert record_times(postgres_url) == record_times(sqlite_url) != []
        assert "api_credentials: 4" in output
        settings = stack.settings.model_copy(update={"database_url": postgres_url})
        runtime = build_runtime(settings, w3=stack.w3)
        worker = OutboxWorker(runtime.outbox, runtime.client, runtime.signer_for, confirmations=0)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop, 0.02), daemon=True)
        thread.start()
        try:
            with TestClient(create_app(runtime)) as http:
                for operation_id in before:  # what was acknowledged on SQLite is known here
                    earlier = http.get(f"/v1/operations/{operation_id}", headers=stack.operator.auth)
                    assert earlier.status_code == 200, earlier.text
                    assert earlier.json()["status"] == "confirmed"
                written = http.post(
                    "/v1/lots",
                    json=lot_body("MOVE-AFTER"),
                    params={"wait": "true", "timeout": 30},
                    headers=stack.operator.auth,  # a token issued before the move
                )
                assert written.status_code == 200, written.text
                assert written.json()["status"] == "confirmed"
                assert runtime.client.lot("MOVE-AFTER") is not None
                assert written.json()["id"] not in before
        finally:
            stop.set()
            thread.join(30)
            runtime.close()

        again_code, again = move("--from", sqlite_url, "--to", postgres_url)
        assert again_code == 2
        assert "already holds data" in again
        assert "Traceback" not in again


def test_a_database_in_use_or_the_same_database_is_refused(tmp_path: Path) -> None:
    running = start_stack(tmp_path, "BUSY")
    stack = next(running)
    stack.write("/v1/lots", stack.operator, lot_body("BUSY-1"))
    sqlite_url = stack.settings.effective_database_url
    running.close()

    same_code, same = move("--from", sqlite_url, "--to", sqlite_url)
    assert same_code == 2
    assert "already" in same

    engine = make_engine(sqlite_url)
    try:
        assert Leases(engine).acquire("indexer", "host:1:indexer", 60.0) is not None
        with postgres_database() as postgres_url:
            code, output = move("--from", sqlite_url, "--to", postgres_url)

            assert code == 2
            assert "in use: indexer (host:1:indexer) holds a lease" in output
            target = make_engine(postgres_url)
            try:
                assert inspect(target).get_table_names() == []  # refused before anything was done there
            finally:
                target.dispose()
    finally:
        engine.dispose()

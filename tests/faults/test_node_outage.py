"""The node unreachable for a while: reads keep answering from the index and say how far behind
they may be, writes wait in the outbox (202) and go through when the node is back, and /health
says degraded and why."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults.harness import HASH, SITE, ChaosServer, wait_indexed

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

OUTAGE_S = 10


def lot(lot_id: str) -> dict[str, object]:
    return {
        "site": SITE, "lot_id": lot_id, "face": "F1", "commodity": "COAL", "mass_g": 1_000_000,
        "grade_ppm": 12_000, "extracted_at": 1_790_000_000, "record_hash": HASH,
    }  # fmt: skip


def test_reads_serve_and_writes_queue_while_the_node_is_unreachable(server: ChaosServer) -> None:
    _, registrar = server.create_account("registrar", "registrar", SITE)
    auth = {"Authorization": f"Bearer {registrar}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = http.post("/v1/lots", params={"wait": "true"}, json=lot("OUT-0"), headers=auth)
        assert before.status_code == 200, before.text
        indexed_at = wait_indexed(server, timeout_s=20)
        heard_by = time.monotonic() + 10  # the server's head watcher asks the node once a second
        while http.get("/health").json()["node"]["last_seen_block"] != indexed_at:
            assert time.monotonic() < heard_by, "the head watcher never heard the indexed head"
            time.sleep(0.1)
        fresh = http.get("/v1/lots/OUT-0")
        assert fresh.status_code == 200
        assert "X-Chain-Unreachable" not in fresh.headers
        assert fresh.headers["X-Index-Lag-Blocks"] == "0"

        restore = server.node_outage()
        down_since = time.monotonic()
        queued = []
        while time.monotonic() - down_since < OUTAGE_S:
            read = http.get("/v1/lots/OUT-0")
            assert read.status_code == 200, read.text
            assert read.json()["lot_id"] == "OUT-0"
            assert read.headers["X-Index-Block"] == str(indexed_at)
            assert read.headers["X-Chain-Head"] == str(indexed_at)  # the last head heard
            health = http.get("/health")
            assert health.status_code == 200
            assert health.json()["node"]["last_seen_block"] == indexed_at
            if time.monotonic() - down_since > 3.5:  # UNREACHABLE_AFTER_S, and a poll
                assert read.headers["X-Chain-Unreachable"] == "true"
                assert health.json()["status"] == "degraded"
                assert "node unreachable" in health.json()["reasons"][0]
            written = http.post(
                "/v1/lots",
                json=lot(f"OUT-{len(queued) + 1}"),
                headers={**auth, "Idempotency-Key": f"k{len(queued)}"},
            )
            assert written.status_code == 202, written.text
            assert written.json()["final"] is False
            queued.append(written.json()["id"])
            time.sleep(1)

        restore()
        for operation_id in queued:
            answer = http.get(
                f"/v1/operations/{operation_id}", params={"wait": "true", "timeout": "30"}, headers=auth
            )
            assert answer.json()["status"] == "confirmed", answer.text
        wait_indexed(server, timeout_s=20)
        for number in range(len(queued) + 1):
            assert http.get(f"/v1/lots/OUT-{number}").status_code == 200
        assert http.get("/health").json()["status"] == "ok"
        read = http.get("/v1/lots/OUT-0")
        assert "X-Chain-Unreachable" not in read.headers
        assert read.headers["X-Index-Lag-Blocks"] == "0"

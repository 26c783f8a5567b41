"""Chain time after restarts: the chain runs two simulated hours ahead of the wall clock, then serve
is restarted cleanly, killed with its node, and its node alone is killed; after each, a lot
extracted now is registered. Each lands; no block is ever earlier than the one before it; each
lot's EPCIS eventTime is its block's time; the site's day query counts exactly the lots whose
blocks fall on that day.

Before the node kept its own clock across restarts, the restored node's next block was the genesis
time plus the seconds since the start: a lot extracted now was acknowledged and then refused on
chain (TimeInFuture), and later events came out earlier than earlier ones.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import httpx
import pytest

from tests.faults.harness import HASH, SITE, ChaosServer, wait_indexed

pytestmark = [pytest.mark.anvil, pytest.mark.slow, pytest.mark.clock]

NODE_STATE_INTERVAL_S = 0.5
AHEAD_S = 2 * 3600


def register(http: httpx.Client, token: str, lot_id: str, mass_g: int) -> int:
    """Registers a lot extracted now, waits until it is confirmed; returns its extracted_at."""
    extracted_at = int(time.time())
    answer = http.post(
        "/v1/lots",
        params={"wait": "true", "timeout": "30"},
        json={
            "site": SITE,
            "lot_id": lot_id,
            "face": "F1",
            "commodity": "COAL",
            "mass_g": mass_g,
            "grade_ppm": 12_000,
            "extracted_at": extracted_at,
            "record_hash": HASH,
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": lot_id},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "confirmed", answer.text
    return extracted_at


def block_times(server: ChaosServer) -> list[int]:
    head = int(server.node_call("eth_blockNumber"), 16)
    return [
        int(server.node_call("eth_getBlockByNumber", hex(number), False)["timestamp"], 16)
        for number in range(head + 1)
    ]


def utc(timestamp: int) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_lots_extracted_now_land_after_restarts_and_time_never_goes_back(server: ChaosServer) -> None:
    _, token = server.create_account("registrar", "registrar", SITE)
    server.node_call("evm_increaseTime", AHEAD_S)
    server.node_call("evm_mine")
    masses = {"T-0": 1_000, "T-1": 2_000, "T-2": 4_000, "T-3": 8_000}
    extracted: dict[str, int] = {}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        extracted["T-0"] = register(http, token, "T-0", masses["T-0"])
    server.wait_saved()

    server.stop()  # a clean restart: Ctrl-C, then `provenance serve` again
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        extracted["T-1"] = register(http, token, "T-1", masses["T-1"])
    server.inflict("api")  # serve killed, its node with it
    with httpx.Client(base_url=server.url, timeout=60) as http:
        extracted["T-2"] = register(http, token, "T-2", masses["T-2"])
    server.inflict("node")  # the node alone; serve starts it again
    with httpx.Client(base_url=server.url, timeout=60) as http:
        extracted["T-3"] = register(http, token, "T-3", masses["T-3"])
        wait_indexed(server, timeout_s=30)

        times = block_times(server)
        assert times == sorted(times), "a block is earlier than the one before it"
        assert times[-1] >= time.time() + AHEAD_S - 120, "the chain lost the time it was ahead"
        created: dict[str, int] = {}
        for lot_id, extracted_at in extracted.items():
            lot = http.get(f"/v1/lots/{lot_id}").json()
            block_time = times[lot["created"]["block_number"]]
            created[lot_id] = block_time
            assert block_time >= extracted_at
            events: list[dict[str, Any]] = http.get("/v1/epcis/events", params={"lot": lot_id}).json()[
                "epcisBody"
            ]["eventList"]
            commissioned = [event for event in events if event.get("bizStep", "").endswith("commissioning")]
            assert [event["eventTime"] for event in commissioned] == [utc(block_time)], events
        day = datetime.datetime.fromtimestamp(created["T-3"], datetime.UTC).strftime("%Y-%m-%d")
        account = http.get(f"/v1/sites/{SITE}/mass-balance", params={"period": day})
        assert account.status_code == 200, account.text
        on_that_day = sum(
            masses[lot_id]
            for lot_id, block_time in created.items()
            if datetime.datetime.fromtimestamp(block_time, datetime.UTC).strftime("%Y-%m-%d") == day
        )
        assert account.json()["extracted_g"] == on_that_day
        health = http.get("/health").json()
        assert health["node"]["embedded"]["restarts"] == 1, health
        assert "killed by signal 9" in health["node"]["embedded"]["last_exit"], health

"""`PROVENANCE_API_PROCESSES=2`: a second API process shares serve's port and answers on its own.

serve is paused (SIGSTOP) so that only the second process can accept connections: every read and
write of a lot's whole chain of operations must then be answered by it, and a `?wait=true` write
must still end final. Killed, it is started again like the other children.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import SITE, ChaosServer, Client, Tally

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def api_pid(data_dir: Path, other_than: int | None = None, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = json.loads((data_dir / "pids.json").read_text(encoding="utf-8")).get("api-2")
        if pid is not None and pid != other_than:
            return int(pid)
        time.sleep(0.1)
    raise AssertionError(f"no api-2 other than {other_than} in pids.json")


def pause_between_saves(server: ChaosServer, pid: int) -> None:
    """SIGSTOPs serve while its node keeper is not saving: a save holds the node's mining paused,
    and a keeper stopped inside one would hold it paused for as long as serve is stopped."""
    server.wait_saved()
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        if not server.saving():
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.2)
    raise AssertionError("serve's node keeper was saving at every try")


def indexed(http: httpx.Client, path: str, timeout_s: float = 30.0) -> httpx.Response:
    """The answer once the index holds what the chain confirmed (it follows within a second or so)."""
    deadline = time.monotonic() + timeout_s
    while (answer := http.get(path)).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_a_second_api_process_answers_reads_and_writes_while_serves_own_is_paused(tmp_path: Path) -> None:
    server = ChaosServer(tmp_path / "data")
    server.env["PROVENANCE_API_PROCESSES"] = "2"
    server.start()
    try:
        registrar, processor = server.accounts()
        pids = server.pids()
        second = api_pid(server.data_dir)
        assert os.getpriority(os.PRIO_PROCESS, second) == os.getpriority(os.PRIO_PROCESS, pids["serve"]), (
            "the extra API process answers at the API's priority, not the background's"
        )

        pause_between_saves(server, pids["serve"])
        try:
            tally = Tally()
            client = Client(server.url, registrar, processor, tally, deadline=time.monotonic() + 90)
            client.lot("PAUSED-1")  # register, hand over, accept, split: each waited for until final
            lot = indexed(client.http, "/v1/lots/PAUSED-1-A")
            lots = client.http.get("/v1/lots", params={"site": SITE})
            client.http.close()
        finally:
            os.kill(pids["serve"], signal.SIGCONT)

        assert tally.failed_operations == []
        assert tally.operations == 4
        assert lot.status_code == 200, lot.text
        assert lots.status_code == 200, lots.text
        made = lot.json()
        assert (made["origin"], made["mass_g"], made["custodian"].lower()) == (
            "transformed",
            499_000,
            processor[0].lower(),
        ), "the split made while serve was paused, as the index has it"
        assert "PAUSED-1-B" in {row["lot_id"] for row in lots.json()["lots"]}

        os.kill(second, signal.SIGKILL)
        again = api_pid(server.data_dir, other_than=second)
        assert again != second
        assert answers(server.url)
    finally:
        server.stop()

"""Replicas on one PostgreSQL: the indexer's and the outbox worker's leaders killed (SIGKILL) and
paused (SIGSTOP, then SIGCONT after a standby took the lease), with clients writing meanwhile.

The cluster and the faults are bench/failover.py's: this is its smoke run (`--smoke`, each kind of
fault once), which tests/bench/test_smoke.py leaves to this test, with its JSON line's keys and its
verdict asserted. How fast a standby takes over is a figure of the benchmark, not of this test: here
it must only happen (a new holder with a greater fencing token, every time)."""

from __future__ import annotations

import pytest

from bench import failover
from tests.bench.test_smoke import smoke_summary

pytestmark = [pytest.mark.anvil, pytest.mark.postgres, pytest.mark.slow]


def test_standbys_take_over_from_killed_and_paused_leaders_and_every_write_lands_once() -> None:
    found = smoke_summary("failover.py")  # 1 API, 2 indexers, 2 workers, 2 clients, 4 faults

    faults = found["details"]["faults"]
    assert [(fault["role"], fault["signal"]) for fault in faults] == list(failover.FIRST_FAULTS)
    for fault in faults:
        assert fault["to"] != fault["from"], fault
    for role in failover.ROLES:
        tokens = [fault["token"] for fault in faults if fault["role"] == role]
        assert tokens == sorted(set(tokens)), f"every new {role} leader has a greater token: {tokens}"
    assert found["acknowledged"] >= 8, found
    assert found["failed_operations"] == []
    assert found["client_errors"] == []
    assert found["lost"] == 0, found["details"]["lost_ids"]
    assert found["duplicated"] == 0, found["details"]["duplicated_ids"]
    assert found["stale_leader_commits"] == 0, found["details"]["stale"]
    assert found["audit_clean"], found["details"]["audit_output"]
    assert found["replicas_alive_at_end"] == 5, "a paused leader wakes up as a standby, it does not die"

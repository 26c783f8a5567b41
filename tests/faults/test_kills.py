"""SIGKILL of each process of `provenance serve` while 8 clients write, then the node kept away for
a moment: nothing acknowledged is lost or doubled on chain, the index audits clean, and every 5xx was
followed by a successful retry.

The server, the clients and the faults are bench/chaos.py's: this is its smoke run (`--smoke`), which
tests/bench/test_smoke.py leaves to this test, with its JSON line's keys and its verdict asserted."""

from __future__ import annotations

import pytest

from bench import chaos
from tests.bench.test_smoke import smoke_summary
from tests.faults.harness import assert_clean

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def test_every_acknowledged_operation_lands_exactly_once_through_kills_of_every_process() -> None:
    found = smoke_summary("chaos.py")  # 8 clients, 3 lots each at least; each fault once, then the outage

    seen = {
        "killed": found["killed"],
        "statuses": found["statuses"],
        "connection_errors": found["connection_errors"],
    }
    assert found["chaos_error"] is None, (found["chaos_error"], seen)
    assert found["client_errors"] == [], (found["client_errors"][:3], seen)
    assert [kill["fault"] for kill in found["killed"]] == chaos.smoke_faults(), (
        "every process was killed during the writes, then the node kept away"
    )
    # each client makes whole lots (4 operations each), and goes on while faults are still to come
    assert_clean(found, at_least_operations=chaos.SMOKE_CLIENTS * chaos.SMOKE_LOTS_PER_CLIENT * 4)
    assert found["verdict"] == "clean", found

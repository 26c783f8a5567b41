"""SIGKILL of each process of `provenance serve` while 8 clients write: nothing acknowledged is lost
or doubled on chain, the index audits clean, and every 5xx was followed by a successful retry."""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.faults.harness import (
    FAULTS,
    Chaos,
    ChaosServer,
    Tally,
    assert_clean,
    run_clients,
    verdict,
    wait_indexed,
)

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

SEED = 7
CLIENTS = 8
LOTS_PER_CLIENT = 3  # 4 operations each: 96 operations


NODE_STATE_INTERVAL_S = 2
"""The node's chain is saved every 2 s (the server fixture reads this)."""


def test_every_acknowledged_operation_lands_exactly_once_through_kills_of_every_process(
    server: ChaosServer,
) -> None:
    registrar, processor = server.accounts()
    faults = list(FAULTS)
    random.Random(SEED).shuffle(faults)
    chaos = Chaos(server, seed=SEED, pause_s=(0.5, 2.0))
    tally = Tally()
    started = time.monotonic()
    killer = chaos.start(faults)
    errors = run_clients(
        server.url, registrar, processor, clients=CLIENTS, lots_per_client=LOTS_PER_CLIENT,
        until=started + 90, prefix="K", tally=tally, deadline=started + 100,
        keep_going=lambda: len(chaos.killed) < len(faults) and chaos.error is None,
    )  # fmt: skip
    chaos.stop.set()
    killer.join(timeout=60)
    seen = {"killed": chaos.killed, "statuses": tally.statuses, "connection_errors": tally.connection_errors}
    assert chaos.error is None, (chaos.error, seen)
    assert not errors, (errors[:3], seen, server.tail(40))
    assert [kill["fault"] for kill in chaos.killed] == faults, "every process was killed during the writes"
    wait_indexed(server, timeout_s=20)
    found = verdict(server, tally)
    print(json.dumps({"killed": chaos.killed, **found}))
    # each client makes whole lots (4 operations each), and goes on while faults are still to come
    assert_clean(found, at_least_operations=CLIENTS * LOTS_PER_CLIENT * 4)

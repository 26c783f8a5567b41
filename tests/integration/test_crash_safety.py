"""A backfill killed with SIGKILL at random moments, many times, still ends equal to a clean rebuild.

The indexer runs in a process of its own (tests/integration/index_driver.py, small block ranges so
the backfill is many database transactions); the test kills it at random moments after it has
connected, checks after every kill that the index holds exactly the events up to its cursor (a
range is all in or all out), then lets the last run finish and compares the whole index with a
rebuild from scratch, row for row. The last run is the real `provenance index --once`.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from provenance.index.db import make_engine
from provenance.index.models import Event, IndexCursor
from tests.histories import RoundPlan
from tests.integration.support import Chain, Databases, assert_same_index, indexer_for, snapshot_of

REPO_ROOT = Path(__file__).resolve().parents[2]
CRASH_PLAN = RoundPlan(lots=16, batch=8, attested=1, transforms=3, assays=1, documents=1)
EVENTS = 3_000
MAX_RANGE = 1
KILLS = 12
BUDGET_S = 90.0

EventKey = tuple[int, int, int, str, str]


def events_and_cursor(url: str) -> tuple[int | None, list[EventKey]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            cursor = connection.execute(select(IndexCursor.block_number)).scalar_one_or_none()
            rows = connection.execute(
                select(
                    Event.block_number, Event.tx_index, Event.log_index, Event.tx_hash, Event.name
                ).order_by(Event.block_number, Event.tx_index, Event.log_index)
            ).all()
    finally:
        engine.dispose()
    return cursor, [tuple(row) for row in rows]


@pytest.mark.anvil
@pytest.mark.slow
def test_a_backfill_killed_at_random_moments_ends_equal_to_a_rebuild(
    chain: Chain, databases: Databases, tmp_path: Path
) -> None:
    history = chain.history(seed=11)
    history.setup()
    history.run(CRASH_PLAN, events=EVENTS)

    # the reference, and how long one whole backfill takes with these ranges
    reference_url = databases.new()
    started = time.perf_counter()
    reference = indexer_for(chain, reference_url, max_range=MAX_RANGE)
    reference.sync()
    reference.engine.dispose()
    backfill_s = time.perf_counter() - started
    started = time.perf_counter()  # what a new process spends before its first range: the checks
    again = indexer_for(chain, reference_url)
    again.sync()
    overhead_s = time.perf_counter() - started
    again.engine.dispose()
    _, reference_events = events_and_cursor(reference_url)
    assert len(reference_events) > EVENTS

    data_dir = tmp_path / "data"
    chain.deployment.save(data_dir / "deployment.json")
    live = databases.new()
    env = {
        **os.environ,
        "PROVENANCE_DATA_DIR": str(data_dir),
        "PROVENANCE_RPC_URL": chain.node.url,
        "PROVENANCE_DATABASE_URL": live,
    }
    command = [sys.executable, "-m", "tests.integration.index_driver", str(MAX_RANGE)]
    rng = random.Random(20240607)
    head = chain.head
    cursors: list[int | None] = []
    deadline = time.monotonic() + BUDGET_S
    while len(cursors) < KILLS and time.monotonic() < deadline:
        with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "syncing"
            # past the start-up checks; together the kills let through most of one backfill
            time.sleep(overhead_s + rng.uniform(0, 1.6 * backfill_s / KILLS))
            process.kill()
        cursor, events = events_and_cursor(live)
        expected = [event for event in reference_events if cursor is not None and event[0] <= cursor]
        assert events == expected, f"after a kill at cursor {cursor}, the index holds a partial range"
        cursors.append(cursor)
        if cursor == head:
            break
    interrupted = [cursor for cursor in cursors if cursor != head]
    assert len(interrupted) >= KILLS // 2, (
        f"only {len(interrupted)} kills interrupted the backfill: {cursors}"
    )
    assert len(set(interrupted)) > 2, f"the kills did not land at varied moments: {cursors}"
    print(f"cursors after the kills: {cursors}, head {head}")

    # the real command finishes the job
    finished = subprocess.run(
        [sys.executable, "-m", "provenance.cli.main", "index", "--once"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert f"cursor at block {chain.head}" in finished.stdout

    assert_same_index(snapshot_of(live), snapshot_of(reference_url))

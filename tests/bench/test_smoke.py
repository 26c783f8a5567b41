"""Every benchmark in bench/ runs at its `--smoke` size and ends with its one JSON line, with the
keys it documents. Only that: the figures belong to the full runs (docs/benchmarks.md), not to a
timed test. A benchmark nothing runs rots (bench/query.py crashed for weeks after an API change):
this is what runs them.

A benchmark's exit code 1 means "a target was missed", which a smoke size may well do; a crash
prints no JSON line (and exits 1 with a traceback), so the JSON line is what tells them apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"

SCRIPTS: dict[str, tuple[set[str], list[pytest.MarkDecorator]]] = {
    "api_write.py": (
        {"batch_lots_per_s", "single_lots_per_s", "single_p99_ms", "lost", "duplicated"},
        [pytest.mark.anvil],
    ),
    "audit.py": ({"events", "lots", "audit_seconds", "events_per_s", "pass"}, [pytest.mark.anvil]),
    "chaos.py": (
        {"verdict", "exactly_once", "missing", "duplicated", "audit_exit_code", "unresolved_5xx"},
        [pytest.mark.anvil],
    ),
    "deliveries.py": (
        {"events", "events_per_s", "lag_p99_s", "target_lag_p99_s", "lost", "duplicated", "out_of_order"},
        [],
    ),
    "deliveries.py --hub": (
        {"events", "events_per_s", "lag_p99_s", "lost", "duplicated", "out_of_order", "malformed", "batch"},
        [],
    ),
    "epcis.py": ({"lots", "blocks", "target_ms", "sqlite", "postgresql"}, [pytest.mark.postgres]),
    "failover.py": (
        {
            "leader_kills",
            "acknowledged",
            "lost",
            "duplicated",
            "stale_leader_commits",
            "failover_s_p99",
            "audit_clean",
        },
        [pytest.mark.anvil, pytest.mark.postgres],
    ),
    "gas.py": ({"registry_artifact_fresh", "minimum_gas"}, []),
    "index.py": (
        {"events", "sqlite_events_per_s", "postgres_events_per_s", "naive_events_per_s", "peak_rss_mib"},
        [pytest.mark.anvil, pytest.mark.postgres],
    ),
    "load.py": (
        {
            "clients",
            "read_p50_ms",
            "read_p99_ms",
            "lot_p99_ms",
            "write_p99_ms",
            "5xx",
            "endpoints",
            "slow_read_timeline",
            "node_saves",
        },
        [pytest.mark.anvil, pytest.mark.postgres],
    ),
    "node_kills.py": (
        {
            "rounds",
            "acknowledged",
            "landed_once",
            "lost",
            "duplicated",
            "failed_after_ack",
            "audit_clean_rounds",
        },
        [pytest.mark.anvil],
    ),
    "pages.py": (
        {"origins", "lineage_lots", "lots", "target_ms", "sqlite", "postgresql"},
        [pytest.mark.anvil, pytest.mark.postgres],
    ),
    "query.py": ({"lots", "lineage_edges", "sqlite", "postgresql"}, [pytest.mark.postgres]),
}


RUN_BY_A_FAULT_TEST = {
    "chaos.py": "tests/faults/test_kills.py",
    "failover.py": "tests/faults/test_failover.py",
}
"""Benchmarks whose smoke run is a fault test's scenario: that test makes the run (`smoke_summary`)
and asserts its verdict besides its keys, so one run of a minute or more serves both."""


def test_every_benchmark_has_a_smoke_run_here() -> None:
    assert {path.name for path in BENCH.glob("*.py")} == {name.split()[0] for name in SCRIPTS}
    for script, test in RUN_BY_A_FAULT_TEST.items():
        assert f'smoke_summary("{script}")' in (REPO_ROOT / test).read_text(encoding="utf-8"), (script, test)


def smoke_summary(script: str) -> dict[str, Any]:
    """Runs `bench/<script> --smoke`, asserts that it ends with its JSON line with its keys (exit 0,
    or 1 for a missed target) and returns that line."""
    keys = SCRIPTS[script][0]
    done = subprocess.run(
        [sys.executable, str(BENCH / script.split()[0]), *script.split()[1:], "--smoke"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    try:
        summary: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        pytest.fail(
            f"{script} did not end with its JSON line (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    assert done.returncode in (0, 1), (done.returncode, done.stderr[-3000:])
    assert keys <= summary.keys(), sorted(keys - summary.keys())
    return summary


@pytest.mark.slow
@pytest.mark.parametrize(
    "script",
    [
        pytest.param(name, marks=marks, id=name)  # each its own unit of work (tests/conftest.py)
        for name, (_, marks) in SCRIPTS.items()
        if name not in RUN_BY_A_FAULT_TEST
    ],
)
def test_the_benchmark_runs_at_its_smoke_size_and_prints_its_json(script: str) -> None:
    smoke_summary(script)

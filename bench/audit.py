"""End-to-end speed of `provenance audit` on a 100,000-event history on anvil.

    .venv/bin/python bench/audit.py                # 100,000 events
    .venv/bin/python bench/audit.py --profile      # and where the audit spends its time
    .venv/bin/python bench/audit.py --smoke        # 1,000 events: that it runs (the suite does)

Builds the history of bench/index.py (registrations in batches, transformations, handovers, assays,
documents, devices, corrections; many transactions per block), indexes it into a live SQLite index
(not timed), then times the library call `provenance.audit.service.audit` against that index: the
rebuild from the chain into a temporary SQLite file, the plain-Python rules over every event, the
row-by-row and digest comparison with the live index, and `lotState` by batched eth_call for every
lot. Target: <= 30 s. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the history builder lives in tests/histories.py

from bench.index import build_history, machine  # noqa: E402
from provenance.audit.report import summary  # noqa: E402
from provenance.audit.service import audit  # noqa: E402
from provenance.chain.logsource import RpcLogSource  # noqa: E402
from provenance.chain.node import AnvilNode  # noqa: E402
from provenance.index.db import make_engine, upgrade  # noqa: E402
from provenance.index.indexer import Indexer  # noqa: E402

TARGET_AUDIT_S = 30.0


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the history")
    parser.add_argument("--profile", action="store_true", help="profile the audit")
    parser.add_argument("--smoke", action="store_true", help="1,000 events: that it runs")
    options = parser.parse_args(argv)
    if options.smoke:
        options.events = 1_000

    print(f"bench/audit.py, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="provenance-bench-audit-") as scratch:
        node = AnvilNode()
        w3 = node.start()
        try:
            print(f"history: {options.events:,} events on anvil", flush=True)
            started = time.perf_counter()
            deployment, events = build_history(w3, options.events)
            print(f"  {events:,} events written: {time.perf_counter() - started:.1f} s", flush=True)

            live_url = f"sqlite:///{Path(scratch) / 'live.sqlite3'}"
            upgrade(live_url)
            engine = make_engine(live_url)
            try:
                started = time.perf_counter()
                Indexer(engine, RpcLogSource(w3, deployment.registry), deployment).sync()
                print(f"live index built: {time.perf_counter() - started:.1f} s (not timed)", flush=True)
            finally:
                engine.dispose()

            print("audit (rebuild + rules + index comparison + lotState of every lot)", flush=True)
            profiler = cProfile.Profile() if options.profile else None
            cpu_before = _cpu_seconds()
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            report = audit(w3, deployment.registry, database_url=live_url, workdir=Path(scratch))
            if profiler is not None:
                profiler.disable()
            audit_s = time.perf_counter() - started
            cpu_s = _cpu_seconds() - cpu_before
            load = max(load_before, os.getloadavg()[0])
        finally:
            node.stop()
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        print(out.getvalue())
    print(summary(report, limit=10))
    print(f"phases: {report.seconds}")
    print(
        f"CPU of the audit (this process and its finished children, not anvil): {cpu_s:.1f} s; "
        f"machine load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    rate = report.events / audit_s
    passed = audit_s <= TARGET_AUDIT_S and report.ok and report.events == events
    print(
        f"audit: {report.events:,} events, {report.lots:,} lots in {audit_s:.2f} s ({rate:,.0f} events/s): "
        f"{'PASS' if passed else 'FAIL'} (target <= {TARGET_AUDIT_S:.0f} s, everything agreeing)"
    )
    print(
        json.dumps(
            {
                "events": report.events,
                "lots": report.lots,
                "audit_seconds": round(audit_s, 2),
                "events_per_s": round(rate),
                "target_seconds": TARGET_AUDIT_S,
                "audit_cpu_seconds": round(cpu_s, 1),
                "load_average": round(load, 1),
                "pass": passed,
                "phases_s": report.seconds,
            }
        )
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

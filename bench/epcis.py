"""EPCIS 2.0 query latency (`/epcis/events`) over a synthetic index of 1,000,000 lots, on SQLite
and PostgreSQL.

    .venv/bin/python bench/epcis.py                 # 1,000,000 lots, both databases
    .venv/bin/python bench/epcis.py --lots 100000 --db sqlite
    .venv/bin/python bench/epcis.py --smoke         # 2,000 lots, 20 samples: that it runs (the suite does)

The index is bench/query.py's (its `Builder`: lineage threads of registrations, splits, blends,
handovers and assays, loaded by executemany and COPY), with what EPCIS reads besides: a time for
every block (12 s apart, so the history spans months), which the `record_times` trigger records
as it goes in, and the chain the index mirrors. Measured through the API in process, built by
`build_runtime` as `provenance serve` builds it:

* `match_epc`: `GET /epcis/events?MATCH_epc=<a lot>`, as the issue names it. Under the standard
  MATCH_epc looks at instance-level lists (epcList, childEPCs), which no event of ours has (lots
  are classes), so it is answered without reading a table;
* `match_lot`: `GET /epcis/events?MATCH_anyEPCClass=<a lot>`, the lookup of one lot's events that
  does the work (every kind of event, each by the lot's index);
* `step_window_page`: a page of 100 events with `EQ_bizStep=receiving` and a time window of a
  fifth of the history, each sample from a different start inside it.

The index's EPCIS events are stored as the indexer stores them at start-up (`epcis_ids_store.refresh`,
timed: `ids_s`). Each database's figures carry the machine's load average (1 minute) before and
after they were measured (`load`): on a shared machine, compare runs at like loads.

Target: p99 <= 25 ms for each on both databases. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, event, insert, text  # noqa: E402
from web3 import EthereumTesterProvider, Web3  # noqa: E402

from api.app import create_app  # noqa: E402
from bench.query import Builder, chunks, h, load, measure  # noqa: E402
from provenance.bootstrap import build_runtime  # noqa: E402
from provenance.chain.deployment import deploy_registry  # noqa: E402
from provenance.config import Settings  # noqa: E402
from provenance.epcis.export import lot_uri  # noqa: E402
from provenance.index import epcis_ids_store  # noqa: E402
from provenance.index.db import make_engine, upgrade  # noqa: E402
from provenance.index.models import BlockTime, ChainMirror  # noqa: E402
from tests.dbs import empty_database  # noqa: E402

TARGET_MS = 25.0
QUERIES = ("match_epc", "match_lot", "step_window_page")
BLOCK_SECONDS = 12
GENESIS_TIME = 1_767_225_600
"""2026-01-01 UTC: the synthetic chain's first block (a fixed past, as the builder's own dates are)."""


def iso(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def add_epcis_rows(engine: Engine, built: Builder, chain_id: int, registry: str) -> None:
    """Block times for every block (the trigger records each), and the chain the index mirrors."""
    times = [{"number": n, "timestamp": GENESIS_TIME + n * BLOCK_SECONDS} for n in range(1, built.block + 1)]
    with engine.begin() as connection:
        for batch in chunks(times):
            connection.execute(insert(BlockTime), list(batch))
        connection.execute(
            insert(ChainMirror),
            [
                {
                    "id": 1,
                    "chain_id": chain_id,
                    "genesis_hash": h("9", 0),
                    "registry_address": registry,
                    "deployment_block": 0,
                    "deployment_block_hash": h("b", 0),
                }
            ],
        )
    analyze(engine)


def analyze(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            connection.exec_driver_sql("ANALYZE")


def plans(engine: Engine, http: TestClient, url: str) -> list[str]:
    """The plan of every SELECT one request of `url` runs, as the database executes it: PostgreSQL's
    EXPLAIN ANALYZE (with buffers), SQLite's EXPLAIN QUERY PLAN."""
    ran: list[tuple[str, Any]] = []

    def seen(_c: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        ran.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        http.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    postgres = engine.dialect.name == "postgresql"
    found = []
    with engine.connect() as connection:
        for statement, parameters in ran:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
            rows = connection.exec_driver_sql(prefix + statement, parameters).fetchall()
            plan = "\n".join(" ".join(str(value) for value in row) for row in rows)
            found.append(f"{statement}\n-- {parameters}\n{plan}")
    return found


def run(kind: str, built: Builder, samples: int, directory: Path, explain: bool = False) -> dict[str, Any]:
    with empty_database(kind, directory) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            w3 = Web3(EthereumTesterProvider())
            client, deployment = deploy_registry(w3, w3.eth.accounts[0])
            start = time.perf_counter()
            load(engine, kind, built)
            add_epcis_rows(engine, built, int(w3.eth.chain_id), client.address)
            load_s = time.perf_counter() - start
            print(
                f"{kind}: loaded {built.lot_count:,} lots and {built.block:,} block times in {load_s:.1f} s"
            )
            data_dir = directory / kind
            data_dir.mkdir(exist_ok=True)
            settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
            # what the indexer does at start-up on an index without stored events
            start = time.perf_counter()
            stored = epcis_ids_store.refresh(engine, settings.epcis_identifiers())
            ids_s = time.perf_counter() - start
            analyze(engine)
            print(f"{kind}: stored {stored or 0:,} events and their eventIDs in {ids_s:.1f} s", flush=True)
            deployment.save(settings.deployment_path)
            runtime = build_runtime(settings, w3=w3)
            rng = random.Random(13)
            lots = [quote(lot_uri(rng.choice(built.rows["lots"])["lot_id"]), safe="") for _ in range(samples)]
            span = built.block * BLOCK_SECONDS
            window_start = GENESIS_TIME + 2 * span // 5
            window_end = window_start + span // 5
            starts = [rng.randint(window_start, window_end - span // 50) for _ in range(samples)]
            results: dict[str, Any] = {
                "load_s": round(load_s, 1),
                "event_ids": stored,
                "ids_s": round(ids_s, 1),
            }
            load_before = os.getloadavg()[0]
            with TestClient(create_app(runtime)) as http:
                sample = http.get(f"/epcis/events?MATCH_anyEPCClass={lots[0]}").json()
                results["events_per_lot"] = len(
                    sample["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
                )
                page = http.get(
                    "/epcis/events",
                    params={
                        "EQ_bizStep": "receiving",
                        "GE_eventTime": iso(starts[0]),
                        "LT_eventTime": iso(window_end),
                        "perPage": "100",
                    },
                ).json()
                results["page_events"] = len(page["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
                results["match_epc"] = measure(http, lambda i: f"/epcis/events?MATCH_epc={lots[i]}", samples)
                results["match_lot"] = measure(
                    http, lambda i: f"/epcis/events?MATCH_anyEPCClass={lots[i]}", samples
                )
                results["step_window_page"] = measure(
                    http,
                    lambda i: (
                        f"/epcis/events?EQ_bizStep=receiving&perPage=100"
                        f"&GE_eventTime={iso(starts[i])}&LT_eventTime={iso(window_end)}"
                    ),
                    samples,
                )
                if explain:
                    url = (
                        f"/epcis/events?EQ_bizStep=receiving&perPage=100"
                        f"&GE_eventTime={iso(starts[0])}&LT_eventTime={iso(window_end)}"
                    )
                    for plan in plans(runtime.engine, http, url):
                        print(f"{kind}: {plan}\n", flush=True)
            results["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            runtime.close()
            return results
        finally:
            engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="2,000 lots and 20 samples: that it runs")
    parser.add_argument(
        "--explain", action="store_true", help="print the plans of the page's SELECTs as they run"
    )
    options = parser.parse_args(argv)
    if options.smoke:
        options.lots, options.samples = 2_000, 20

    start = time.perf_counter()
    built = Builder(options.lots)
    build_s = time.perf_counter() - start
    print(f"built {built.lot_count:,} lots over {built.block:,} blocks in {build_s:.1f} s", flush=True)
    kinds = ["sqlite", "postgresql"] if options.db == "both" else [options.db]
    report: dict[str, Any] = {
        "lots": built.lot_count,
        "blocks": built.block,
        "samples": options.samples,
        "target_ms": TARGET_MS,
        "machine": f"{platform.machine()} {platform.python_version()}",
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-epcis-") as directory:
        for kind in kinds:
            results = run(kind, built, options.samples, Path(directory), options.explain)
            for query in QUERIES:
                p50, p99 = results[query]["p50_ms"], results[query]["p99_ms"]
                verdict = "PASS" if p99 <= TARGET_MS else "FAIL"
                failed |= verdict == "FAIL"
                print(
                    f"{kind:10} {query:18} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  (target {TARGET_MS} ms) {verdict}",
                    flush=True,
                )
            print(
                f"{kind:10} load average {results['load'][0]} before, {results['load'][1]} after", flush=True
            )
            report[kind] = results
    out = io.StringIO()
    json.dump(report, out, separators=(",", ":"))
    print(out.getvalue())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

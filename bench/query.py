"""Read-API latency over a synthetic index of 1,000,000 lots, on SQLite and PostgreSQL.

    .venv/bin/python bench/query.py                 # 1,000,000 lots, both databases
    .venv/bin/python bench/query.py --lots 50000 --db sqlite
    .venv/bin/python bench/query.py --smoke         # 2,000 lots, 20 samples: that it runs (the suite does)

Builds the index directly through the index's tables (not through the chain): lineage threads,
each a registered lot carried through 20 transformations that alternate a split (one output goes
on, the other stays active) and a blend with two fresh registered lots, so lineage depth reaches 20
and each blend fans in; every thread's last lot is handed to a buyer; a tenth of the lots carry an
assay and a document. Rows go in by executemany (SQLite) and COPY (PostgreSQL).

Then measures through the API in process, built the way `provenance serve` builds it
(`build_runtime`, the composition root, with an in-process chain holding a deployed registry, so
a change to what the app needs cannot leave this script behind; FastAPI's TestClient, so routing,
validation and JSON are in the figures): lot detail, provenance of a depth-10 lot, descendants of a registered lot
(every thread: about 30 lots), and a filtered list page (a site, status active, 100 lots, from a
cursor in the middle). Targets: p99 <= 25 ms for provenance at depth 10, p99 <= 10 ms for lot
detail and a list page, on both databases. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # tests/dbs.py makes and drops the databases

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, insert  # noqa: E402
from web3 import EthereumTesterProvider, Web3  # noqa: E402

from api.app import create_app  # noqa: E402
from provenance.bootstrap import build_runtime  # noqa: E402
from provenance.chain.deployment import deploy_registry  # noqa: E402
from provenance.config import Settings  # noqa: E402
from provenance.domain.lineage import allocate  # noqa: E402
from provenance.index.db import make_engine, upgrade  # noqa: E402
from provenance.index.models import Base  # noqa: E402
from provenance.index.tables import INSERT_ORDER  # noqa: E402
from tests.dbs import empty_database  # noqa: E402

THREAD_STEPS = 20
SITES = [f"SITE-{i:02d}" for i in range(20)]
COMMODITIES = ["Au-ore", "Cu-ore", "Li-ore"]
PROCESSOR = Web3.to_checksum_address("0x" + "22" * 20)
BUYER = Web3.to_checksum_address("0x" + "33" * 20)
REGISTRARS = [Web3.to_checksum_address(f"0x{i:040x}") for i in range(1, 21)]
LAB = Web3.to_checksum_address("0x" + "44" * 20)
EXTRACTED_AT = 1_700_000_000
TARGETS_MS = {"lot_detail": 10.0, "provenance_depth10": 25.0, "list_page": 10.0}
CHUNK = 50_000


def h(kind: str, n: int) -> str:
    return f"0x{kind}{n:0{64 - len(kind)}x}"


class Builder:
    """Rows of a synthetic index, in the tables' own column names."""

    def __init__(self, lots_wanted: int, seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in INSERT_ORDER}
        self.block = 1
        self.lot_count = 0
        self.transform_count = 0
        self.depth10: list[str] = []
        self.roots: list[str] = []
        while self.lot_count < lots_wanted:
            self.thread(lots_wanted)

    def coordinates(self, log_index: int = 0) -> dict[str, Any]:
        return {
            "block_number": self.block,
            "block_hash": h("b", self.block),
            "tx_hash": h("7", self.block),
            "tx_index": 0,
            "log_index": log_index,
        }

    def register(self, site: str, day: int) -> tuple[str, int]:
        self.block += 1
        self.lot_count += 1
        lot_id = f"R{self.lot_count:09d}"
        mass = self.random.randint(10_000_000, 30_000_000)
        registrar = REGISTRARS[SITES.index(site)]
        self.rows["lots"].append(
            {
                "lot_id": lot_id,
                "origin": "registered",
                "site": site,
                "face": "F1",
                "commodity": self.random.choice(COMMODITIES),
                "mass_g": mass,
                "grade_ppm": self.random.randint(1_000, 20_000),
                "extracted_at": EXTRACTED_AT + day * 86_400 + self.random.randint(0, 86_399),
                "record_hash": h("r", self.lot_count),
                "transform_id": None,
                "creator": registrar,
                "custodian": PROCESSOR,
                "pending_custodian": None,
                "remaining_g": mass,
                "status": "active",
                **self.coordinates(1),
            }
        )
        self.block += 1
        self.rows["custody_moves"].append(
            {"lot_id": lot_id, "action": "accepted", "from_address": registrar, "to_address": PROCESSOR}
            | self.coordinates()
        )
        self.extras(lot_id)
        return lot_id, mass

    def extras(self, lot_id: str) -> None:
        if self.random.random() < 0.1:
            self.block += 1
            self.rows["assays"].append(
                {
                    "lot_id": lot_id,
                    "lab": LAB,
                    "grade_ppm": self.random.randint(1_000, 20_000),
                    "method": "FireAssay",
                    "certificate_hash": h("c", self.block),
                    "assayed_at": EXTRACTED_AT,
                    "submitter": LAB,
                    "signature": "0x" + "1b" * 65,
                    **self.coordinates(),
                }
            )
            self.rows["documents"].append(
                {
                    "lot_id": lot_id,
                    "document_hash": h("d", self.block),
                    "kind": "weighbridge",
                    "anchored_by": PROCESSOR,
                    **self.coordinates(1),
                }
            )

    def consume(self, lot_id: str) -> None:
        for row in reversed(self.rows["lots"]):
            if row["lot_id"] == lot_id:
                row["remaining_g"] = 0
                row["status"] = "consumed"
                return

    def transform(
        self, kind: str, site: str, inputs: Sequence[tuple[str, int]], outputs: int
    ) -> list[tuple[str, int]]:
        self.block += 1
        self.transform_count += 1
        transform_id = self.transform_count
        consumed = [mass for _, mass in inputs]
        total = sum(consumed)
        loss = total // 100
        produced_total = total - loss
        produced = [produced_total // outputs] * outputs
        produced[-1] += produced_total - sum(produced)
        allocation = allocate(consumed, produced)
        self.rows["transformations"].append(
            {
                "transform_id": transform_id,
                "kind": kind,
                "site": site,
                "operator": PROCESSOR,
                "loss_g": loss,
                "consumed_g": total,
                "produced_g": produced_total,
                "record_hash": h("e", transform_id),
                **self.coordinates(),
            }
        )
        for i, (lot_id, mass) in enumerate(inputs):
            self.rows["transform_inputs"].append(
                {
                    "transform_id": transform_id,
                    "lot_id": lot_id,
                    "mass_g": mass,
                    "remaining_g": 0,
                    "loss_g": allocation.loss[i],
                    **self.coordinates(1 + i),
                }
            )
            self.consume(lot_id)
        made: list[tuple[str, int]] = []
        for j, mass in enumerate(produced):
            self.lot_count += 1
            lot_id = f"T{self.lot_count:09d}"
            log_index = 1 + len(inputs) + j
            self.rows["lots"].append(
                {
                    "lot_id": lot_id,
                    "origin": "transformed",
                    "site": site,
                    "face": None,
                    "commodity": "conc",
                    "mass_g": mass,
                    "grade_ppm": 9_000,
                    "extracted_at": None,
                    "record_hash": h("r", self.lot_count),
                    "transform_id": transform_id,
                    "creator": PROCESSOR,
                    "custodian": PROCESSOR,
                    "pending_custodian": None,
                    "remaining_g": mass,
                    "status": "active",
                    **self.coordinates(log_index),
                }
            )
            for i, (input_id, _) in enumerate(inputs):
                if allocation.edges[i][j] > 0:
                    self.rows["lineage_edges"].append(
                        {
                            "output_lot_id": lot_id,
                            "input_lot_id": input_id,
                            "transform_id": transform_id,
                            "mass_g": allocation.edges[i][j],
                            **self.coordinates(log_index),
                        }
                    )
            self.extras(lot_id)
            made.append((lot_id, mass))
        return made

    def thread(self, lots_wanted: int) -> None:
        site = self.random.choice(SITES)
        day = self.random.randint(0, 365)
        current = self.register(site, day)
        self.roots.append(current[0])
        for step in range(1, THREAD_STEPS + 1):
            if self.lot_count >= lots_wanted:
                return
            if step % 2:
                current = self.transform("split", site, [current], 2)[0]
            else:
                fresh = [
                    self.register(self.random.choice(SITES), self.random.randint(0, 365)) for _ in range(2)
                ]
                current = self.transform("blend", site, [current, *fresh], 1)[0]
            if step == 10:
                self.depth10.append(current[0])
        self.block += 1
        for row in reversed(self.rows["lots"]):
            if row["lot_id"] == current[0]:
                row["custodian"] = BUYER
                break
        for action in ("offered", "accepted"):
            self.rows["custody_moves"].append(
                {"lot_id": current[0], "action": action, "from_address": PROCESSOR, "to_address": BUYER}
                | self.coordinates(0 if action == "offered" else 1)
            )


def chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def load(engine: Engine, kind: str, built: Builder, *, with_cursor: bool = True) -> None:
    """The built rows into the index's tables; `with_cursor`: and the index's cursor at the last
    block (bench/pages.py leaves the cursor to the indexer that indexed its chain)."""
    tables = Base.metadata.tables
    if kind == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for name in INSERT_ORDER:
                rows = built.rows[name]
                if not rows:
                    continue
                columns = list(rows[0])
                with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[column] for column in columns])
            if with_cursor:
                cursor.execute(
                    "INSERT INTO index_cursor (id, block_number, block_hash) VALUES (1, %s, %s)",
                    (built.block, h("b", built.block)),
                )
            raw.commit()
            # A steady-state index has been vacuumed: without it the first reads of freshly copied
            # pages set their hint bits and write them back, which is load, not query, cost.
            driver = raw.driver_connection
            driver.autocommit = True  # type: ignore[union-attr]
            driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
        finally:
            raw.close()
        return
    with engine.begin() as connection:
        for name in INSERT_ORDER:
            for batch in chunks(built.rows[name]):
                connection.execute(insert(tables[name]), list(batch))
        if with_cursor:
            connection.execute(
                insert(tables["index_cursor"]),
                [{"id": 1, "block_number": built.block, "block_hash": h("b", built.block)}],
            )
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def stored_bytes(engine: Engine, kind: str) -> int:
    """What the index takes on disk: PostgreSQL's tables, their indexes and TOAST after ANALYZE
    (the load's own dead rows vacuumed); SQLite's used pages."""
    with engine.connect() as connection:
        if kind == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
            return int(
                connection.exec_driver_sql(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind = 'r'"
                ).scalar_one()
            )
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = connection.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int((pages - free) * size)


def measure(http: TestClient, paths: Callable[[int], str], samples: int) -> dict[str, float]:
    for i in range(min(20, samples)):
        assert http.get(paths(i)).status_code == 200
    times: list[float] = []
    for i in range(samples):
        path = paths(i)
        start = time.perf_counter()
        response = http.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return {"p50_ms": round(percentile(times, 0.5), 2), "p99_ms": round(percentile(times, 0.99), 2)}


def run(kind: str, built: Builder, samples: int, directory: Path) -> dict[str, Any]:
    with empty_database(kind, directory) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            start = time.perf_counter()
            load(engine, kind, built)
            load_s = time.perf_counter() - start
            print(f"{kind}: loaded {built.lot_count:,} lots in {load_s:.1f} s", flush=True)
            stored = stored_bytes(engine, kind)
            print(
                f"{kind}: the index holds {stored / 2**20:,.1f} MiB, {stored / built.lot_count:,.0f} bytes "
                "per lot (tables and indexes)",
                flush=True,
            )
            w3 = Web3(EthereumTesterProvider())
            _, deployment = deploy_registry(w3, w3.eth.accounts[0])
            data_dir = directory / kind
            data_dir.mkdir(exist_ok=True)
            settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
            deployment.save(settings.deployment_path)
            runtime = build_runtime(settings, w3=w3)
            rng = random.Random(11)
            details = [rng.choice(built.rows["lots"])["lot_id"] for _ in range(samples)]
            deep = [rng.choice(built.depth10) for _ in range(samples)]
            roots = [rng.choice(built.roots) for _ in range(samples)]
            sites = [rng.choice(SITES) for _ in range(samples)]
            results: dict[str, Any] = {
                "load_s": round(load_s, 1),
                "stored_bytes": stored,
                "bytes_per_lot": round(stored / built.lot_count),
            }
            with TestClient(create_app(runtime)) as http:
                middle = {
                    site: http.get(
                        "/v1/lots", params={"site": site, "status": "active", "limit": 500}
                    ).json()["next_cursor"]
                    for site in SITES
                }
                depth = http.get(f"/v1/lots/{deep[0]}/provenance").json()
                assert max(lot["depth"] for lot in depth["lots"]) == 10, "the depth-10 lot is not 10 deep"
                results["provenance_lots"] = len(depth["lots"])
                results["descendant_lots"] = len(http.get(f"/v1/lots/{roots[0]}/descendants").json()["lots"])
                results["lot_detail"] = measure(http, lambda i: f"/v1/lots/{details[i]}", samples)
                results["provenance_depth10"] = measure(
                    http, lambda i: f"/v1/lots/{deep[i]}/provenance", samples
                )
                results["descendants"] = measure(http, lambda i: f"/v1/lots/{roots[i]}/descendants", samples)
                results["list_page"] = measure(
                    http,
                    lambda i: (
                        f"/v1/lots?site={sites[i]}&status=active&limit=100"
                        + (f"&cursor={middle[sites[i]]}" if middle[sites[i]] else "")
                    ),
                    samples,
                )
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
    options = parser.parse_args(argv)
    if options.smoke:
        options.lots, options.samples = 2_000, 20

    start = time.perf_counter()
    built = Builder(options.lots)
    build_s = time.perf_counter() - start
    print(
        f"built {built.lot_count:,} lots, {len(built.rows['lineage_edges']):,} lineage edges, "
        f"{built.transform_count:,} transformations in {build_s:.1f} s",
        flush=True,
    )
    kinds = ["sqlite", "postgresql"] if options.db == "both" else [options.db]
    report: dict[str, Any] = {
        "lots": built.lot_count,
        "lineage_edges": len(built.rows["lineage_edges"]),
        "rows_built_s": round(build_s, 1),
        "samples": options.samples,
        "machine": f"{platform.machine()} {platform.python_version()}",
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-query-") as directory:
        for kind in kinds:
            results = run(kind, built, options.samples, Path(directory))
            for query, target in TARGETS_MS.items():
                p99 = results[query]["p99_ms"]
                verdict = "PASS" if p99 <= target else "FAIL"
                failed |= verdict == "FAIL"
                print(
                    f"{kind:10} {query:20} p50 {results[query]['p50_ms']:7.2f} ms  p99 {p99:7.2f} ms  "
                    f"(target {target} ms) {verdict}"
                )
            print(
                f"{kind:10} {'descendants':20} p50 {results['descendants']['p50_ms']:7.2f} ms  "
                f"p99 {results['descendants']['p99_ms']:7.2f} ms"
            )
            report[kind] = results
    out = io.StringIO()
    json.dump(report, out, separators=(",", ":"))
    print(out.getvalue())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

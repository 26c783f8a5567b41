"""Load: 64 clients for 60 s, 70 % reads and 30 % writes, against `provenance serve` on PostgreSQL.

    .venv/bin/python bench/load.py                     # seed ~4,000 lots, then 64 clients for 60 s
    .venv/bin/python bench/load.py --think-ms 0        # closed loop: the machine's capacity, not a latency
    .venv/bin/python bench/load.py --profile           # and py-spy on the server during the load
    .venv/bin/python bench/load.py --smoke             # 8 clients for 5 s: that it runs (the suite does)

Creates a fresh PostgreSQL database (`provenance_load_<random>` on 127.0.0.1:5432, user postgres),
migrates it with `provenance db upgrade`, and starts `provenance serve` on the embedded anvil node
with PROVENANCE_DATABASE_URL pointing at it (bench/api_write.py's `Server`, free ports, a temporary
data directory). Accounts: 8 registrars (sites SH1..SH8) and 4 processors, via
`provenance accounts create`. The database is dropped at the end, whatever happens.

**Seed** (not timed): each registrar registers its lots through `POST /v1/lots/batch`, hands a
quarter of them to its processor, who accepts them and then splits some, merges split outputs and
splits some merges again (lineage three deep).

**Load**: `--clients` threads, each with its own keep-alive `httpx.Client`, for `--duration` s. Each
client acts for one registrar (client % 8) and that registrar's processor, and owns a share of their
lots, so its writes never race another client's. Every request is a read with probability 0.7:

    lot detail 35 %, provenance 12 %, descendants 8 %, list page with filters 15 % (half of them
    the next page of a previous one), custody 10 %, EPCIS for a lot 8 %, lot timeline 5 %,
    health 6 %, verification of a lot 1 %

and a write otherwise, `?wait=false` (19 in 20; the 20th waits up to 5 s):

    single-lot registration 35 %, batch of 5-20 lots 10 %, handover of 1-3 of the client's lots
    registrar -> processor 20 %, accept of a confirmed handover 15 %, transformation 20 %
    (split 2/3, merge 1/3) of lots the client's processor holds.

A write that needs lots the client does not have yet (a handover needs a confirmed registration,
an accept a confirmed offer, a transformation an accepted lot) first asks
`GET /v1/operations/{id}` about its oldest pending operation of that kind (counted apart, as
"operation status"), and registers a lot instead if that one is not confirmed yet.

**Index lag**, every 200 ms: `X-Index-Block` of `GET /v1/lots?limit=1`, then the node's
`eth_blockNumber`; a 50 ms poller notes when each block was first seen, and the lag is the time
since the first block the index lacks appeared (0 when it has the head), taken when the answer
arrives (the target's figure; an upper bound, as it includes the API's own latency) and when the
request was sent (a lower bound).

**At the end** every acknowledged operation is followed to a final status
(`GET /v1/operations/{id}?wait=true`), then checked on chain: each lot of a confirmed registration
must have exactly one `LotRegistered` log (eth_getLogs), and every transaction of a confirmed
operation a successful receipt. Lost = acknowledged but never final, or confirmed but not on chain.
The operations' time to confirmation (their `created_at` to `updated_at`) is reported too.

Reads over 100 ms are counted by the second of the load they were sent in, which tells a stall
(many in a few seconds) from steady queueing. The 20 slowest reads are printed in the order sent,
each with the app's own time (its `Server-Timing` header: the rest was waiting outside the app)
and what the server did meanwhile, sampled every 50 ms: the peak CPU of each part (API, indexer
and worker, anvil, postgres), PostgreSQL's busy backends (and those idle in a transaction), and
whether the node saved its chain then (a snapshot file appearing).

**Pace**: each client pauses an exponential time of mean `--think-ms` (default 2,000) between
requests, and starts after a uniform pause of up to that long: a person at a screen or a truck's
system, not a loop firing the next request the instant the last one answers; 64 such clients offer
about 33 requests/s. With `--think-ms 0` the clients form a closed loop, which measures capacity
instead: by Little's law its mean latency is the clients over the throughput (64 / 165 requests/s
= 0.39 s on the 2-core machine), so no latency target can be read from it.

Targets: no 5xx, no lost write, `GET /v1/lots/{id}` p99 <= 25 ms, read p99 <= 50 ms (the reads of the mix but verification, which
replays a lineage against the chain, and the operation-status polls; both are printed apart),
index lag p99 <= 2 s. Prints figures beside targets and one JSON object as its last line. Exit 2
if a write was lost, 1 if a target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_write import (
    Profiler,
    Server,
    machine,
    percentile_ms,
    registered_on_chain,
)

TARGET_READ_P99_MS = 50.0
TARGET_LOT_P99_MS = 25.0
TIMELINE_READS = 20
"""The slowest reads printed with what the server did while each waited."""
WATCH_MS = 50.0
TARGET_LAG_P99_S = 2.0
SLOW_READ_MS = 100.0
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
COMMODITY = "CU-ORE"
READS = {
    "lot": 35,
    "provenance": 12,
    "descendants": 8,
    "list": 15,
    "custody": 10,
    "epcis": 8,
    "timeline": 5,
    "health": 6,
    "verify": 1,
}
WRITES = {"register": 35, "batch": 10, "handover": 20, "accept": 15, "transform": 20}
ENDPOINTS = {
    "lot": "GET /v1/lots/{id}",
    "provenance": "GET /v1/lots/{id}/provenance",
    "descendants": "GET /v1/lots/{id}/descendants",
    "list": "GET /v1/lots?filters",
    "custody": "GET /v1/lots/{id}/custody",
    "epcis": "GET /v1/epcis/events?lot=",
    "timeline": "GET /v1/lots/{id}/timeline",
    "health": "GET /health",
    "verify": "GET /v1/lots/{id}/verify",
    "status": "GET /v1/operations/{id}",
    "register": "POST /v1/lots",
    "batch": "POST /v1/lots/batch",
    "handover": "POST /v1/handovers",
    "accept": "POST /v1/handovers/accept",
    "transform": "POST /v1/transformations",
}
READ_KINDS = frozenset(READS) | {"status"}


# ------------------------------------------------------------------------------- database and server


def admin_sql(template: LiteralString, database: str) -> None:
    """CREATE or DROP DATABASE `database`, outside a transaction, from the server's `postgres` database."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql.SQL(template).format(sql.Identifier(database)))


class LoadServer(Server):
    """api_write's server, on a PostgreSQL index migrated by `provenance db upgrade` first."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        super().__init__(data_dir)
        self.env["PROVENANCE_DATABASE_URL"] = database_url

    def run(self, *args: str) -> str:
        done = subprocess.run(
            self.command(*args), env=self.env, cwd=Path(__file__).resolve().parents[1],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                f"provenance {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout

    def create_account(self, name: str, role: str, site: str | None = None) -> tuple[str, str]:
        """(address, API token) of a new account with `role`."""
        args = ["accounts", "create", "--name", name, "--role", role] + (["--site", site] if site else [])
        lines = self.run(*args).strip().splitlines()
        address = lines[0].split(":", 1)[1].split(",", 1)[0].strip()
        return address, lines[-1].strip()


# ------------------------------------------------------------------------------- system figures


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process and its waited-for children, from /proc."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def process_tree(root: int, pids_file: Path | None = None) -> dict[int, str]:
    """pid -> command name of `root` and its descendants, plus every postgres process; serve's
    children by their names in its `pids_file` (api-2, indexer, ...)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            names[int(entry.name)] = stat[stat.index("(") + 1 : stat.rindex(")")]
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    chosen = {pid for pid, name in names.items() if name.startswith("postgres")} | {root}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in chosen} - chosen
        chosen |= more
        grew = bool(more)
    roles: dict[int, str] = {}
    if pids_file is not None:
        with contextlib.suppress(OSError, ValueError):
            roles = {pid: name for name, pid in json.loads(pids_file.read_text(encoding="utf-8")).items()}
    return {pid: roles.get(pid, names.get(pid, "?")) for pid in chosen}


def cpu_by_part(pids: dict[int, str], root: int) -> dict[str, float]:
    """CPU seconds of the API process, its Python children (indexer, outbox worker), anvil, postgres."""
    totals: dict[str, float] = defaultdict(float)
    for pid, name in pids.items():
        if pid == root or name.startswith("api-"):
            part = "api"
        elif name.startswith("python") or name in ("indexer", "outbox-worker"):
            part = "indexer+worker"
        elif name.startswith("postgres"):
            part = "postgres"
        else:
            part = name
        totals[part] += cpu_seconds(pid)
    return totals


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ------------------------------------------------------------------------------- what the server did


@dataclass(frozen=True)
class SlowRead:
    sent_at: float
    """perf_counter when it was sent."""
    kind: str
    ms: float
    timing: dict[str, float]
    """The server's `Server-Timing`: `app` (its own time: the rest was spent outside it), and for
    reads `wait` (until its queries started on their thread) and `read` (the queries and rows)."""


def server_timing(response: httpx.Response) -> dict[str, float]:
    found: dict[str, float] = {}
    for part in response.headers.get("server-timing", "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        with contextlib.suppress(ValueError):
            found[name] = float(duration)
    return found


@dataclass(frozen=True)
class Sample:
    at: float
    """perf_counter at the end of the sample."""
    cpu: dict[str, float]
    """Share of a core each part used since the previous sample."""
    busy_backends: int
    """PostgreSQL backends of the load's database not idle (running, or idle in a transaction)."""
    idle_in_transaction: int


class ServerWatch:
    """Samples the server every `every_s` (default WATCH_MS) while the load runs: CPU by part (API, indexer and worker,
    anvil, postgres), PostgreSQL's busy backends, and the node's saves (snapshot files appearing)."""

    def __init__(
        self, root: int, database: str, snapshots: Path, stop: threading.Event, every_s: float
    ) -> None:
        self.root, self.database, self.snapshots, self.stop = root, database, snapshots, stop
        self.every_s = every_s
        self.samples: list[Sample] = []
        self.saves: list[float] = []
        """perf_counter when each new snapshot file was first seen."""
        self.save_bytes: list[int] = []
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def start(self) -> list[threading.Thread]:
        if self.every_s <= 0:
            return []
        self.thread.start()
        return [self.thread]

    def snapshot_names(self) -> set[str]:
        with contextlib.suppress(OSError):
            return {entry.name for entry in os.scandir(self.snapshots) if entry.name.startswith("snapshot-")}
        return set()

    def watch(self) -> None:
        pids = process_tree(self.root, self.snapshots.parent / "pids.json")
        seen = self.snapshot_names()
        before, then = cpu_by_part(pids, self.root), time.perf_counter()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as pg:
            while not self.stop.wait(self.every_s):
                rows = pg.execute(
                    "SELECT state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND state IS NOT NULL AND state <> 'idle'",
                    (self.database,),
                ).fetchall()
                now_cpu, now = cpu_by_part(pids, self.root), time.perf_counter()
                share = {part: (now_cpu[part] - before.get(part, 0.0)) / (now - then) for part in now_cpu}
                self.samples.append(
                    Sample(
                        now, share, len(rows), sum(1 for (state,) in rows if state == "idle in transaction")
                    )
                )
                before, then = now_cpu, now
                names = self.snapshot_names()
                for name in names - seen:
                    self.saves.append(now)
                    with contextlib.suppress(OSError):
                        self.save_bytes.append((self.snapshots / name).stat().st_size)
                seen = names

    def during(self, start: float, end: float) -> str:
        """What the server did from `start` to `end` (a sample either side)."""
        window = [
            sample for sample in self.samples if start - self.every_s <= sample.at <= end + self.every_s
        ]
        if not window:
            return "no samples"
        peaks: dict[str, float] = defaultdict(float)
        for sample in window:
            for part, share in sample.cpu.items():
                peaks[part] = max(peaks[part], share)
        cpu = ", ".join(
            f"{part} {share * 100:.0f}%" for part, share in sorted(peaks.items(), key=lambda kv: -kv[1])
        )
        busy = max(sample.busy_backends for sample in window)
        idle_tx = max(sample.idle_in_transaction for sample in window)
        saving = any(start - 0.5 <= saved <= end + 0.5 for saved in self.saves)
        return f"CPU peak {cpu}; pg busy {busy} (idle in tx {idle_tx}){'; NODE SAVE' if saving else ''}"


def slow_read_timeline(
    slowest: list[SlowRead], watch: ServerWatch, load_started: float
) -> list[dict[str, Any]]:
    """Prints the slowest reads in the order they were sent, each beside what the server did."""
    print(
        f"\nthe {len(slowest)} slowest reads, in the order sent (Server-Timing: app = inside the app, of which "
        "wait = until its queries started on their thread, read = its queries and rows):"
    )
    timeline = []
    for read in sorted(slowest, key=lambda read: read.sent_at):
        end = read.sent_at + read.ms / 1000
        doing = watch.during(read.sent_at, end)
        phases = " ".join(
            f"{name} {read.timing[name]:.1f}" for name in ("app", "wait", "read") if name in read.timing
        )
        print(
            f"  +{read.sent_at - load_started:6.2f} s {ENDPOINTS[read.kind]:<32}{read.ms:7.1f} ms ({phases}): {doing}"
        )
        timeline.append(
            {"at_s": round(read.sent_at - load_started, 2), "endpoint": ENDPOINTS[read.kind],
             "ms": round(read.ms, 1), "server_timing": read.timing, "server": doing}
        )  # fmt: skip
    return timeline


# ------------------------------------------------------------------------------- accounts and lots


@dataclass(frozen=True)
class Account:
    name: str
    address: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Op:
    """An acknowledged write, followed to its final status at the end."""

    id: str
    kind: str
    account: Account
    registered: list[str]
    final: bool = False
    status: str = "pending"
    transactions: list[str] = field(default_factory=list)
    error: str | None = None
    seconds_to_final: float | None = None
    """From the server's created_at to its updated_at once final: the outbox's time to confirm."""

    def update(self, body: dict[str, Any]) -> None:
        self.status, self.final = body["status"], body["final"]
        if self.final:
            created, updated = (datetime.fromisoformat(body[key]) for key in ("created_at", "updated_at"))
            self.seconds_to_final = (updated - created).total_seconds()
        self.transactions = [tx["tx_hash"] for tx in body["transactions"] if tx.get("tx_hash")]
        if body.get("error"):
            self.error = body["error"]["name"]


def lot_body(lot_id: str, rng: random.Random, now: int) -> dict[str, Any]:
    return {
        "lot_id": lot_id,
        "face": f"F{rng.randint(1, 6)}",
        "commodity": COMMODITY,
        "mass_g": rng.randint(20_000_000, 40_000_000),
        "grade_ppm": rng.randint(6_000, 18_000),
        "extracted_at": now - rng.randint(60, 86_400),
        "record_hash": "0x" + rng.randbytes(32).hex(),
    }


def output(lot_id: str, mass_g: int, rng: random.Random) -> dict[str, Any]:
    return {
        "lot_id": lot_id,
        "commodity": COMMODITY,
        "mass_g": mass_g,
        "grade_ppm": rng.randint(6_000, 18_000),
        "record_hash": "0x" + rng.randbytes(32).hex(),
    }


def split_body(
    site: str, lot_id: str, mass_g: int, ids: tuple[str, str], rng: random.Random
) -> dict[str, Any]:
    loss = mass_g // 200
    first = mass_g * rng.randint(40, 60) // 100
    return {
        "kind": "split",
        "site": site,
        "inputs": [{"lot_id": lot_id, "mass_g": mass_g}],
        "outputs": [output(ids[0], first, rng), output(ids[1], mass_g - loss - first, rng)],
        "loss_g": loss,
        "record_hash": "0x" + rng.randbytes(32).hex(),
    }


def merge_body(site: str, inputs: list[tuple[str, int]], new_id: str, rng: random.Random) -> dict[str, Any]:
    total = sum(mass for _, mass in inputs)
    loss = total // 500
    return {
        "kind": "merge",
        "site": site,
        "inputs": [{"lot_id": lot_id, "mass_g": mass} for lot_id, mass in inputs],
        "outputs": [output(new_id, total - loss, rng)],
        "loss_g": loss,
        "record_hash": "0x" + rng.randbytes(32).hex(),
    }


def outputs_of(body: dict[str, Any]) -> dict[str, int]:
    return {out["lot_id"]: out["mass_g"] for out in body["outputs"]}


# ------------------------------------------------------------------------------- the seed


class Seeder:
    """Writes with ?wait=true, each required to be confirmed: the history the load starts from."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=120)
        self.ops: list[Op] = []
        self.lock = threading.Lock()

    def write(
        self, path: str, body: dict[str, Any], account: Account, registered: Sequence[str] = ()
    ) -> None:
        response = self.client.post(
            path, params={"wait": "true", "timeout": "60"}, json=body,
            headers={**account.auth, "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        if response.status_code not in (200, 202):
            raise RuntimeError(f"seed {path}: {response.status_code} {response.text[:300]}")
        op = Op(response.json()["id"], path, account, list(registered))
        op.update(response.json())
        while not op.final:
            answer = self.client.get(
                f"/v1/operations/{op.id}", params={"wait": "true", "timeout": "60"}, headers=account.auth
            )
            op.update(answer.json())
        if op.status != "confirmed":
            raise RuntimeError(f"seed {path} {op.status}: {op.error}")
        with self.lock:
            self.ops.append(op)


@dataclass
class Holdings:
    """What one client owns: registrar-held and processor-held lots with their remaining grams."""

    registrar_lots: dict[str, int] = field(default_factory=dict)
    processor_lots: dict[str, int] = field(default_factory=dict)


def seed(
    url: str,
    registrars: list[tuple[str, Account]],
    processors: list[Account],
    lots_per_registrar: int,
    rng_seed: int,
) -> tuple[dict[str, int], list[dict[str, int]], list[str], Seeder]:
    """Returns (registrar-held lots, each processor's lots, lots with lineage, seeder); a
    registrar-held lot id starts with its registrar's site."""
    seeder = Seeder(url)
    now = int(time.time())
    registrar_lots: dict[str, int] = {}
    processor_lots: list[dict[str, int]] = [{} for _ in processors]
    lineage: list[str] = []
    lock = threading.Lock()

    def per_registrar(number: int, site: str, registrar: Account) -> None:
        rng = random.Random(rng_seed * 100 + number)
        processor = processors[number % len(processors)]
        masses: dict[str, int] = {}
        for first in range(0, lots_per_registrar, 250):
            lots = [
                lot_body(f"{site}-S-{i:05d}", rng, now)
                for i in range(first, min(first + 250, lots_per_registrar))
            ]
            seeder.write(
                "/v1/lots/batch", {"site": site, "lots": lots}, registrar, [lot["lot_id"] for lot in lots]
            )
            masses.update((lot["lot_id"], lot["mass_g"]) for lot in lots)
        handed = sorted(masses)[: lots_per_registrar // 4]
        seeder.write("/v1/handovers", {"lot_ids": handed, "to": processor.address}, registrar)
        seeder.write("/v1/handovers/accept", {"lot_ids": handed}, processor)
        held = {lot_id: masses.pop(lot_id) for lot_id in handed}
        plant = f"PLANT{number % len(processors) + 1}"
        tag = f"P{number % len(processors) + 1}-R{number + 1}"
        # splits of a third of the handed lots, merges of pairs of their outputs, splits of a third of those
        splits = handed[: len(handed) // 3]
        outputs: list[str] = []
        counter = 0
        for lot_id in splits:
            ids = (f"{tag}-{counter:05d}", f"{tag}-{counter + 1:05d}")
            counter += 2
            body = split_body(plant, lot_id, held.pop(lot_id), ids, rng)
            seeder.write("/v1/transformations", body, processor)
            held.update(outputs_of(body))
            outputs.extend(ids)
            lineage.append(lot_id)
        merged: list[str] = []
        for a, b in zip(outputs[0::4], outputs[2::4], strict=False):
            new_id = f"{tag}-{counter:05d}"
            counter += 1
            body = merge_body(plant, [(a, held.pop(a)), (b, held.pop(b))], new_id, rng)
            seeder.write("/v1/transformations", body, processor)
            held.update(outputs_of(body))
            merged.append(new_id)
        for lot_id in merged[::3]:
            ids = (f"{tag}-{counter:05d}", f"{tag}-{counter + 1:05d}")
            counter += 2
            body = split_body(plant, lot_id, held.pop(lot_id), ids, rng)
            seeder.write("/v1/transformations", body, processor)
            held.update(outputs_of(body))
        with lock:
            registrar_lots.update(masses)
            processor_lots[number % len(processors)].update(held)
            lineage.extend(outputs)
            lineage.extend(merged)

    errors: list[BaseException] = []

    def guarded(number: int, site: str, registrar: Account) -> None:
        try:
            per_registrar(number, site, registrar)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [
        threading.Thread(target=guarded, args=(number, site, account))
        for number, (site, account) in enumerate(registrars)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"seed failed: {errors[0]}")
    return registrar_lots, processor_lots, lineage, seeder


# ------------------------------------------------------------------------------- the clients


@dataclass
class Shared:
    """What the clients share: lots to read, the processors' addresses; appended under the GIL."""

    readable: list[str]
    lineage: list[str]
    custodians: list[str]
    sites: list[str]
    stop: threading.Event = field(default_factory=threading.Event)


class LoadClient:
    """One client: its own keep-alive connection, its own lots, its own figures."""

    def __init__(
        self,
        number: int,
        url: str,
        site: str,
        registrar: Account,
        processor: Account,
        plant: str,
        holdings: Holdings,
        shared: Shared,
        think_s: float,
    ) -> None:
        self.number, self.site, self.registrar, self.processor, self.plant = (
            number,
            site,
            registrar,
            processor,
            plant,
        )
        self.held = holdings
        self.shared = shared
        self.think_s = think_s
        self.rng = random.Random(number)
        self.client = httpx.Client(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
        )
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.slow_reads: list[float] = []
        """perf_counter times at which reads of the mix taking over SLOW_READ_MS were sent."""
        self.slowest: list[SlowRead] = []
        """This client's slowest reads of the mix (at most TIMELINE_READS)."""
        self.statuses: Counter[tuple[str, str]] = Counter()
        self.ops: list[Op] = []
        self.pending: dict[str, list[tuple[Op, Any]]] = defaultdict(list)
        """Unconfirmed operations this client waits on, by what they give: registered lots,
        offers to accept, lots its processor holds."""
        self.cursors: dict[str, str] = {}
        self.counter = 0
        self.now = int(time.time())

    # ---- one request

    def request(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self.statuses[(kind, type(error).__name__)] += 1
            return None
        endpoint = kind
        if method == "POST":
            endpoint = f"{kind}?wait=true" if kwargs.get("params", {}).get("wait") == "true" else kind
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.latencies[endpoint].append(elapsed_ms)
        if kind in READS and kind != "verify":
            if elapsed_ms > SLOW_READ_MS:
                self.slow_reads.append(started)
            if len(self.slowest) < TIMELINE_READS or elapsed_ms > self.slowest[-1].ms:
                self.slowest.append(SlowRead(started, kind, elapsed_ms, server_timing(response)))
                self.slowest.sort(key=lambda read: -read.ms)
                del self.slowest[TIMELINE_READS:]
        self.statuses[(endpoint, str(response.status_code))] += 1
        return response

    def write(
        self, kind: str, path: str, body: dict[str, Any], account: Account, registered: Sequence[str] = ()
    ) -> Op | None:
        wait = self.rng.random() < 0.05
        params = {"wait": "true", "timeout": "5"} if wait else {"wait": "false"}
        response = self.request(
            kind, "POST", path, params=params, json=body,
            headers={**account.auth, "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        if response is None or response.status_code not in (200, 202):
            return None
        op = Op(response.json()["id"], kind, account, list(registered))
        op.update(response.json())
        self.ops.append(op)
        return op

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-C{self.number:02d}-{self.counter:05d}"

    # ---- reads

    def some_lot(self) -> str:
        pool = self.shared.lineage if self.rng.random() < 0.5 else self.shared.readable
        return pool[self.rng.randrange(len(pool))]

    def read(self) -> None:
        kind = self.rng.choices(list(READS), weights=list(READS.values()))[0]
        if kind == "health":
            self.request(kind, "GET", "/health")
        elif kind == "list":
            self.list_page()
        elif kind == "epcis":
            self.request(kind, "GET", "/v1/epcis/events", params={"lot": self.some_lot()})
        else:
            suffix = {"lot": "", "provenance": "/provenance", "descendants": "/descendants",
                      "custody": "/custody", "timeline": "/timeline", "verify": "/verify"}[kind]  # fmt: skip
            self.request(kind, "GET", f"/v1/lots/{self.some_lot()}{suffix}")

    def list_page(self) -> None:
        shape = self.rng.randrange(4)
        if shape == 0:
            params = {"site": self.rng.choice(self.shared.sites), "status": "active", "limit": "50"}
        elif shape == 1:
            params = {"commodity": COMMODITY, "limit": "100"}
        elif shape == 2:
            params = {"custodian": self.rng.choice(self.shared.custodians), "limit": "50"}
        else:
            params = {
                "site": self.rng.choice(self.shared.sites),
                "extracted_from": str(self.now - 43_200),
                "limit": "100",
            }
        key = json.dumps(params, sort_keys=True)
        if key in self.cursors and self.rng.random() < 0.5:
            params = {**params, "cursor": self.cursors.pop(key)}
        response = self.request("list", "GET", "/v1/lots", params=params)
        if response is not None and response.status_code == 200:
            cursor = response.json().get("next_cursor")
            if cursor:
                self.cursors[key] = cursor

    # ---- writes

    def confirmed(self, what: str) -> Any | None:
        """The oldest pending operation giving `what`, if GET /v1/operations says it is confirmed."""
        if not self.pending[what]:
            return None
        op, payload = self.pending[what][0]
        response = self.request("status", "GET", f"/v1/operations/{op.id}", headers=op.account.auth)
        if response is None or response.status_code != 200:
            return None
        op.update(response.json())
        if not op.final:
            return None
        self.pending[what].pop(0)
        return payload if op.status == "confirmed" else None

    def register(self, count: int) -> None:
        lots = [lot_body(self.next_id(self.site), self.rng, self.now) for _ in range(count)]
        ids = [lot["lot_id"] for lot in lots]
        if count == 1:
            op = self.write("register", "/v1/lots", {"site": self.site, **lots[0]}, self.registrar, ids)
        else:
            op = self.write("batch", "/v1/lots/batch", {"site": self.site, "lots": lots}, self.registrar, ids)
        if op is not None:
            self.pending["registered"].append((op, {lot["lot_id"]: lot["mass_g"] for lot in lots}))

    def hand_over(self) -> bool:
        if len(self.held.registrar_lots) < 3:
            got = self.confirmed("registered")
            if got is None:
                return False
            self.held.registrar_lots.update(got)
            self.shared.readable.extend(got)
        lots = self.rng.sample(
            sorted(self.held.registrar_lots), min(len(self.held.registrar_lots), self.rng.randint(1, 3))
        )
        op = self.write(
            "handover", "/v1/handovers", {"lot_ids": lots, "to": self.processor.address}, self.registrar
        )
        if op is not None:
            self.pending["offered"].append(
                (op, {lot_id: self.held.registrar_lots.pop(lot_id) for lot_id in lots})
            )
        return True

    def accept(self) -> bool:
        offered = self.confirmed("offered")
        if offered is None:
            return False
        op = self.write("accept", "/v1/handovers/accept", {"lot_ids": sorted(offered)}, self.processor)
        if op is not None:
            self.pending["held"].append((op, offered))
        return True

    def transform(self) -> bool:
        if len(self.held.processor_lots) < 2:
            got = self.confirmed("held")
            if got is None:
                return False
            self.held.processor_lots.update(got)
        lots = self.held.processor_lots
        if self.rng.random() < 2 / 3:
            lot_id = self.rng.choice(sorted(lots))
            body = split_body(
                self.plant, lot_id, lots.pop(lot_id), (self.next_id("X"), self.next_id("X")), self.rng
            )
        else:
            pair = self.rng.sample(sorted(lots), 2)
            body = merge_body(
                self.plant, [(lot_id, lots.pop(lot_id)) for lot_id in pair], self.next_id("X"), self.rng
            )
        op = self.write("transform", "/v1/transformations", body, self.processor)
        if op is not None:
            self.pending["held"].append((op, outputs_of(body)))
        return True

    def write_something(self) -> None:
        kind = self.rng.choices(list(WRITES), weights=list(WRITES.values()))[0]
        done = {"handover": self.hand_over, "accept": self.accept, "transform": self.transform}.get(kind)
        if done is not None and done():
            return
        self.register(self.rng.randint(5, 20) if kind == "batch" else 1)

    def run(self) -> None:
        with self.client:
            if self.think_s:  # clients with pauses arrive spread out, not all in the first millisecond
                self.shared.stop.wait(self.rng.uniform(0, self.think_s))
            while not self.shared.stop.is_set():
                if self.rng.random() < 0.7:
                    self.read()
                else:
                    self.write_something()
                if self.think_s:
                    self.shared.stop.wait(self.rng.expovariate(1 / self.think_s))


# ------------------------------------------------------------------------------- index lag


class LagSampler:
    """Every 200 ms (overlapping when an answer takes longer): the index's block (X-Index-Block)
    and the node's head; a 50 ms head poller notes when each block appeared, so a lag in blocks
    becomes a lag in seconds."""

    def __init__(self, url: str, rpc_url: str, stop: threading.Event) -> None:
        self.url, self.rpc_url, self.stop = url, rpc_url, stop
        self.first_seen: dict[int, float] = {}
        self.lags_s: list[float] = []
        self.lags_at_send_s: list[float] = []
        self.lags_blocks: list[int] = []
        self.loads: list[float] = []
        self.errors = 0

    def head(self, rpc: httpx.Client) -> int:
        answer = rpc.post("", json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
        return int(answer.json()["result"], 16)

    def poll_heads(self) -> None:
        with httpx.Client(base_url=self.rpc_url, timeout=10) as rpc:
            last = -1
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    head, now = self.head(rpc), time.perf_counter()
                    for number in range(max(last + 1, head - 1000), head + 1):
                        self.first_seen.setdefault(number, now)
                    last = max(last, head)
                self.stop.wait(0.05)

    def sample_once(self, api: httpx.Client, rpc: httpx.Client) -> None:
        """The lag at the answer's arrival (an upper bound: it includes the API's own latency) and at
        the request's sending (a lower bound: the index may have grown while the request waited)."""
        sent = time.perf_counter()
        try:
            indexed = int(api.get("/v1/lots", params={"limit": "1"}).headers["X-Index-Block"])
            head, now = self.head(rpc), time.perf_counter()
        except (httpx.HTTPError, KeyError, ValueError):
            self.errors += 1
            return
        behind = max(0, head - indexed)
        self.lags_blocks.append(behind)
        appeared = self.first_seen.get(indexed + 1, now)
        self.lags_s.append(0.0 if behind == 0 else now - appeared)
        self.lags_at_send_s.append(0.0 if behind == 0 else max(0.0, sent - appeared))

    def sample(self) -> None:
        """A sample every 200 ms, overlapping when the API takes longer than that to answer."""
        limits = httpx.Limits(max_connections=8)
        with (
            httpx.Client(base_url=self.url, timeout=10, limits=limits) as api,
            httpx.Client(base_url=self.rpc_url, timeout=10, limits=limits) as rpc,
            ThreadPoolExecutor(max_workers=8) as pool,
        ):
            ticks = 0
            while not self.stop.wait(0.2):
                pool.submit(self.sample_once, api, rpc)
                ticks += 1
                if ticks % 5 == 0:
                    self.loads.append(load_average())

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.poll_heads, daemon=True),
            threading.Thread(target=self.sample, daemon=True),
        ]
        for thread in threads:
            thread.start()
        return threads


# ------------------------------------------------------------------------------- the end: final and on chain


def follow_to_final(url: str, ops: list[Op], deadline_s: float) -> None:
    """GET /v1/operations/{id}?wait=true for every operation not final yet, 16 at a time."""
    todo = [op for op in ops if not op.final]
    lock = threading.Lock()
    deadline = time.monotonic() + deadline_s

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=90) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    op = todo.pop()
                while not op.final and time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        response = client.get(
                            f"/v1/operations/{op.id}",
                            params={"wait": "true", "timeout": "30"},
                            headers=op.account.auth,
                        )
                        if response.status_code == 200:
                            op.update(response.json())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def receipts(rpc_url: str, hashes: list[str]) -> dict[str, int | None]:
    """Receipt status per transaction hash (None: no receipt), by JSON-RPC batches of 200."""
    found: dict[str, int | None] = {}
    with httpx.Client(timeout=120) as rpc:
        for first in range(0, len(hashes), 200):
            chunk = hashes[first : first + 200]
            batch = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [tx]}
                for i, tx in enumerate(chunk)
            ]
            for answer in rpc.post(rpc_url, json=batch).json():
                receipt = answer.get("result")
                found[chunk[answer["id"]]] = int(receipt["status"], 16) if receipt else None
    return found


# ------------------------------------------------------------------------------- the run


def percentile_s(values: list[float], fraction: float) -> float | None:
    """A percentile of seconds, to the millisecond."""
    value = percentile_ms([v * 1000 for v in values], fraction)
    return None if value is None else round(value / 1000, 3)


def summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": percentile_ms(values, 0.50),
        "p99_ms": percentile_ms(values, 0.99),
        "max_ms": percentile_ms(values, 1.0),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--registrars", type=int, default=8)
    parser.add_argument("--processors", type=int, default=4)
    parser.add_argument("--seed-lots", type=int, default=500, help="lots per registrar in the seed")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=2000.0,
        help="mean pause of a client between requests (0: closed loop)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the load")
    parser.add_argument(
        "--watch-ms",
        type=float,
        default=WATCH_MS,
        help="sample what the server does this often (0: not at all)",
    )
    parser.add_argument("--api-processes", type=int, default=1, help="PROVENANCE_API_PROCESSES of the server")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and the database")
    parser.add_argument(
        "--smoke", action="store_true", help="8 clients for 5 s on a small seed: that it runs"
    )
    options = parser.parse_args(argv)
    if options.smoke:
        options.clients, options.duration, options.registrars, options.processors = 8, 5.0, 2, 1
        options.seed_lots, options.think_ms = 20, 200.0

    print(f"bench/load.py, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {machine()}", flush=True)
    database = f"provenance_load_{uuid.uuid4().hex[:10]}"
    admin_sql("CREATE DATABASE {}", database)
    scratch = Path(tempfile.mkdtemp(prefix="provenance-load-bench-"))
    server = LoadServer(scratch / "data", PG + database)
    server.env["PROVENANCE_API_PROCESSES"] = str(options.api_processes)
    try:
        code, result = run(options, server, scratch)
    finally:
        stopped = server.stop()
        print(f"server stopped (exit code {stopped})", flush=True)
        if options.keep:
            print(f"kept: data in {scratch}, database {database}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            with contextlib.suppress(psycopg.Error):
                admin_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", database)
    print(json.dumps(result))
    return code


def run(options: argparse.Namespace, server: LoadServer, scratch: Path) -> tuple[int, dict[str, Any]]:
    """Returns the exit code and the figures (printed last, after the cleanup)."""
    started = time.perf_counter()
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.run("db", "upgrade")
    server.start()
    assert server.process is not None
    rpc_url = f"http://127.0.0.1:{server.node_port}"
    sites = [f"SH{number + 1}" for number in range(options.registrars)]
    processors = [
        Account(f"proc-{number + 1}", *server.create_account(f"proc-{number + 1}", "processor"))
        for number in range(options.processors)
    ]
    registrars = [
        (
            site,
            Account(f"reg-{site.lower()}", *server.create_account(f"reg-{site.lower()}", "registrar", site)),
        )
        for site in sites
    ]
    print(
        f"server on PostgreSQL ready, {len(registrars)} registrars and {len(processors)} processors: {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    started = time.perf_counter()
    registrar_lots, processor_lots, lineage, seeder = seed(
        server.url, registrars, processors, options.seed_lots, 7
    )
    with httpx.Client(base_url=server.url, timeout=30) as api, httpx.Client(timeout=10) as rpc:
        while True:
            head = int(
                rpc.post(
                    rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
                ).json()["result"],
                16,
            )
            if int(api.get("/v1/lots", params={"limit": "1"}).headers.get("X-Index-Block") or -1) >= head:
                break
            time.sleep(0.2)
    seeded = len(registrar_lots) + sum(len(lots) for lots in processor_lots)
    print(
        f"seed: {options.seed_lots * len(registrars):,} lots registered in batches, {sum(1 for op in seeder.ops if op.kind == '/v1/transformations')} "
        f"transformations, {len(registrars)} handovers accepted; indexed up to block {head}: {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    shared = Shared(
        readable=sorted(registrar_lots) + sorted(lot_id for lots in processor_lots for lot_id in lots), lineage=lineage,
        custodians=[account.address for account in processors] + [account.address for _, account in registrars],
        sites=sites,
    )  # fmt: skip
    holdings = [Holdings() for _ in range(options.clients)]
    for number, lot_id in enumerate(sorted(registrar_lots)):
        registrar_index = sites.index(lot_id.split("-", 1)[0])
        mine = [c for c in range(options.clients) if c % len(sites) == registrar_index]
        holdings[mine[number % len(mine)]].registrar_lots[lot_id] = registrar_lots[lot_id]
    for processor_index, lots in enumerate(processor_lots):
        mine = [c for c in range(options.clients) if (c % len(sites)) % len(processors) == processor_index]
        for number, lot_id in enumerate(sorted(lots)):
            holdings[mine[number % len(mine)]].processor_lots[lot_id] = lots[lot_id]
    clients = []
    for number in range(options.clients):
        registrar_index = number % len(sites)
        site, registrar = registrars[registrar_index]
        processor_index = registrar_index % len(processors)
        clients.append(
            LoadClient(number, server.url, site, registrar, processors[processor_index], f"PLANT{processor_index + 1}",
                       holdings[number], shared, options.think_ms / 1000)
        )  # fmt: skip

    print(
        f"load: {options.clients} clients for {options.duration:.0f} s (think time {options.think_ms:.0f} ms), 70 % reads / 30 % writes",
        flush=True,
    )
    sampler = LagSampler(server.url, rpc_url, shared.stop)
    database = server.env["PROVENANCE_DATABASE_URL"].rsplit("/", 1)[1]
    watch = ServerWatch(
        server.process.pid, database, server.data_dir / "chain", shared.stop, options.watch_ms / 1000
    )
    watched = process_tree(server.process.pid, server.data_dir / "pids.json")
    cpu_before = cpu_by_part(watched, server.process.pid)
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=client.run, daemon=True) for client in clients]
    load_started = time.perf_counter()
    sampler_threads = [*sampler.start(), *watch.start()]
    for thread in threads:
        thread.start()
    profile = scratch.with_suffix(".pyspy")  # beside the data directory: kept after it is removed
    with Profiler(server.process.pid, profile) if options.profile else contextlib.nullcontext():
        shared.stop.wait(options.duration)
        shared.stop.set()
    # rates over the load's window; requests still in flight at its end (waiting writes) count too
    load_s = time.perf_counter() - load_started
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - load_started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_after = cpu_by_part(watched, server.process.pid)
    for thread in sampler_threads:
        thread.join()
    client_cpu_s = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    server_cpu = {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after}

    # figures per endpoint
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[tuple[str, str]] = Counter()
    ops: list[Op] = []
    slow_seconds: Counter[int] = Counter()
    slowest = sorted((read for client in clients for read in client.slowest), key=lambda read: -read.ms)
    for client in clients:
        slow_seconds.update(int(at - load_started) for at in client.slow_reads)
        for endpoint, values in client.latencies.items():
            latencies[endpoint].extend(values)
        statuses.update(client.statuses)
        ops.extend(client.ops)
    requests = sum(statuses.values())
    per_endpoint: dict[str, dict[str, Any]] = {}
    for endpoint in sorted(latencies, key=lambda name: -len(latencies[name])):
        base = endpoint.split("?")[0]
        per_endpoint[ENDPOINTS[base] + ("?wait=true" if endpoint.endswith("?wait=true") else "")] = {
            "requests": len(latencies[endpoint]),
            "per_s": round(len(latencies[endpoint]) / load_s, 1),
            **summary(latencies[endpoint]),
        }
    reads = [
        value
        for endpoint, values in latencies.items()
        if endpoint in READ_KINDS - {"verify", "status"}
        for value in values
    ]
    writes = [
        value
        for endpoint, values in latencies.items()
        if endpoint.split("?")[0] in WRITES
        for value in values
    ]
    read_p99 = percentile_ms(reads, 0.99)
    lot_p99 = percentile_ms(latencies["lot"], 0.99)
    errors: Counter[str] = Counter()
    for (endpoint, status), count in statuses.items():
        if not status.startswith("2"):
            errors[f"{status} {ENDPOINTS[endpoint.split('?')[0]]}"] += count
    server_errors = sum(count for (_, status), count in statuses.items() if status.startswith("5"))
    rate_limited = sum(count for (_, status), count in statuses.items() if status == "429")
    transport_errors = sum(count for (_, status), count in statuses.items() if not status.isdigit())

    # the end: every acknowledged write final, and on chain
    print(
        f"load done: {requests:,} requests in {load_s:.1f} s (the last answered {wall_s - load_s:.1f} s later); following {sum(not op.final for op in ops):,} of {len(ops):,} acknowledged operations to a final status",
        flush=True,
    )
    started = time.perf_counter()
    follow_to_final(server.url, ops, deadline_s=300)
    final_s = time.perf_counter() - started
    registry, deployed_at = server.registry()
    on_chain = registered_on_chain(rpc_url, registry, deployed_at)
    confirmed = [op for op in ops if op.status == "confirmed"]
    tx_status = receipts(rpc_url, [tx for op in confirmed for tx in op.transactions])
    never_final = [op for op in ops if not op.final]
    missing = [
        op for op in confirmed
        if not op.transactions or any(tx_status.get(tx) != 1 for tx in op.transactions)
        or any(on_chain.get(lot_id, 0) != 1 for lot_id in op.registered)
    ]  # fmt: skip
    seed_registered = {lot_id for op in seeder.ops for lot_id in op.registered}
    run_registered = {lot_id for op in confirmed for lot_id in op.registered}
    duplicated = sum(1 for count in on_chain.values() if count > 1)
    unexpected_on_chain = len(
        set(on_chain) - seed_registered - {lot_id for op in ops for lot_id in op.registered}
    )
    failed = Counter(f"{op.kind}: {op.error}" for op in ops if op.status == "failed")
    lost = len(never_final) + len(missing)
    by_kind = Counter(f"{op.kind} {op.status}" for op in ops)

    lag_p50, lag_p99, lag_max = (percentile_s(sampler.lags_s, fraction) for fraction in (0.5, 0.99, 1.0))
    low_p50, low_p99 = (percentile_s(sampler.lags_at_send_s, fraction) for fraction in (0.5, 0.99))
    to_final = [
        op.seconds_to_final for op in ops if op.status == "confirmed" and op.seconds_to_final is not None
    ]
    final_p50, final_p99, final_max = (percentile_s(to_final, fraction) for fraction in (0.5, 0.99, 1.0))
    loads = sampler.loads or [load_average()]

    print()
    print(f"{'endpoint':<40}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for endpoint, figures in per_endpoint.items():
        print(
            f"{endpoint:<40}{figures['requests']:>9,}{figures['per_s']:>8.1f}{figures['p50_ms']:>9.1f}"
            f"{figures['p99_ms']:>9.1f}{figures['max_ms']:>9.1f}"
        )
    print(
        f"overall: {requests / load_s:,.1f} requests/s ({len(reads) / load_s:,.1f} reads/s without verification and status, "
        f"{len(writes) / load_s:,.1f} writes/s); errors by status: {dict(errors) or 'none'}"
    )
    print(
        f"operations: {dict(by_kind)}; failed: {dict(failed) or 'none'}; all final {final_s:.1f} s after the load; "
        f"{len(run_registered):,} lots registered during the load, {len(on_chain):,} lot ids on chain, duplicated {duplicated}, "
        f"not ours {unexpected_on_chain}"
    )
    slow = sum(slow_seconds.values())
    print(
        f"reads over {SLOW_READ_MS:.0f} ms: {slow:,}, sent in {len(slow_seconds)} of the load's {load_s:.0f} seconds; "
        f"busiest seconds (second: reads): {', '.join(f'{sec}: {n}' for sec, n in slow_seconds.most_common(8)) or '-'}"
    )
    print(
        f"operations' time to confirmation (server's created_at to updated_at): p50 {final_p50} s, p99 {final_p99} s, max {final_max} s"
    )
    print(
        f"index lag over {len(sampler.lags_s)} samples: p50 {lag_p50} s, p99 {lag_p99} s, max {lag_max} s "
        f"(at the request's sending, a lower bound: p50 {low_p50} s, p99 {low_p99} s) "
        f"(blocks behind: p50 {percentile_ms([float(b) for b in sampler.lags_blocks], 0.5)}, max {max(sampler.lags_blocks, default=0)})"
    )
    print(
        f"CPU over the load's {wall_s:.1f} s: this client {client_cpu_s:.1f} s ({client_cpu_s / wall_s:.2f} cores); "
        f"server and database {server_cpu} (s); load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    timeline = slow_read_timeline(slowest[:TIMELINE_READS], watch, load_started)
    saves_at = ", ".join(f"+{saved - load_started:.1f}" for saved in watch.saves)
    sizes = sorted(watch.save_bytes)
    median_mib = sizes[len(sizes) // 2] / 2**20 if sizes else 0.0
    print(
        f"node saves during the load: {len(watch.saves)} (at {saves_at or '-'} s; median {median_mib:.1f} MiB gzipped)"
    )
    rows = [
        ("5xx responses", f"{server_errors:,}", "0", server_errors == 0),
        ("lost writes", f"{lost:,}", "0", lost == 0),
        ("read p99 (all reads but verification)", f"{read_p99} ms", f"<= {TARGET_READ_P99_MS:.0f} ms",
         read_p99 is not None and read_p99 <= TARGET_READ_P99_MS),
        ("GET /v1/lots/{id} p99", f"{lot_p99} ms", f"<= {TARGET_LOT_P99_MS:.0f} ms",
         lot_p99 is not None and lot_p99 <= TARGET_LOT_P99_MS),
        ("index lag p99", f"{lag_p99} s", f"<= {TARGET_LAG_P99_S:.0f} s", lag_p99 is not None and lag_p99 <= TARGET_LAG_P99_S),
    ]  # fmt: skip
    print()
    print(f"{'':<42}{'measured':>14}{'target':>14}")
    for name, measured, target, ok in rows:
        print(f"{name:<42}{measured:>14}{target:>14}  {'PASS' if ok else 'FAIL'}")
    result = {
        "clients": len(clients),
        "duration_s": round(load_s, 1),
        "think_ms": options.think_ms,
        "api_processes": options.api_processes,
        "seed_lots_registered": options.seed_lots * len(registrars),
        "seed_transformations": sum(1 for op in seeder.ops if op.kind == "/v1/transformations"),
        "seed_lots_held": seeded,
        "requests_per_s": round(requests / load_s, 1),
        "reads_per_s": round(len(reads) / load_s, 1),
        "writes_per_s": round(len(writes) / load_s, 1),
        "read_p50_ms": percentile_ms(reads, 0.5),
        "read_p99_ms": read_p99,
        "read_max_ms": percentile_ms(reads, 1.0),
        "lot_p99_ms": lot_p99,
        "write_p50_ms": percentile_ms(writes, 0.5),
        "write_p99_ms": percentile_ms(writes, 0.99),
        "endpoints": per_endpoint,
        "errors_by_status": dict(errors),
        "5xx": server_errors,
        "429": rate_limited,
        "transport_errors": transport_errors,
        "acknowledged_operations": len(ops),
        "operations": dict(by_kind),
        "failed_operations": dict(failed),
        "never_final": len(never_final),
        "confirmed_not_on_chain": len(missing),
        "lost_writes": lost,
        "registered_during_load": len(run_registered),
        "duplicated_on_chain": duplicated,
        "index_lag_p50_s": lag_p50,
        "index_lag_p99_s": lag_p99,
        "index_lag_max_s": lag_max,
        "index_lag_samples": len(sampler.lags_s),
        "slow_reads": slow,
        "slow_read_seconds": len(slow_seconds),
        "slow_read_timeline": timeline,
        "node_saves": len(watch.saves),
        "index_lag_lower_bound_p50_s": low_p50,
        "index_lag_lower_bound_p99_s": low_p99,
        "confirmation_p50_s": final_p50,
        "confirmation_p99_s": final_p99,
        "confirmation_max_s": final_max,
        "client_cpu_s": round(client_cpu_s, 1),
        "client_cpu_cores": round(client_cpu_s / wall_s, 2),
        "server_cpu_s": server_cpu,
        "load_average": [min(loads), max(loads)],
        "machine": machine(),
    }
    if lost:
        return 2, result
    return (0 if all(ok for *_, ok in rows) else 1), result


if __name__ == "__main__":
    sys.exit(main())

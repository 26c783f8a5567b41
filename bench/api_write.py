"""Write speed of the API: lots registered and confirmed in the index, against `provenance serve`.

    .venv/bin/python bench/api_write.py                       # 10,000 lots in batches, 1,500 single POSTs
    .venv/bin/python bench/api_write.py --single-lots 600     # a shorter run
    .venv/bin/python bench/api_write.py --profile             # and py-spy on the server (pip install py-spy)
    .venv/bin/python bench/api_write.py --smoke               # 200 + 40 lots: that it runs (the suite does)

Starts `provenance serve` on the embedded anvil node, in a fresh data directory on free ports,
and creates a registrar of site SH2 with `provenance accounts create`. Then:

* batch phase: `POST /v1/lots/batch?wait=true` with 1,000 lots per call from a few clients, timed
  from the first request until every lot is a row of the index (`lots` in data_dir/index.sqlite3,
  read read-only);
* single phase: `POST /v1/lots?wait=true` from 32 concurrent keep-alive clients, one lot each, timed
  likewise; a lot's latency runs from its request to the answer that its operation is final;
* correctness: `lost` counts acknowledged lots (a 200 or 202) missing from the index after a bounded
  wait, `duplicated` the lot ids with more than one LotRegistered event on chain (eth_getLogs on the
  node) or in the index's event log. HTTP errors are counted by status.

Targets: >= 1,000 lots/s via batch; >= 150 lots/s via single POSTs; lost = duplicated = 0.
Prints each figure beside its target, then one JSON object as its last line. Exits 2 if a lot was
lost or duplicated, 1 if a speed target was missed, 0 otherwise. The server always gets a SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_utils.crypto import keccak

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from provenance.chain.node import free_port  # noqa: E402

TARGET_BATCH_LOTS_PER_S = 1_000
TARGET_SINGLE_LOTS_PER_S = 150
SITE = "SH2"
LOT_REGISTERED = "0x" + keccak(text="LotRegistered(bytes32,bytes32,bytes32,uint256,bytes32)").hex()
READY = "Ctrl-C stops"
MAX_WAIT_S = 60  # the API's ceiling for ?timeout=


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def percentile_ms(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile rounded to 0.1 ms (fraction 1.0: the maximum); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return round(ordered[rank - 1], 1)


def show_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


# ------------------------------------------------------------------------------- the server


def provenance_command(*args: str) -> list[str]:
    """The installed `provenance` command (beside this Python, else on PATH) with `args`."""
    beside = Path(sys.executable).with_name("provenance")
    executable = str(beside) if beside.exists() else shutil.which("provenance")
    if executable is None:
        raise SystemExit("the `provenance` command is not installed (pip install -e .)")
    return [executable, *args]


def wait_for_api(url: str, deadline: float, tail: Callable[[], str]) -> None:
    """Until `url/health` answers below 500 (serve prints that it is ready before uvicorn binds)."""
    with httpx.Client(base_url=url, timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API at {url} did not answer in time\n{tail()}")
            time.sleep(0.1)


class Server:
    """`provenance serve` in its own session (a Ctrl-C of the bench reaches it only through stop())."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.node_port, self.api_port = distinct_free_ports(2)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PROVENANCE_RPC_URL", "PROVENANCE_DATABASE_URL")
        }
        self.env.update(
            PROVENANCE_DATA_DIR=str(data_dir),
            PROVENANCE_NODE_PORT=str(self.node_port),
            PROVENANCE_API_HOST="127.0.0.1",
            PROVENANCE_API_PORT=str(self.api_port),
        )
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.log_path = data_dir / "serve.log"
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def command(self, *args: str) -> list[str]:
        return provenance_command(*args)

    def start(self, timeout_s: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.command("serve"),
                env=self.env,
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if self.process.poll() is not None:
                raise RuntimeError(f"`provenance serve` exited with {self.process.returncode}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"`provenance serve` not ready within {timeout_s:.0f} s\n{self.tail()}")
        wait_for_api(self.url, deadline, self.tail)

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY in line:
                self._ready.set()

    def create_registrar(self, name: str, site: str) -> str:
        """A registrar of `site` via `provenance accounts create`; returns its API token (its last line)."""
        done = subprocess.run(
            self.command("accounts", "create", "--name", name, "--role", "registrar", "--site", site),
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"accounts create failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip().splitlines()[-1].strip()

    def registry(self) -> tuple[str, int]:
        record = json.loads((self.data_dir / "deployment.json").read_text(encoding="utf-8"))
        return str(record["registry"]), int(record["block_number"])

    def tail(self, lines: int = 30) -> str:
        try:
            logged = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            logged = []
        return "\n".join([*self.lines[-10:], *logged[-lines:]])

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGINT, as Ctrl-C would: the node saves its chain. SIGKILL (and the node by pid) if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                print(f"  the server did not stop within {timeout_s:.0f} s; killing it", flush=True)
                self.process.kill()
                self.process.wait()
                self._kill_orphans()
        return self.process.returncode

    def _kill_orphans(self) -> None:
        """The anvil the server started, found by our data directory in its command line."""
        marker = str(self.data_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(entry.name), signal.SIGKILL)


def distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


# ------------------------------------------------------------------------------- the index, read-only


class IndexReader:
    """The server's SQLite index, opened read-only (WAL: it never blocks the indexer's writes)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )

    def count_prefix(self, prefix: str) -> int:
        """Lots whose id starts with `prefix` (a range scan of the primary key)."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        row = self.connection.execute(
            "SELECT count(*) FROM lots WHERE lot_id >= ? AND lot_id < ?", (prefix, upper)
        ).fetchone()
        return int(row[0])

    def lot_ids(self, site: str) -> set[str]:
        return {row[0] for row in self.connection.execute("SELECT lot_id FROM lots WHERE site = ?", (site,))}

    def duplicated_events(self) -> int:
        row = self.connection.execute(
            "SELECT count(*) FROM (SELECT lot_id FROM events WHERE name = 'LotRegistered' "
            "GROUP BY lot_id HAVING count(*) > 1)"
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.connection.close()


def wait_for_index(
    index: IndexReader, prefix: str, expected: int, *, until: threading.Event, grace_s: float
) -> tuple[int, float]:
    """Polls until `expected` lots with `prefix` are indexed; once `until` is set, waits at most
    `grace_s` more. Returns (lots indexed, perf_counter time of the poll that saw the last of them)."""
    seen, at = 0, time.perf_counter()
    gave_up_at: float | None = None
    while True:
        count = index.count_prefix(prefix)
        now = time.perf_counter()
        if count != seen:
            seen, at = count, now
        if seen >= expected:
            return seen, at
        if until.is_set():
            gave_up_at = gave_up_at or now + grace_s
            if now > gave_up_at:
                return seen, at
        time.sleep(0.02)


# ------------------------------------------------------------------------------- lots and clients


def make_lot(lot_id: str, rng: random.Random, extracted_at: int) -> dict[str, Any]:
    return {
        "lot_id": lot_id,
        "face": "F3",
        "commodity": "CU-ORE",
        "mass_g": rng.randint(20_000_000, 40_000_000),
        "grade_ppm": rng.randint(6_000, 18_000),
        "extracted_at": extracted_at,
        "record_hash": "0x" + rng.randbytes(32).hex(),
    }


@dataclass
class Tally:
    """What the clients of one phase saw; shared by their threads under `lock`."""

    acked: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    """Final operation statuses (confirmed, failed, or still pending at our give-up)."""
    errors: Counter[str] = field(default_factory=Counter)
    """HTTP errors by status; transport errors by exception class."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class KeepAlive:
    """One client's keep-alive HTTP/1.1 connection, on the standard library's `http.client`.

    httpx cost the benchmark's 32 client threads 2.8 ms of CPU per POST on a 2-core machine
    (bench client line of the CPU figures), CPU taken from the server it measures; this costs
    about a third of that. A request on a connection the server closed (idle keep-alive) is sent
    once more on a new one: every write carries an Idempotency-Key, so that cannot write twice."""

    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.timeout_s = timeout_s
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body) of one request; raises OSError or HTTPException on transport errors."""
        payload = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                self.connection.request(method, path, payload, {**self.headers, **(headers or {})})
                response = self.connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 0 and reused:
                    continue
                raise
            if response.will_close:
                self.close()
            return response.status, json.loads(data) if data else None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def submit(
    client: KeepAlive,
    path: str,
    body: dict[str, Any],
    key: str,
    lot_ids: list[str],
    tally: Tally,
    deadline_s: float,
) -> None:
    """One write with ?wait=true, followed to a final status; records latency and outcome."""
    started = time.perf_counter()
    waiting = f"wait=true&timeout={MAX_WAIT_S}"
    try:
        status, operation = client.request(
            "POST", f"{path}?{waiting}", body, headers={"Idempotency-Key": key}
        )
        if status not in (200, 202):
            with tally.lock:
                tally.errors[str(status)] += 1
            return
        with tally.lock:
            tally.acked.update(lot_ids)
        while not operation["final"] and time.perf_counter() - started < deadline_s:
            status, operation = client.request("GET", f"/v1/operations/{operation['id']}?{waiting}")
            if status not in (200, 202):
                with tally.lock:
                    tally.errors[f"GET {status}"] += 1
                return
    except (OSError, http.client.HTTPException) as error:
        with tally.lock:
            tally.errors[type(error).__name__] += 1
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    with tally.lock:
        tally.statuses[operation["status"]] += 1
        if operation["status"] == "confirmed":
            tally.confirmed.update(lot_ids)
            tally.latencies_ms.append(elapsed_ms)


@dataclass(frozen=True)
class PhaseResult:
    lots: int
    indexed: int
    seconds: float
    tally: Tally

    @property
    def lots_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


def run_phase(
    url: str,
    token: str,
    index: IndexReader,
    *,
    prefix: str,
    jobs: list[tuple[str, dict[str, Any], str, list[str]]],
    clients: int,
    grace_s: float,
) -> PhaseResult:
    """`clients` threads work through `jobs` (path, body, idempotency key, lot ids); the phase ends
    when every lot is in the index (or `grace_s` after the last answer)."""
    lots = sum(len(job[3]) for job in jobs)
    tally = Tally()
    queue: Iterator[tuple[str, dict[str, Any], str, list[str]]] = iter(jobs)
    queue_lock = threading.Lock()
    done = threading.Event()

    def client_thread() -> None:
        client = KeepAlive(url, token, timeout_s=MAX_WAIT_S + 30)
        try:
            while True:
                with queue_lock:
                    job = next(queue, None)
                if job is None:
                    return
                path, body, key, lot_ids = job
                submit(client, path, body, key, lot_ids, tally, deadline_s=4 * MAX_WAIT_S)
        finally:
            client.close()

    threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()

    def join_all() -> None:
        for thread in threads:
            thread.join()
        done.set()

    threading.Thread(target=join_all, daemon=True).start()
    indexed, last_at = wait_for_index(index, prefix, lots, until=done, grace_s=grace_s)
    done.wait()
    return PhaseResult(lots, indexed, last_at - started, tally)


# ------------------------------------------------------------------------------- the chain


def registered_on_chain(rpc_url: str, registry: str, from_block: int) -> Counter[str]:
    """LotRegistered events per lot id (its first topic, as the label's text) on the node."""
    response = httpx.post(
        rpc_url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getLogs",
            "params": [
                {
                    "address": registry,
                    "fromBlock": hex(from_block),
                    "toBlock": "latest",
                    "topics": [LOT_REGISTERED],
                }
            ],
        },
        timeout=120,
    )
    answer = response.json()
    if "error" in answer:
        raise RuntimeError(f"eth_getLogs: {answer['error']}")
    counts: Counter[str] = Counter()
    for log in answer["result"]:
        raw = bytes.fromhex(log["topics"][1][2:])
        counts[raw.rstrip(b"\0").decode("ascii", errors="replace")] += 1
    return counts


# ------------------------------------------------------------------------------- profiling


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0 if it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return 0.0


class CpuMeter:
    """CPU seconds each of the server's processes (from its pids.json) and this client used during
    one phase: where the two cores went."""

    def __init__(self, data_dir: Path) -> None:
        self.pids_file = data_dir / "pids.json"
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        pids: dict[str, int] = json.loads(self.pids_file.read_text(encoding="utf-8"))
        sample = {name: cpu_seconds(pid) for name, pid in pids.items()}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sample["bench client"] = usage.ru_utime + usage.ru_stime
        return sample

    def __enter__(self) -> CpuMeter:
        self.before = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._sample()
        self.used = {name: round(after[name] - self.before.get(name, 0.0), 2) for name in after}


class Profiler:
    """py-spy on the server process for one phase, when asked for and installed."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        spy = Path(sys.executable).with_name("py-spy")
        executable = str(spy) if spy.exists() else shutil.which("py-spy")
        if executable is None:
            print("  (py-spy not installed: .venv/bin/pip install py-spy)", flush=True)
            return self
        self.process = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--threads",
                "--output",
                str(self.out),
                "--rate",
                "100",
                "--nonblocking",
                "--idle",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        print(f"  profile (py-spy raw stacks) written to {self.out}", flush=True)


# ------------------------------------------------------------------------------- the run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-lots", type=int, default=10_000, help="lots registered in the batch phase")
    parser.add_argument("--batch-size", type=int, default=1_000, help="lots per batch call (at most 1,000)")
    parser.add_argument("--batch-clients", type=int, default=4, help="concurrent batch clients")
    parser.add_argument("--single-lots", type=int, default=1_500, help="lots registered one per POST")
    parser.add_argument("--single-clients", type=int, default=32, help="concurrent single-lot clients")
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds to wait for stragglers in the index"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server during each phase")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (printed)")
    parser.add_argument("--smoke", action="store_true", help="200 batch and 40 single lots: that it runs")
    options = parser.parse_args(argv)
    if options.smoke:
        options.batch_lots, options.batch_size, options.batch_clients = 200, 100, 2
        options.single_lots, options.single_clients, options.grace = 40, 4, 10.0

    print(
        f"bench/api_write.py, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {machine()}", flush=True
    )
    scratch = Path(tempfile.mkdtemp(prefix="provenance-api-bench-"))
    server = Server(scratch / "data")
    index: IndexReader | None = None
    try:
        started = time.perf_counter()
        server.start()
        token = server.create_registrar("bench-registrar", SITE)
        print(
            f"server ready (node :{server.node_port}, API :{server.api_port}) and registrar created: {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        assert server.process is not None
        index = IndexReader(server.data_dir / "index.sqlite3")
        rng = random.Random(2024)
        now = int(time.time())

        batch_jobs = []
        for number, first in enumerate(range(0, options.batch_lots, options.batch_size)):
            ids = [
                f"{SITE}-B-{i:06d}" for i in range(first, min(first + options.batch_size, options.batch_lots))
            ]
            body = {"site": SITE, "lots": [make_lot(lot_id, rng, now - 600) for lot_id in ids]}
            batch_jobs.append(("/v1/lots/batch", body, f"bench-batch-{number}", ids))
        print(
            f"batch phase: {options.batch_lots:,} lots, {len(batch_jobs)} calls of <= {options.batch_size:,}, {options.batch_clients} clients",
            flush=True,
        )
        with (
            Profiler(server.process.pid, scratch / "batch.pyspy")
            if options.profile
            else contextlib.nullcontext()
        ):
            batch = run_phase(
                server.url,
                token,
                index,
                prefix=f"{SITE}-B-",
                jobs=batch_jobs,
                clients=options.batch_clients,
                grace_s=options.grace,
            )
        print(
            f"  {batch.indexed:,}/{batch.lots:,} lots in the index after {batch.seconds:.2f} s: {batch.lots_per_s:,.0f} lots/s",
            flush=True,
        )

        single_jobs = []
        for i in range(options.single_lots):
            lot_id = f"{SITE}-S-{i:06d}"
            single_jobs.append(
                ("/v1/lots", {"site": SITE, **make_lot(lot_id, rng, now - 300)}, f"bench-{lot_id}", [lot_id])
            )
        print(
            f"single phase: {options.single_lots:,} POST /v1/lots?wait=true from {options.single_clients} clients",
            flush=True,
        )
        with (
            Profiler(server.process.pid, scratch / "single.pyspy")
            if options.profile
            else contextlib.nullcontext(),
            CpuMeter(server.data_dir) as single_cpu,
        ):
            single = run_phase(
                server.url,
                token,
                index,
                prefix=f"{SITE}-S-",
                jobs=single_jobs,
                clients=options.single_clients,
                grace_s=options.grace,
            )
        print(
            f"  {single.indexed:,}/{single.lots:,} lots in the index after {single.seconds:.2f} s: {single.lots_per_s:,.0f} lots/s",
            flush=True,
        )
        per_lot = {
            name: round(1000 * used / max(single.lots, 1), 2) for name, used in single_cpu.used.items()
        }
        print(f"  CPU seconds by process: {single_cpu.used}; ms per lot: {per_lot}", flush=True)

        print("correctness: acknowledged lots in the index, LotRegistered per lot id on chain", flush=True)
        acked = batch.tally.acked | single.tally.acked
        deadline = time.monotonic() + options.grace
        while True:
            indexed_ids = index.lot_ids(SITE)
            if acked <= indexed_ids or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lost = len(acked - indexed_ids)
        registry, deployed_at = server.registry()
        on_chain = registered_on_chain(f"http://127.0.0.1:{server.node_port}", registry, deployed_at)
        duplicated_chain = sum(1 for count in on_chain.values() if count > 1)
        duplicated_index = index.duplicated_events()
        duplicated = max(duplicated_chain, duplicated_index)
        not_on_chain = len(acked - set(on_chain))
    finally:
        if index is not None:
            index.close()
        code = server.stop()
        print(f"server stopped (exit code {code})", flush=True)
        if options.keep:
            print(f"data kept in {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    errors = batch.tally.errors + single.tally.errors
    batch_p50 = percentile_ms(batch.tally.latencies_ms, 0.50)
    batch_max = percentile_ms(batch.tally.latencies_ms, 1.0)
    single_p50 = percentile_ms(single.tally.latencies_ms, 0.50)
    single_p99 = percentile_ms(single.tally.latencies_ms, 0.99)
    single_max = percentile_ms(single.tally.latencies_ms, 1.0)
    statuses = {
        "batch": dict(batch.tally.statuses),
        "single": dict(single.tally.statuses),
    }
    result = {
        "batch_lots_per_s": round(batch.lots_per_s, 1),
        "single_lots_per_s": round(single.lots_per_s, 1),
        "single_cpu_s": single_cpu.used,
        "single_p99_ms": single_p99,
        "lost": lost,
        "duplicated": duplicated,
        "batch_lots": batch.lots,
        "batch_indexed": batch.indexed,
        "batch_s": round(batch.seconds, 3),
        "batch_p50_ms": batch_p50,
        "batch_max_ms": batch_max,
        "single_lots": single.lots,
        "single_indexed": single.indexed,
        "single_s": round(single.seconds, 3),
        "single_p50_ms": single_p50,
        "single_max_ms": single_max,
        "acknowledged": len(acked),
        "not_on_chain": not_on_chain,
        "duplicated_on_chain": duplicated_chain,
        "duplicated_in_index": duplicated_index,
        "operations": statuses,
        "errors_by_status": dict(errors),
    }

    speed_ok = batch.lots_per_s >= TARGET_BATCH_LOTS_PER_S and single.lots_per_s >= TARGET_SINGLE_LOTS_PER_S
    correct = lost == 0 and duplicated == 0
    print()
    print(f"{'':<40}{'measured':>14}{'target':>14}")
    rows = [
        (
            "batch, lots/s to the index",
            f"{batch.lots_per_s:,.0f}",
            f">= {TARGET_BATCH_LOTS_PER_S:,}",
            batch.lots_per_s >= TARGET_BATCH_LOTS_PER_S,
        ),
        (
            "single POSTs, lots/s to the index",
            f"{single.lots_per_s:,.0f}",
            f">= {TARGET_SINGLE_LOTS_PER_S:,}",
            single.lots_per_s >= TARGET_SINGLE_LOTS_PER_S,
        ),
        ("lost (acknowledged, not indexed)", f"{lost:,}", "0", lost == 0),
        ("duplicated (lot ids registered twice)", f"{duplicated:,}", "0", duplicated == 0),
    ]
    for name, measured, target, ok in rows:
        print(f"{name:<40}{measured:>14}{target:>14}  {'PASS' if ok else 'FAIL'}")
    print(
        f"latency to confirmation: batch calls p50 {show_ms(batch_p50)}, max {show_ms(batch_max)}; "
        f"single POSTs p50 {show_ms(single_p50)}, p99 {show_ms(single_p99)}, max {show_ms(single_max)}"
    )
    print(
        f"operations: {statuses}; HTTP errors: {dict(errors) or 'none'}; acknowledged lots not on chain: {not_on_chain}"
    )
    print(json.dumps(result))
    if not correct:
        return 2
    return 0 if speed_ok else 1


if __name__ == "__main__":
    sys.exit(main())

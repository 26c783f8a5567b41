"""Chaos against `provenance serve`: clients that write through the HTTP API while processes die.

Shared by tests/faults and bench/chaos.py. The server is bench/api_write.py's `Server` (the embedded
anvil node, SQLite, free ports, a temporary data directory); `serve` names its own pid, its
children's and the node's in `data_dir/pids.json`, rewritten whenever a child is restarted.

Faults (each a SIGKILL, what a crash or the OOM killer does):

* `indexer`, `outbox-worker`: the child process; serve's supervisor starts it again.
* `node`: the embedded anvil, at any instant (during a save too), so the chain loses the blocks
  after its last save; serve's node keeper starts it again from that save.
* `api`: the serve process itself (API and supervisors); its children stop when their pipe closes,
  the node dies with it (a parent-death signal), and a fresh serve restores the node's last save.

A client sends each operation with its own Idempotency-Key and sends it again, same key and body, on
a connection error or a 5xx, until it gets a 2xx or a 4xx; then it waits until the operation is final.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_utils.crypto import keccak

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.api_write import Server  # noqa: E402

SITE = "SH2"
FAULTS = ("indexer", "outbox-worker", "node", "api")
TOPICS = {
    name: "0x" + keccak(text=signature).hex()
    for name, signature in {
        "LotRegistered": "LotRegistered(bytes32,bytes32,bytes32,uint256,bytes32)",
        "LotCreated": "LotCreated(bytes32,uint256,address,bytes32,uint96,uint32,bytes32)",
        "CustodyOffered": "CustodyOffered(bytes32,address,address)",
        "CustodyAccepted": "CustodyAccepted(bytes32,address,address)",
    }.items()
}
HASH = "0x" + "ab" * 32


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is dead for our purposes
        if (Path("/proc") / str(pid) / "stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def wait_gone(pids: list[int], timeout_s: float) -> None:
    """Waits for `pids` to exit; SIGKILLs what is left after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while any(pid_alive(pid) for pid in pids):
        time.sleep(0.05)


class ChaosServer(Server):
    """`provenance serve` that can lose any of its processes. The node's chain is saved every
    `state_interval_s` seconds, so a kill of the node loses up to that many seconds of chain."""

    def __init__(self, data_dir: Path, *, state_interval_s: float = 3) -> None:
        super().__init__(data_dir)
        self.env["PROVENANCE_NODE_STATE_INTERVAL_S"] = str(state_interval_s)
        self.restarts = 0

    def pids(self, timeout_s: float = 30.0) -> dict[str, int]:
        """serve, node, indexer and outbox-worker pids of the running serve (waits for all four)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError, ValueError):
                pids: dict[str, int] = json.loads((self.data_dir / "pids.json").read_text(encoding="utf-8"))
                if pids.get("serve") == self.process.pid and {"node", *FAULTS[:2]} <= pids.keys():
                    return pids
            if time.monotonic() > deadline:
                raise RuntimeError(f"no pids.json of serve {self.process.pid}\n{self.tail()}")
            time.sleep(0.05)

    def start(self, timeout_s: float = 120.0) -> None:
        self._ready = threading.Event()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "pids.json").unlink()
        super().start(timeout_s)

    def _read(self) -> None:
        process = self.process
        try:
            super()._read()
        finally:
            if process is not None and process.stdout is not None:
                process.stdout.close()

    def head(self) -> int | None:
        """The node's block number, None if it does not answer."""
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            answer = httpx.post(
                self.node_url(), json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}, timeout=2
            )
            return int(answer.json()["result"], 16)
        return None

    def snapshots(self) -> list[Path]:
        return sorted((self.data_dir / "chain").glob("snapshot-*.json.gz"))

    def wait_saved(self, timeout_s: float = 30.0) -> None:
        """Until the node's chain has been saved once: a node killed before that would come back as
        a new chain without the registry (a real chain keeps its genesis; what the node faults are
        about is losing the newest blocks)."""
        deadline = time.monotonic() + timeout_s
        while not self.snapshots():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node's chain was not saved within {timeout_s:.0f} s\n{self.tail()}")
            time.sleep(0.05)

    def kill_node(self, *, during_save: bool = False, timeout_s: float = 30.0) -> tuple[int, int | None]:
        """SIGKILLs the node (during a save: while the keeper holds mining paused for a dump, or
        writes it); returns its pid and its head just before."""
        self.wait_saved()
        pid = self.pids()["node"]
        if during_save:
            deadline = time.monotonic() + timeout_s
            while not self.saving() and time.monotonic() < deadline:
                time.sleep(0.001)
        head = self.head()
        os.killpg(pid, signal.SIGKILL)
        return pid, head

    def saving(self) -> bool:
        """Whether a save is under way: mining paused for a dump, or its file being written."""
        if any((self.data_dir / "chain").glob("*.tmp")):
            return True
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            answer = httpx.post(
                self.node_url(), json={"jsonrpc": "2.0", "id": 1, "method": "anvil_getAutomine"}, timeout=1
            )
            return answer.json()["result"] is False
        return False

    def wait_node_back(self, old_pid: int, timeout_s: float = 60.0) -> None:
        """Until serve's keeper has started a new node (its pid in pids.json) and it answers."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(RuntimeError):
                if self.pids(timeout_s=1)["node"] != old_pid and self.head() is not None:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"serve did not start its node again within {timeout_s:.0f} s\n{self.tail()}"
                )
            time.sleep(0.05)

    def inflict(self, fault: str, *, during_save: bool = False) -> dict[str, Any]:
        """SIGKILLs the process `fault` names; restarts serve where no supervisor would. Returns the
        node's head before and after (a killed node loses the blocks after its last save)."""
        pids = self.pids()
        before = self.head()
        if fault in ("indexer", "outbox-worker"):
            os.kill(pids[fault], signal.SIGKILL)
            return {"head_before": before}
        assert self.process is not None
        began = time.monotonic()
        if fault == "node":
            old, before = self.kill_node(during_save=during_save)
            self.wait_node_back(old)
            return {
                "head_before": before,
                "head_after_restart": self.head(),
                "restart_s": round(time.monotonic() - began, 1),
            }
        if fault != "api":
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        os.kill(pids["serve"], signal.SIGKILL)
        self.process.wait()
        wait_gone([pids["node"], pids["indexer"], pids["outbox-worker"]], timeout_s=30)
        self.restarts += 1
        self.start()
        return {
            "head_before": before,
            "head_after_restart": self.head(),
            "restart_s": round(time.monotonic() - began, 1),
        }

    def accounts(self) -> tuple[str, tuple[str, str]]:
        """The registrar's token of SITE and the processor's (address, token). One after the other:
        two `accounts create` at once both grant their role from the admin key, with the same nonce."""
        _, registrar = self.create_account("registrar", "registrar", SITE)
        return registrar, self.create_account("processor", "processor")

    def node_call(self, method: str, *params: Any) -> Any:
        answer = httpx.post(
            self.node_url(),
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=30,
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def reorg(self, depth: int) -> dict[str, Any]:
        """`anvil_reorg`: the last `depth` blocks replaced by empty ones; their transactions are gone.

        Mining is paused around it: anvil 1.7's reorg rewinds the chain without waiting for a block
        being mined, and one mined meanwhile leaves the chain with missing blocks and broken parent
        links (docs/faults.md). The pause holds once it has outlasted a save of serve's node keeper
        (which resumes mining only if it paused it itself)."""
        before = self.head()
        while True:
            self.node_call("evm_setAutomine", False)
            head = self.head()
            time.sleep(0.3)
            if self.node_call("anvil_getAutomine") is False and self.head() == head:
                break
        try:
            self.node_call("anvil_reorg", depth, [])
        finally:
            self.node_call("evm_setAutomine", True)
        return {"depth": depth, "head_before": before, "head_after": self.head()}

    def node_outage(self) -> Callable[[], None]:
        """The node killed and its port held by a listener that drops every connection, so that
        serve's keeper cannot start it again and clients find no node (serve and its children keep
        running); returns the function that frees the port, after which the keeper's next try
        brings the chain back."""
        self.wait_saved()
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        old, _ = self.kill_node()
        deadline = time.monotonic() + 10
        while True:  # the port is free once the killed node's listener is gone
            try:
                blocker.bind(("127.0.0.1", self.node_port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    blocker.close()
                    raise
                time.sleep(0.01)
        blocker.listen(64)
        closed = threading.Event()

        def drop_every_connection() -> None:
            while not closed.is_set():
                try:
                    connection, _ = blocker.accept()
                except OSError:
                    return
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()  # a reset, at once

        dropper = threading.Thread(target=drop_every_connection, daemon=True)
        dropper.start()

        def restore() -> None:
            closed.set()
            blocker.shutdown(socket.SHUT_RDWR)
            blocker.close()
            dropper.join(5)
            self.wait_node_back(old)

        return restore

    def create_account(self, name: str, role: str, site: str | None = None) -> tuple[str, str]:
        """(address, API token) of a new account with `role`."""
        args = ["accounts", "create", "--name", name, "--role", role] + (["--site", site] if site else [])
        done = subprocess.run(
            self.command(*args), env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"accounts create failed ({done.returncode}): {done.stderr.strip()}")
        lines = done.stdout.strip().splitlines()
        address = lines[0].split(":", 1)[1].strip().split(",", 1)[0]
        return address, lines[-1].strip()

    def node_url(self) -> str:
        return f"http://127.0.0.1:{self.node_port}"


# ------------------------------------------------------------------------------- the clients


@dataclass
class Tally:
    """What the clients saw; shared by their threads."""

    acknowledged: dict[str, list[str]] = field(default_factory=dict)  # event name -> lot ids
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    unresolved_5xx: list[str] = field(default_factory=list)  # keys whose 5xx no 2xx followed
    failed_operations: list[str] = field(default_factory=list)
    operations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, event: str, lot_ids: list[str]) -> None:
        with self.lock:
            self.acknowledged.setdefault(event, []).extend(lot_ids)


class Client:
    """One user's chain of operations: register a lot, offer it to the processor, the processor
    accepts it and splits it in two; each waits until the one before is final."""

    def __init__(
        self, base_url: str, registrar: str, processor: tuple[str, str], tally: Tally, *, deadline: float
    ) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(70.0, connect=2.0))
        self.registrar = registrar
        self.processor_address, self.processor = processor
        self.tally = tally
        self.deadline = deadline

    def send(self, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POSTs until a 2xx or 4xx answers; returns the operation once it is final."""
        key = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        saw_5xx = False
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"{path} {key}: no 2xx/4xx before the deadline")
            try:
                answer = self.http.post(
                    path, params={"wait": "true", "timeout": "10"}, json=body, headers=headers
                )
            except httpx.TransportError:
                with self.tally.lock:
                    self.tally.connection_errors += 1
                time.sleep(0.2)
                continue
            with self.tally.lock:
                self.tally.statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                saw_5xx = True
                time.sleep(0.2)
                continue
            if answer.status_code >= 400:
                with self.tally.lock:
                    if saw_5xx:
                        self.tally.unresolved_5xx.append(key)
                    self.tally.failed_operations.append(f"{path} {answer.status_code} {answer.text[:300]}")
                raise AssertionError(f"{path}: {answer.status_code} {answer.text[:300]}")
            with self.tally.lock:
                self.tally.operations += 1
            return self.final(token, answer.json())

    def final(self, token: str, operation: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        while not operation["final"]:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"operation {operation['id']} not final before the deadline: {operation}")
            with contextlib.suppress(httpx.TransportError):
                answer = self.http.get(
                    f"/v1/operations/{operation['id']}",
                    params={"wait": "true", "timeout": "10"},
                    headers=headers,
                )
                if answer.status_code == 200 or answer.status_code == 202:
                    operation = answer.json()
                    continue
            time.sleep(0.2)
        if operation["status"] != "confirmed":
            with self.tally.lock:
                self.tally.failed_operations.append(json.dumps(operation)[:500])
        return operation

    def lot(self, lot_id: str) -> None:
        lot = {
            "site": SITE, "lot_id": lot_id, "face": "F1", "commodity": "COAL", "mass_g": 1_000_000,
            "grade_ppm": 12_000, "extracted_at": 1_790_000_000, "record_hash": HASH,
        }  # fmt: skip
        self.send(self.registrar, "/v1/lots", lot)
        self.tally.expect("LotRegistered", [lot_id])
        self.send(self.registrar, "/v1/handovers", {"lot_ids": [lot_id], "to": self.processor_address})
        self.tally.expect("CustodyOffered", [lot_id])
        self.send(self.processor, "/v1/handovers/accept", {"lot_ids": [lot_id]})
        self.tally.expect("CustodyAccepted", [lot_id])
        outputs = [f"{lot_id}-A", f"{lot_id}-B"]
        split = {
            "kind": "split",
            "site": SITE,
            "inputs": [{"lot_id": lot_id, "mass_g": 1_000_000}],
            "outputs": [
                {
                    "lot_id": output,
                    "commodity": "COAL",
                    "mass_g": 499_000,
                    "grade_ppm": 12_000,
                    "record_hash": HASH,
                }
                for output in outputs
            ],
            "loss_g": 2_000,
            "record_hash": HASH,
        }
        self.send(self.processor, "/v1/transformations", split)
        self.tally.expect("LotCreated", outputs)


def run_clients(
    base_url: str,
    registrar: str,
    processor: tuple[str, str],
    *,
    clients: int,
    lots_per_client: int | None,
    until: float,
    prefix: str,
    tally: Tally,
    deadline: float,
    keep_going: Callable[[], bool] = lambda: False,
) -> list[BaseException]:
    """Runs `clients` threads, each making lots (4 operations each) until it has made
    `lots_per_client` (and `keep_going()` is false: faults still to come need writes to land on)
    or the clock passes `until`. Returns the errors that stopped a client."""
    errors: list[BaseException] = []

    def more(made: int) -> bool:
        return lots_per_client is None or made < lots_per_client or keep_going()

    def work(number: int) -> None:
        client = Client(base_url, registrar, processor, tally, deadline=deadline)
        made = 0
        try:
            while more(made) and time.monotonic() < until:
                client.lot(f"{prefix}{number}-{made}")
                made += 1
        except BaseException as error:
            errors.append(error)
        finally:
            client.http.close()

    threads = [threading.Thread(target=work, args=(number,), daemon=True) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


# ------------------------------------------------------------------------------- faults and verdict


@dataclass
class Chaos:
    """Inflicts faults at seeded random moments until stopped; records what it killed and when."""

    server: ChaosServer
    seed: int
    pause_s: tuple[float, float]
    log: Callable[[str], None] = print
    choices: tuple[str, ...] = FAULTS
    outage_s: float = 30.0
    killed: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self, faults: list[str] | None = None) -> None:
        """Each of `faults` once in order (None: forever, each of FAULTS in a seeded random order)."""
        chooser = random.Random(self.seed)
        started = time.monotonic()
        try:
            count = 0
            while not self.stop.is_set() and (faults is None or count < len(faults)):
                if self.stop.wait(chooser.uniform(*self.pause_s)) or not self.writes_flowing():
                    return
                fault = faults[count] if faults is not None else chooser.choice(self.choices)
                at = round(time.monotonic() - started, 1)
                heads: dict[str, Any]
                if fault == "reorg":
                    heads = self.server.reorg(chooser.randint(1, 4))
                elif fault == "outage":
                    restore = self.server.node_outage()
                    self.stop.wait(self.outage_s)
                    restore()
                    heads = {"outage_s": self.outage_s}
                else:
                    heads = self.server.inflict(fault)
                back = round(time.monotonic() - started, 1)
                self.killed.append({"fault": fault, "at_s": at, "serving_again_at_s": back, **heads})
                what = (
                    "node stopped"
                    if fault == "outage"
                    else f"SIGKILL {fault}"
                    if fault != "reorg"
                    else "reorg"
                )
                self.log(f"  {at:7.1f} s  {what}; serving again at {back:.1f} s {heads}")
                count += 1
        except BaseException as error:
            self.error = error

    def writes_flowing(self, blocks: int = 2) -> bool:
        """Waits until the node has mined `blocks` more blocks (a restarted serve takes seconds to
        import and start its children: a fault before that would hit an idle process). False once
        stopped."""
        start = self.server.head()
        while not self.stop.wait(0.1):
            head = self.server.head()
            if start is None:
                start = head
            elif head is not None and head >= start + blocks:
                return True
        return False

    def start(self, faults: list[str] | None = None) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(faults,), daemon=True)
        thread.start()
        return thread


def on_chain(rpc_url: str, registry: str, event: str) -> Counter[str]:
    """How often each lot id (the first indexed topic, as label text) appears in `event` logs."""
    answer = httpx.post(
        rpc_url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getLogs",
            "params": [
                {"address": registry, "fromBlock": "0x0", "toBlock": "latest", "topics": [TOPICS[event]]}
            ],
        },
        timeout=120,
    ).json()
    if "error" in answer:
        raise RuntimeError(f"eth_getLogs: {answer['error']}")
    return Counter(
        bytes.fromhex(log["topics"][1][2:]).rstrip(b"\0").decode("ascii", errors="replace")
        for log in answer["result"]
    )


def wait_indexed(server: ChaosServer, timeout_s: float) -> int:
    """Waits until the index's cursor is the node's head: the same number and the same hash (a node
    restored from an older save can grow back to, or stay below, a cursor whose blocks it no longer
    has, until the indexer's next poll sees it and rolls back). Returns that block."""
    deadline = time.monotonic() + timeout_s
    index = f"file:{server.data_dir / 'index.sqlite3'}?mode=ro"
    while True:
        with contextlib.suppress(
            sqlite3.Error, httpx.HTTPError, KeyError, TypeError, ValueError, RuntimeError
        ):
            with contextlib.closing(sqlite3.connect(index, uri=True)) as db:
                row = db.execute("SELECT block_number, block_hash FROM index_cursor").fetchone()
            head = server.node_call("eth_getBlockByNumber", "latest", False)
            if row is not None and (int(head["number"], 16), head["hash"]) == (row[0], row[1]):
                return int(row[0])
        if time.monotonic() > deadline:
            raise TimeoutError(f"the index did not reach the node's head within {timeout_s:.0f} s")
        time.sleep(0.2)


def audit(server: ChaosServer) -> subprocess.CompletedProcess[str]:
    registry, _ = server.registry()
    return subprocess.run(
        server.command(
            "audit",
            "--rpc",
            server.node_url(),
            "--registry",
            registry,
            "--database",
            f"sqlite:///{server.data_dir / 'index.sqlite3'}",
            "--quiet",
        ),
        env=server.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def backlog(server: ChaosServer) -> int | None:
    with contextlib.suppress(httpx.HTTPError, KeyError, TypeError, ValueError):
        answer = httpx.get(f"{server.url}/health", timeout=10).json()["outbox"]["backlog"]
        return int(answer)
    return None


def verdict(server: ChaosServer, tally: Tally, settle_s: float = 45.0) -> dict[str, Any]:
    """Exactly-once on chain for every acknowledged operation, the audit's exit code, the 5xx count.

    A node that lost blocks takes back operations already confirmed (with 0 confirmations, the
    embedded default); the outbox finds them gone at its next re-check and sends them again. So the
    verdict waits, up to `settle_s`, until nothing acknowledged is missing and the outbox is empty."""
    registry, _ = server.registry()
    deadline = time.monotonic() + settle_s
    while True:
        missing: dict[str, list[str]] = {}
        duplicated: dict[str, list[str]] = {}
        for event, lot_ids in tally.acknowledged.items():
            counts = on_chain(server.node_url(), registry, event)
            missing[event] = [lot_id for lot_id in lot_ids if counts[lot_id] == 0]
            duplicated[event] = sorted(lot_id for lot_id, count in counts.items() if count > 1)
        settled = not any(missing.values()) and backlog(server) == 0
        if settled or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    wait_indexed(server, timeout_s=60)
    audited = audit(server)
    return {
        "operations": tally.operations,
        "acknowledged": {event: len(ids) for event, ids in tally.acknowledged.items()},
        "missing": {event: ids for event, ids in missing.items() if ids},
        "duplicated": {event: ids for event, ids in duplicated.items() if ids},
        "exactly_once": not any(missing.values()) and not any(duplicated.values()),
        "audit_exit_code": audited.returncode,
        "audit_output": (audited.stdout + audited.stderr)[-2000:] if audited.returncode else "",
        "unresolved_5xx": len(tally.unresolved_5xx),
        "failed_operations": tally.failed_operations[:10],
        "statuses": {str(code): count for code, count in sorted(tally.statuses.items())},
        "connection_errors": tally.connection_errors,
        "restarts": server.restarts,
    }


def assert_clean(found: dict[str, Any], *, at_least_operations: int) -> None:
    """The verdict of a fault test: whole lots (4 operations each) at least as many as planned
    (clients go on while faults are still to come), each on chain exactly once, none failed, every
    5xx followed by a successful retry, and the audit clean."""
    assert found["operations"] >= at_least_operations
    assert found["operations"] % 4 == 0
    assert found["exactly_once"], found
    assert found["failed_operations"] == [], found
    assert found["unresolved_5xx"] == 0, found
    assert found["audit_exit_code"] == 0, found["audit_output"]

"""Replicas and their leaders under fire: API replicas, indexers and outbox workers as separate
`provenance serve --only ...` processes on one PostgreSQL and one anvil, clients writing through
every API replica, while the indexer's and the worker's leaders are killed (SIGKILL) or paused
(SIGSTOP, then SIGCONT once a standby has taken the lease) at seeded random moments.

    python bench/failover.py            # 3 API, 2 indexers, 2 workers, 20 leader faults
    python bench/failover.py --smoke    # 1 API, 2 indexers, 2 workers, 4 faults (tests/faults/test_failover.py)

Figures (last line JSON):

* `leader_kills`: faults inflicted on a leader (kills and pauses).
* `acknowledged`, `lost`, `duplicated`: operations the API accepted (2xx); acknowledged facts not
  on the chain at the end; facts on the chain more than once.
* `stale_leader_commits`: commits to the index or the outbox that landed while their session's
  process was not the lease's holder. Counted by the database itself, not by our code: a deferred
  constraint trigger, installed by this script, runs inside every committing transaction of a
  leader's session (named by `application_name`) and records it if `leases` names someone else; a
  refused commit records nothing, because it lands nothing.
* `failover_s_p99`: from a fault to a new holder of the lease.
* `audit_clean`: `provenance audit` of the chain against the index at the end.

Targets: lost 0, duplicated 0, stale_leader_commits 0, failover p99 <= 10 s, audit clean.
Exit code 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.api_write import READY, machine, provenance_command, wait_for_api  # noqa: E402
from provenance.chain.node import AnvilNode, free_port  # noqa: E402
from tests.dbs import postgres_database  # noqa: E402
from tests.faults.harness import SITE, Tally, on_chain, pid_alive, run_clients  # noqa: E402

FAILOVER_TARGET_S = 10.0
ROLES = ("indexer", "outbox-worker")
FIRST_FAULTS = (
    ("indexer", "SIGKILL"),
    ("outbox-worker", "SIGSTOP"),
    ("outbox-worker", "SIGKILL"),
    ("indexer", "SIGSTOP"),
)

STALE_COMMIT_TRIGGER = """
CREATE TABLE failover_stale_commits (
    id SERIAL PRIMARY KEY, role TEXT, session_name TEXT, holder TEXT, table_name TEXT,
    at TIMESTAMPTZ DEFAULT clock_timestamp()
);
CREATE FUNCTION failover_stale_commit() RETURNS trigger AS $$
DECLARE
    session_name TEXT := current_setting('application_name');
    role_name TEXT;
    lease_holder TEXT;
BEGIN
    IF session_name ~ ':indexer$' THEN role_name := 'indexer';
    ELSIF session_name ~ ':outbox-worker$' THEN role_name := 'outbox-worker';
    ELSE RETURN NULL;
    END IF;
    SELECT left(holder, 63) INTO lease_holder FROM leases WHERE name = role_name;
    IF lease_holder IS DISTINCT FROM session_name THEN
        INSERT INTO failover_stale_commits (role, session_name, holder, table_name)
        VALUES (role_name, session_name, lease_holder, TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""
WATCHED_TABLES = ("index_cursor", "events", "outbox_transactions", "account_nonces", "operations")
PROBE = "failover_probe"
"""A table of the bench's own on which it forges one stale commit before the run, to show that
the counter counts."""


PUBLIC_URL = "http://provenance.invalid"
"""The replicas' shared public URL (RFC 2606's `.invalid`: nothing is fetched from it)."""


@dataclass
class Replica:
    name: str
    parts: tuple[str, ...]
    data_dir: Path
    env: dict[str, str]
    api_port: int | None = None
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        args = [arg for part in self.parts for arg in ("--only", part)]
        log = open(self.data_dir / "serve.log", "w")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            provenance_command("serve", *args),
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        log.close()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if READY in line:
                    self.ready.set()

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.1):
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {self.name} did not start\n{self.tail()}")
        if self.api_port is not None:
            wait_for_api(self.url, deadline, self.tail)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self._stop(self.process)
        finally:
            if self.process.stdout is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.process.stdout.close()

    def _stop(self, process: subprocess.Popen[str]) -> None:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)  # a paused child would never stop
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        logged = (self.data_dir / "serve.log").read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join([*self.lines[-10:], *logged[-lines:]])


class Cluster:
    """One anvil, one PostgreSQL database, and replicas of `provenance serve --only ...`."""

    def __init__(self, root: Path, database_url: str, *, apis: int, indexers: int, workers: int) -> None:
        self.root = root
        self.database_url = database_url
        self.node = AnvilNode(port=free_port(), log_path=root / "anvil.log")
        self.shared = root / "shared"
        self.counts = {"api": apis, "indexer": indexers, "worker": workers}
        self.replicas: list[Replica] = []
        self.engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.registry = ""

    def env(self, data_dir: Path, **more: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PROVENANCE_")}
        env.update(
            PROVENANCE_RPC_URL=self.node.url,
            PROVENANCE_DATABASE_URL=self.database_url,
            PROVENANCE_DATA_DIR=str(data_dir),
            # One public address for every replica, as behind a load balancer: EPCIS identifiers,
            # and so the eventIDs the indexers store and the audit recomputes, are written under it.
            PROVENANCE_PUBLIC_URL=PUBLIC_URL,
            **more,
        )
        return env

    def start(self) -> tuple[str, tuple[str, str]]:
        """Chain, registry, schema, accounts, replicas; returns the registrar's token and the
        processor's (address, token)."""
        from provenance.chain.deployment import deploy_registry
        from provenance.chain.keys import DevKeyring
        from provenance.chain.node import fund
        from provenance.index.db import upgrade

        w3 = self.node.start()
        self.shared.mkdir(parents=True)
        admin = DevKeyring(self.shared).get_or_create("admin")
        fund(w3, admin.address)
        _, deployment = deploy_registry(w3, admin)
        deployment.save(self.shared / "deployment.json")
        self.registry = deployment.registry
        upgrade(self.database_url)
        with self.engine.begin() as connection:
            connection.exec_driver_sql(STALE_COMMIT_TRIGGER)
            connection.exec_driver_sql(f"CREATE TABLE {PROBE} (value INTEGER)")
            for table in (*WATCHED_TABLES, PROBE):
                connection.exec_driver_sql(
                    f"CREATE CONSTRAINT TRIGGER failover_stale_commit AFTER INSERT OR UPDATE OR DELETE "
                    f"ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    "EXECUTE FUNCTION failover_stale_commit()"
                )
        self._check_the_counter()
        _, registrar = self.account("registrar", "registrar", SITE, w3)
        processor = self.account("processor", "processor", None, w3)

        parts = [("api",)] * self.counts["api"] + [("indexer",)] * self.counts["indexer"]
        parts += [("worker",)] * self.counts["worker"]
        for number, replica_parts in enumerate(parts):
            name = f"{'-'.join(replica_parts)}-{number}"
            data_dir = self.root / name
            shutil.copytree(self.shared, data_dir)
            port = free_port() if "api" in replica_parts else None
            env = self.env(data_dir, PROVENANCE_API_PORT=str(port or 1))
            self.replicas.append(Replica(name, replica_parts, data_dir, env, port))
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            replica.wait_ready(180)
        return registrar, processor

    def _check_the_counter(self) -> None:
        """A commit by a session that calls itself an indexer while nobody holds the lease must be
        counted; then the count starts again from nothing."""
        forger = create_engine(self.engine.url, connect_args={"application_name": "forger:1:indexer"})
        try:
            with forger.begin() as connection:
                connection.exec_driver_sql(f"INSERT INTO {PROBE} (value) VALUES (1)")  # noqa: S608 - ours
        finally:
            forger.dispose()
        counted = self.stale_commits()
        if [(row["role"], row["session_name"], row["table_name"]) for row in counted] != [
            ("indexer", "forger:1:indexer", PROBE)
        ]:
            raise RuntimeError(f"the stale-commit counter does not count: {counted}")
        with self.engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM failover_stale_commits")

    def account(self, name: str, role: str, site: str | None, w3: Any) -> tuple[str, str]:
        from provenance.chain.node import fund

        args = ["accounts", "create", "--name", name, "--role", role] + (["--site", site] if site else [])
        done = subprocess.run(
            provenance_command(*args),
            env=self.env(self.shared),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"accounts create failed ({done.returncode}): {done.stderr.strip()}")
        lines = done.stdout.strip().splitlines()
        address = lines[0].split(":", 1)[1].strip().split(",", 1)[0]
        fund(w3, address)
        return address, lines[-1].strip()

    def api_urls(self) -> list[str]:
        return [replica.url for replica in self.replicas if replica.api_port is not None]

    def lease(self, role: str) -> tuple[str, int, float] | None:
        """(holder, token, seconds left) of `role`'s lease, in the database's clock."""
        with self.engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT holder, token, expires_at - EXTRACT(EPOCH FROM clock_timestamp()) "
                    "FROM leases WHERE name = :name"
                ),
                {"name": role},
            ).first()
        return None if row is None else (str(row[0]), int(row[1]), float(row[2]))

    def leader(self, role: str, timeout_s: float = 60) -> tuple[str, int, int]:
        """(holder, token, pid) of a live lease of `role`."""
        deadline = time.monotonic() + timeout_s
        while True:
            lease = self.lease(role)
            if lease is not None and lease[2] > 0:
                return lease[0], lease[1], int(lease[0].split(":")[-2])
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody holds the {role} lease")
            time.sleep(0.05)

    def new_leader(self, role: str, after_token: int, timeout_s: float = 60) -> tuple[str, int]:
        deadline = time.monotonic() + timeout_s
        while True:
            lease = self.lease(role)
            if lease is not None and lease[1] > after_token and lease[2] > 0:
                return lease[0], lease[1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new {role} leader within {timeout_s:.0f} s")
            time.sleep(0.02)

    def stale_commits(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT role, session_name, holder, table_name FROM failover_stale_commits")
            ).all()
        return [dict(row._mapping) for row in rows]

    def backlog(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM operations WHERE status NOT IN ('confirmed', 'failed')")
                ).scalar_one()
            )

    def wait_indexed(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            head = httpx.post(
                self.node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber",
                                     "params": ["latest", False]}, timeout=5,
            ).json()["result"]  # fmt: skip
            with self.engine.connect() as connection:
                row = connection.execute(text("SELECT block_number, block_hash FROM index_cursor")).first()
            if row is not None and (int(head["number"], 16), head["hash"]) == (row[0], row[1]):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the index did not reach the node's head")
            time.sleep(0.2)

    def audit(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            provenance_command("audit", "--rpc", self.node.url, "--registry", self.registry,
             "--database", self.database_url, "--quiet"),
            env=self.env(self.shared), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    def stop(self) -> None:
        for replica in self.replicas:
            with contextlib.suppress(Exception):
                replica.stop()
        self.engine.dispose()
        with contextlib.suppress(Exception):
            self.node.stop()


@dataclass
class Faults:
    """Kills or pauses the current leader of a role at seeded random moments."""

    cluster: Cluster
    seed: int
    count: int
    pause_s: tuple[float, float]
    log: Any = print
    done: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        chooser = random.Random(self.seed)
        started = time.monotonic()
        try:
            for number in range(self.count):
                if self.stop.wait(chooser.uniform(*self.pause_s)):
                    return
                if number < len(FIRST_FAULTS):  # each kind once first, then at random
                    role, action = FIRST_FAULTS[number]
                else:
                    role, action = chooser.choice(ROLES), chooser.choice(("SIGKILL", "SIGSTOP"))
                holder, token, pid = self.cluster.leader(role)
                at = time.monotonic()
                os.kill(pid, signal.SIGKILL if action == "SIGKILL" else signal.SIGSTOP)
                new_holder, new_token = self.cluster.new_leader(role, token)
                failover_s = time.monotonic() - at
                if action == "SIGSTOP":
                    time.sleep(0.5)  # the new leader commits; then the old one wakes and tries
                    os.kill(pid, signal.SIGCONT)
                self.done.append(
                    {"role": role, "signal": action, "at_s": round(at - started, 1),
                     "failover_s": round(failover_s, 2), "from": holder, "to": new_holder,
                     "token": new_token}
                )  # fmt: skip
                self.log(
                    f"  {at - started:7.1f} s  {action} {role} leader {holder}: {new_holder} leads "
                    f"(token {new_token}) after {failover_s:.2f} s"
                )
        except BaseException as error:
            self.error = error


def verdict(cluster: Cluster, tally: Tally, settle_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + settle_s
    while True:
        lost: dict[str, list[str]] = {}
        duplicated: dict[str, list[str]] = {}
        for event, lot_ids in tally.acknowledged.items():
            counts = on_chain(cluster.node.url, cluster.registry, event)
            lost[event] = [lot_id for lot_id in lot_ids if counts[lot_id] == 0]
            duplicated[event] = sorted(lot_id for lot_id, count in counts.items() if count > 1)
        if (not any(lost.values()) and cluster.backlog() == 0) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    cluster.wait_indexed()
    audited = cluster.audit()
    return {
        "lost": sum(len(ids) for ids in lost.values()),
        "duplicated": sum(len(ids) for ids in duplicated.values()),
        "lost_ids": {event: ids[:10] for event, ids in lost.items() if ids},
        "duplicated_ids": {event: ids[:10] for event, ids in duplicated.items() if ids},
        "audit_clean": audited.returncode == 0,
        "audit_output": (audited.stdout + audited.stderr)[-2000:] if audited.returncode else "",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="provenance-failover-"))
    with postgres_database("provenance_failover") as database_url:
        cluster = Cluster(root, database_url, apis=args.apis, indexers=args.indexers, workers=args.workers)
        try:
            began = time.monotonic()
            registrar, processor = cluster.start()
            print(
                f"{len(cluster.replicas)} replicas up in {time.monotonic() - began:.0f} s: "
                + ", ".join(replica.name for replica in cluster.replicas)
            )
            tally = Tally()
            faults = Faults(cluster, args.seed, args.faults, (args.pause_min_s, args.pause_max_s))
            fault_thread = threading.Thread(target=faults.run, daemon=True)
            deadline = time.monotonic() + args.max_s
            client_errors: list[BaseException] = []

            def clients_of(url: str, number: int) -> None:
                client_errors.extend(
                    run_clients(
                        url, registrar, processor, clients=args.clients_per_api, lots_per_client=1,
                        until=deadline, prefix=f"F{number}-", tally=tally, deadline=deadline + 120,
                        keep_going=fault_thread.is_alive,
                    )
                )  # fmt: skip

            writers = [
                threading.Thread(target=clients_of, args=(url, number), daemon=True)
                for number, url in enumerate(cluster.api_urls())
            ]
            fault_thread.start()
            for writer in writers:
                writer.start()
            fault_thread.join()
            for writer in writers:
                writer.join()
            if faults.error is not None:
                raise faults.error
            found = verdict(cluster, tally)
            stale = cluster.stale_commits()
            refused = sum(
                (replica.data_dir / "serve.log").read_text(errors="replace").count("commit refused")
                for replica in cluster.replicas
            )
            alive = [
                replica.name
                for replica in cluster.replicas
                if replica.process and pid_alive(replica.process.pid)
            ]
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)
    failovers = sorted(fault["failover_s"] for fault in faults.done)
    p99 = (
        failovers[max(0, min(len(failovers), round(0.99 * len(failovers) + 0.5)) - 1)] if failovers else None
    )
    return {
        "machine": machine(),
        "replicas": {"api": args.apis, "indexer": args.indexers, "worker": args.workers},
        "leader_kills": len(faults.done),
        "kills": sum(fault["signal"] == "SIGKILL" for fault in faults.done),
        "pauses": sum(fault["signal"] == "SIGSTOP" for fault in faults.done),
        "acknowledged": tally.operations,
        "lost": found["lost"],
        "duplicated": found["duplicated"],
        "stale_leader_commits": len(stale),
        "stale_commits_refused": refused,
        "failover_s_p50": None if not failovers else round(sorted(failovers)[len(failovers) // 2], 2),
        "failover_s_p99": None if p99 is None else round(p99, 2),
        "failover_target_s": FAILOVER_TARGET_S,
        "audit_clean": found["audit_clean"],
        "client_errors": [repr(error)[:300] for error in client_errors[:5]],
        "failed_operations": tally.failed_operations[:5],
        "replicas_alive_at_end": len(alive),
        "details": {"faults": faults.done, "stale": stale[:10], **found},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="1 API replica, each kind of fault once (tests/faults/test_failover.py)",
    )
    parser.add_argument("--apis", type=int, default=3)
    parser.add_argument("--indexers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--clients-per-api", type=int, default=2)
    parser.add_argument("--pause-min-s", type=float, default=1.0)
    parser.add_argument("--pause-max-s", type=float, default=4.0)
    parser.add_argument("--max-s", type=float, default=900.0, help="clients stop by then")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    if args.smoke:
        args.apis, args.faults, args.clients_per_api = 1, len(FIRST_FAULTS), 2
        args.pause_min_s, args.pause_max_s, args.seed = 0.5, 2.0, 7
    found = run(args)
    p99 = found["failover_s_p99"]
    print(
        f"leader faults     {found['leader_kills']} ({found['kills']} SIGKILL, {found['pauses']} SIGSTOP/SIGCONT)"
    )
    print(f"acknowledged      {found['acknowledged']} operations")
    print(f"lost              {found['lost']}          target 0")
    print(f"duplicated        {found['duplicated']}          target 0")
    print(
        f"stale commits     {found['stale_leader_commits']}          target 0 "
        f"(commits a former leader tried and the fence refused: {found['stale_commits_refused']})"
    )
    print(f"failover p99      {p99} s    target <= {FAILOVER_TARGET_S} s (p50 {found['failover_s_p50']} s)")
    print(f"audit             {'clean' if found['audit_clean'] else 'NOT CLEAN'}")
    met = (
        found["lost"] == 0
        and found["duplicated"] == 0
        and found["stale_leader_commits"] == 0
        and p99 is not None
        and p99 <= FAILOVER_TARGET_S
        and found["audit_clean"]
        and not found["failed_operations"]
    )
    found["targets_met"] = met
    print(json.dumps(found, default=str))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

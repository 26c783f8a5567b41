"""Backfill speed of the index, beside a naive indexer, on a 100,000-event history on anvil.

    .venv/bin/python bench/index.py                  # 100,000 events, SQLite and PostgreSQL
    .venv/bin/python bench/index.py --profile        # and where the SQLite backfill spends its time
    .venv/bin/python bench/index.py --smoke          # 1,000 events: that it runs (the suite does)

Registers lots and transforms them (with handovers, assays, documents, devices and corrections
around them) on a fresh anvil until the registry has emitted 100,000 events, signing locally
and mining many transactions per block. Then times a full backfill, from the deployment block
to the head, into an empty SQLite file and into an empty PostgreSQL database, and, in the same
run, a naive indexer over a 5,000-event slice: eth_getLogs block by block, each log decoded by
web3's contract event, one ORM insert and one commit per event into a plain table, on SQLite.

Targets: >= 10,000 events/s into SQLite; >= 20x the naive indexer; peak RSS < 1,024 MiB (this
process, which holds the history builder and runs both indexers; anvil is reported apart).
Prints each phase's time and PASS/FAIL per target, then one JSON object as its last line; exits 1
if a target fails.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the history builder lives in tests/histories.py, shared with the tests

from sqlalchemy import JSON, BigInteger, Integer, String, create_engine  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.contract import Contract  # noqa: E402

from provenance.chain.artifacts import registry_artifact  # noqa: E402
from provenance.chain.deployment import Deployment  # noqa: E402
from provenance.chain.logsource import RpcLogSource  # noqa: E402
from provenance.chain.node import AnvilNode  # noqa: E402
from provenance.index.db import make_engine  # noqa: E402
from provenance.index.indexer import Indexer  # noqa: E402
from tests.histories import BENCH, Actors, HistoryBuilder, deploy_for_history  # noqa: E402
from tests.integration.support import Databases  # noqa: E402

TARGET_SQLITE_EVENTS_PER_S = 10_000
TARGET_SPEEDUP = 20
TARGET_PEAK_RSS_MIB = 1_024


def rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------- the history


def build_history(w3: Web3, events: int) -> tuple[Deployment, int]:
    """A fresh registry with at least `events` events; returns it and the exact number of its events."""
    actors = Actors.generate()
    deployment, writer = deploy_for_history(w3, actors)
    history = HistoryBuilder(writer, actors, seed=2024, tag="B")
    history.setup()
    history.run(BENCH, events=events)
    print(
        f"  {history.rounds} rounds, {len(writer.sent):,} transactions, blocks "
        f"{deployment.block_number}..{w3.eth.block_number}"
    )
    return deployment, writer.events + 1  # and the constructor's RoleGranted


# ------------------------------------------------------------------------------- our indexer


def backfill(w3: Web3, deployment: Deployment, url: str, *, profile: bool) -> tuple[int, float, float]:
    """Times one full backfill into the empty, migrated database at `url`, then apart the pass that
    stores its EPCIS events (`Indexer.store_epcis_events`, which `sync` runs once at the head);
    returns (events, backfill seconds, EPCIS seconds)."""
    engine = make_engine(url)
    indexer = Indexer(engine, RpcLogSource(w3, deployment.registry), deployment)
    profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = indexer.sync(defer_epcis=True)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        indexer.store_epcis_events()
        epcis_s = time.perf_counter() - started
    finally:
        engine.dispose()
    if profiler is not None:
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(30)
        print(report.getvalue())
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(20)
        print(report.getvalue())
    return result.events, seconds, epcis_s


# ------------------------------------------------------------------------------- the naive indexer


class NaiveBase(DeclarativeBase):
    pass


class NaiveEvent(NaiveBase):
    """What a first indexer stores: one row per event, its arguments as JSON."""

    __tablename__ = "naive_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def naive_index(w3: Web3, registry: str, url: str, first: int, events_wanted: int) -> tuple[int, int, float]:
    """eth_getLogs block by block from `first`, web3's decoding, one commit per event, until
    `events_wanted` events are stored; returns (events, last block, seconds)."""
    engine = create_engine(url)
    NaiveBase.metadata.create_all(engine)
    contract: Contract = w3.eth.contract(
        address=Web3.to_checksum_address(registry), abi=registry_artifact().abi
    )
    by_topic = {}
    for entry in registry_artifact().abi:
        if entry["type"] == "event":
            signature = f"{entry['name']}({','.join(item['type'] for item in entry['inputs'])})"
            by_topic[Web3.keccak(text=signature)] = contract.events[entry["name"]]()
    stored = 0
    block = first
    started = time.perf_counter()
    with Session(engine) as session:
        while stored < events_wanted:
            for log in w3.eth.get_logs({"fromBlock": block, "toBlock": block, "address": contract.address}):
                decoded = by_topic[bytes(log["topics"][0])].process_log(log)
                session.add(
                    NaiveEvent(
                        block_number=decoded["blockNumber"],
                        block_hash=decoded["blockHash"].to_0x_hex(),
                        tx_hash=decoded["transactionHash"].to_0x_hex(),
                        log_index=decoded["logIndex"],
                        name=decoded["event"],
                        args={key: _plain(value) for key, value in decoded["args"].items()},
                    )
                )
                session.commit()
                stored += 1
            block += 1
    seconds = time.perf_counter() - started
    engine.dispose()
    return stored, block - 1, seconds


# ------------------------------------------------------------------------------- the run


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the history")
    parser.add_argument("--naive-events", type=int, default=5_000, help="events in the naive indexer's slice")
    parser.add_argument("--profile", action="store_true", help="profile the SQLite backfill")
    parser.add_argument("--smoke", action="store_true", help="1,000 events: that it runs")
    options = parser.parse_args(argv)
    if options.smoke:
        options.events, options.naive_events = 1_000, 200

    print(f"bench/index.py, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="provenance-bench-") as scratch:
        directory = Path(scratch)
        node = AnvilNode()
        w3 = node.start()
        try:
            print(f"history: {options.events:,} events on anvil", flush=True)
            started = time.perf_counter()
            deployment, events = build_history(w3, options.events)
            generation_s = time.perf_counter() - started
            print(f"  {events:,} events written: {generation_s:.2f} s", flush=True)
            rss_after_history = rss_mib()

            print("backfill into SQLite (empty file)", flush=True)
            sqlite_url = Databases("sqlite", directory).new()
            sqlite_events, sqlite_s, sqlite_epcis_s = backfill(
                w3, deployment, sqlite_url, profile=options.profile
            )
            print(
                f"  {sqlite_events:,} events: {sqlite_s:.2f} s; then their EPCIS events: {sqlite_epcis_s:.2f} s",
                flush=True,
            )

            print("backfill into PostgreSQL (empty database)", flush=True)
            postgres = Databases("postgresql", directory)
            try:
                postgres_events, postgres_s, postgres_epcis_s = backfill(
                    w3, deployment, postgres.new(), profile=False
                )
            finally:
                postgres.close()
            print(
                f"  {postgres_events:,} events: {postgres_s:.2f} s; then their EPCIS events: {postgres_epcis_s:.2f} s",
                flush=True,
            )

            print(f"naive indexer: a {options.naive_events:,}-event slice into SQLite", flush=True)
            naive_url = f"sqlite:///{directory / 'naive.sqlite3'}"
            naive_events, naive_last, naive_s = naive_index(
                w3, deployment.registry, naive_url, deployment.block_number, options.naive_events
            )
            print(
                f"  {naive_events:,} events in blocks {deployment.block_number}..{naive_last}: {naive_s:.2f} s",
                flush=True,
            )
        finally:
            node.stop()
    anvil_rss = rss_mib(resource.RUSAGE_CHILDREN)

    sqlite_rate = sqlite_events / sqlite_s
    postgres_rate = postgres_events / postgres_s
    naive_rate = naive_events / naive_s
    speedup = sqlite_rate / naive_rate
    peak = rss_mib()
    print()
    print(
        f"history generation: {generation_s:.1f} s; RSS after it {rss_after_history:.0f} MiB; anvil peak {anvil_rss:.0f} MiB"
    )
    print(f"{'':<34}{'measured':>14}{'target':>14}")
    rows = [
        (
            "SQLite backfill, events/s",
            sqlite_rate,
            f">= {TARGET_SQLITE_EVENTS_PER_S:,}",
            sqlite_rate >= TARGET_SQLITE_EVENTS_PER_S,
        ),
        ("SQLite, with the EPCIS pass, ev/s", sqlite_events / (sqlite_s + sqlite_epcis_s), "", None),
        ("PostgreSQL backfill, events/s", postgres_rate, "", None),
        ("PostgreSQL, with EPCIS pass, ev/s", postgres_events / (postgres_s + postgres_epcis_s), "", None),
        ("naive indexer, events/s", naive_rate, "", None),
        ("speedup vs naive (SQLite)", speedup, f">= {TARGET_SPEEDUP}x", speedup >= TARGET_SPEEDUP),
        ("peak RSS, MiB", peak, f"< {TARGET_PEAK_RSS_MIB:,}", peak < TARGET_PEAK_RSS_MIB),
    ]
    failed = False
    for label, value, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        failed |= ok is False
        print(f"{label:<34}{value:>14,.1f}{target:>14}  {verdict}")
    if sqlite_events != events or postgres_events != events:
        print(
            f"FAIL the backfills indexed {sqlite_events:,} and {postgres_events:,} events; the chain holds {events:,}"
        )
        failed = True
    print(
        json.dumps(
            {
                "events": events,
                "sqlite_events_per_s": round(sqlite_rate),
                "postgres_events_per_s": round(postgres_rate),
                "naive_events_per_s": round(naive_rate, 1),
                "speedup_vs_naive": round(speedup, 1),
                "peak_rss_mib": round(peak),
                "history_s": round(generation_s, 1),
                "sqlite_s": round(sqlite_s, 2),
                "postgres_s": round(postgres_s, 2),
                "sqlite_epcis_s": round(sqlite_epcis_s, 2),
                "postgres_epcis_s": round(postgres_epcis_s, 2),
                "naive_events": naive_events,
                "naive_s": round(naive_s, 2),
                "anvil_peak_rss_mib": round(anvil_rss),
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

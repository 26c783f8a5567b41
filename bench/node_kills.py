"""Kills of the embedded node during mixed writes: every acknowledged operation lands exactly once,
none fails after it was acknowledged, and the chain audits clean after every round.

    .venv/bin/python bench/node_kills.py                 # 30 rounds, 4 clients
    .venv/bin/python bench/node_kills.py --smoke         # 1 round, 2 clients (the test suite runs it)

Starts `provenance serve` (embedded anvil, SQLite, a temporary data directory; its node keeper
saves the chain every `--save-every-s`, 1 s) and makes a registrar and a processor. Each round,
`--clients` clients each make a lot and carry it through registration, handover, acceptance and a
split (tests/faults/harness.py), while the node is SIGKILLed once, at a random moment (seeded):
in about a third of the rounds while a save is under way (mining paused for the dump, or the
snapshot being written), otherwise whenever the pause runs out. serve's keeper starts the node
again from its last save; the outbox sends again what the node lost. After each round the verdict:
each acknowledged event on chain exactly once (eth_getLogs), no operation failed, and
`provenance audit` of the index exits 0.

Prints one line per round, then one JSON object (its last line): `rounds`, `acknowledged`
(operations acknowledged, 2xx), `landed_once` (acknowledged events found exactly once),
`lost`, `duplicated`, `failed_after_ack`, `audit_clean_rounds`, `kills_during_save`, and the
node's head before and after each kill. Exit code 0 when lost, duplicated and failed_after_ack
are 0 and every round audited clean, 2 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.faults.harness import ChaosServer, Tally, run_clients, verdict  # noqa: E402


def one_round(
    server: ChaosServer,
    registrar: str,
    processor: tuple[str, str],
    *,
    number: int,
    clients: int,
    rng: random.Random,
) -> dict[str, Any]:
    tally = Tally()
    during_save = rng.random() < 1 / 3
    pause_s = rng.uniform(0.2, 2.0)
    killed: dict[str, Any] = {}

    def kill() -> None:
        try:
            time.sleep(pause_s)
            killed.update(server.inflict("node", during_save=during_save))
        except BaseException as error:
            killed["error"] = repr(error)

    killer = threading.Thread(target=kill, daemon=True)
    started = time.monotonic()
    killer.start()
    errors = run_clients(
        server.url, registrar, processor, clients=clients, lots_per_client=1,
        until=started + 120, prefix=f"N{number}-", tally=tally, deadline=started + 180,
        keep_going=killer.is_alive,
    )  # fmt: skip
    killer.join(timeout=120)
    found = verdict(server, tally)
    acknowledged = sum(len(ids) for ids in tally.acknowledged.values())
    missing = sum(len(ids) for ids in found["missing"].values())
    return {
        "round": number,
        "during_save": during_save,
        "pause_s": round(pause_s, 2),
        "kill": killed,
        "operations": found["operations"],
        "acknowledged_events": acknowledged,
        "lost": missing,
        "duplicated": sum(len(ids) for ids in found["duplicated"].values()),
        "failed_after_ack": len(found["failed_operations"]) + len(errors),
        "audit_exit_code": found["audit_exit_code"],
        "audit_output": found["audit_output"][-500:],
        "client_errors": [repr(error)[:300] for error in errors],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30, help="kill/restart rounds (30)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients in a round (4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments (1)")
    parser.add_argument("--save-every-s", type=float, default=1.0, help="the node keeper's save interval (1)")
    parser.add_argument("--smoke", action="store_true", help="1 round of 2 clients: that it runs at all")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.clients = 1, 2

    data_dir = Path(tempfile.mkdtemp(prefix="provenance-node-kills-")) / "data"
    server = ChaosServer(data_dir, state_interval_s=args.save_every_s)
    rng = random.Random(args.seed)
    rounds: list[dict[str, Any]] = []
    try:
        print(
            f"bench/node_kills.py: serve in {data_dir}; {args.rounds} rounds of {args.clients} clients",
            flush=True,
        )
        server.start()
        registrar, processor = server.accounts()
        for number in range(args.rounds):
            began = time.monotonic()
            result = one_round(server, registrar, processor, number=number, clients=args.clients, rng=rng)
            rounds.append(result)
            kill = result["kill"]
            print(
                f"  round {number:2d}: {'during a save' if result['during_save'] else 'any moment  '} "
                f"head {kill.get('head_before')} -> {kill.get('head_after_restart')}, "
                f"{result['operations']} operations, lost {result['lost']}, duplicated {result['duplicated']}, "
                f"failed {result['failed_after_ack']}, audit exit {result['audit_exit_code']} "
                f"({time.monotonic() - began:.0f} s)",
                flush=True,
            )
    finally:
        server.stop()
        server._kill_orphans()
        if args.keep:
            print(f"data kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    summary = {
        "rounds": len(rounds),
        "clients": args.clients,
        "seed": args.seed,
        "save_every_s": args.save_every_s,
        "acknowledged": sum(result["operations"] for result in rounds),
        "landed_once": sum(result["acknowledged_events"] - result["lost"] for result in rounds),
        "lost": sum(result["lost"] for result in rounds),
        "duplicated": sum(result["duplicated"] for result in rounds),
        "failed_after_ack": sum(result["failed_after_ack"] for result in rounds),
        "audit_clean_rounds": sum(result["audit_exit_code"] == 0 for result in rounds),
        "kills_during_save": sum(result["during_save"] for result in rounds),
        "kills": [
            {"round": result["round"], "during_save": result["during_save"], **result["kill"]}
            for result in rounds
        ],
        "problems": [
            {key: result[key] for key in ("round", "audit_output", "client_errors")}
            for result in rounds
            if result["audit_exit_code"] != 0 or result["client_errors"]
        ],
    }
    clean = (
        summary["lost"] == summary["duplicated"] == summary["failed_after_ack"] == 0
        and summary["audit_clean_rounds"] == summary["rounds"]
    )
    print(
        f"rounds {summary['rounds']}: acknowledged {summary['acknowledged']}, lost {summary['lost']}, "
        f"duplicated {summary['duplicated']}, failed after ack {summary['failed_after_ack']}, "
        f"audit clean {summary['audit_clean_rounds']}/{summary['rounds']} (all must be)"
    )
    print(json.dumps(summary))
    return 0 if clean else 2


if __name__ == "__main__":
    sys.exit(main())

"""Chaos run: clients write through the HTTP API of `provenance serve` while its processes die.

    .venv/bin/python bench/chaos.py                          # 5 minutes, 8 clients
    .venv/bin/python bench/chaos.py --minutes 1 --seed 3     # a shorter run, other moments
    .venv/bin/python bench/chaos.py --smoke                  # each fault once, 8 clients (tests/faults/test_kills.py)

Starts `provenance serve` (embedded anvil, SQLite, a temporary data directory; bench/api_write.py's
`Server`) and makes a registrar of site SH2 and a processor. Each client then loops: register a lot,
offer it to the processor, the processor accepts it and splits it in two; every operation has its
own Idempotency-Key and is sent again on a connection error or a 5xx until a 2xx or 4xx answers.
Meanwhile, at seeded random moments, one of (tests/faults/harness.py):

* SIGKILL of the indexer child or of the outbox worker child (serve starts them again),
* SIGKILL of the node, at any moment (the blocks after its last save are lost; serve starts it again),
* SIGKILL of serve itself (the API process; restarted),
* the node killed and kept from starting again for `--outage-s` seconds (30), then back with its chain.

The smoke run is tests/faults/test_kills.py's scenario, which the suite runs once for both: each
process killed once in a seeded order, then the node kept away for 2 s, while 8 clients make 3 lots
each and go on until the last fault is over; the node's chain saved every 2 s.

At the end: every acknowledged operation is on chain exactly once (LotRegistered, CustodyOffered,
CustodyAccepted, LotCreated counted per lot id with eth_getLogs), `provenance audit` of the final
index exits 0, and no client saw a 5xx that no successful retry of the same key followed. Prints what
was killed when, then the verdict as one JSON object (its last line). Exit code 0 if all three
hold, 2 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.faults.harness import FAULTS, Chaos, ChaosServer, Tally, run_clients, verdict, wait_indexed  # noqa: E402

SMOKE_SEED = 7
SMOKE_CLIENTS = 8
SMOKE_LOTS_PER_CLIENT = 3  # 4 operations each: at least 96 operations
SMOKE_STATE_INTERVAL_S = 2.0
SMOKE_WRITES_S = 90.0
"""The smoke run's clients stop by then (and wait for their operations 10 s more at most)."""


def smoke_faults(seed: int = SMOKE_SEED) -> list[str]:
    """Each process of serve killed once, in a seeded order, then the node's outage."""
    faults = list(FAULTS)
    random.Random(seed).shuffle(faults)
    return [*faults, "outage"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the clients write (5)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault moments and kinds (1)")
    parser.add_argument("--pause-s", type=float, nargs=2, default=(5.0, 20.0), help="between faults (5 20)")
    parser.add_argument("--outage-s", type=float, default=30.0, help="how long the node stays away (30)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="each fault once, 8 clients, short pauses (tests/faults/test_kills.py)",
    )
    args = parser.parse_args()
    faults = None
    if args.smoke:
        args.minutes, args.clients, args.pause_s, args.outage_s = (
            SMOKE_WRITES_S / 60,
            SMOKE_CLIENTS,
            (0.5, 2.0),
            2.0,
        )
        args.seed = SMOKE_SEED
        faults = smoke_faults(args.seed)

    data_dir = Path(tempfile.mkdtemp(prefix="provenance-chaos-")) / "data"
    server = ChaosServer(data_dir, **({"state_interval_s": SMOKE_STATE_INTERVAL_S} if args.smoke else {}))
    tally = Tally()
    chaos = Chaos(
        server,
        seed=args.seed,
        pause_s=tuple(args.pause_s),
        choices=(*FAULTS, "outage"),
        outage_s=args.outage_s,
    )
    try:
        print(f"serve in {data_dir} ...", flush=True)
        server.start()
        registrar, processor = server.accounts()
        started = time.monotonic()
        until = started + args.minutes * 60
        print(f"{args.clients} clients for {args.minutes:g} min; faults (seed {args.seed}):", flush=True)
        killer = chaos.start(faults)
        errors = run_clients(
            server.url,
            registrar,
            processor,
            clients=args.clients,
            lots_per_client=SMOKE_LOTS_PER_CLIENT if faults else None,  # then more while faults are to come
            until=until,
            prefix="X",
            tally=tally,
            deadline=until + (10 if faults else 300),
            keep_going=lambda: len(chaos.killed) < len(faults or ()) and chaos.error is None,
        )
        chaos.stop.set()
        killer.join(timeout=120)
        wait_indexed(server, timeout_s=120)
        found = verdict(server, tally)
        found.update(
            killed=chaos.killed,
            client_errors=[repr(error)[:300] for error in errors],
            chaos_error=repr(chaos.error) if chaos.error else None,
            minutes=args.minutes,
            clients=args.clients,
            seed=args.seed,
        )
        clean = (
            found["exactly_once"]
            and found["audit_exit_code"] == 0
            and found["unresolved_5xx"] == 0
            and not errors
            and chaos.error is None
        )
        found["verdict"] = "clean" if clean else "FAILED"
        print(
            f"operations {found['operations']}, exactly once: {found['exactly_once']}, audit exit "
            f"{found['audit_exit_code']}, 5xx without a successful retry: {found['unresolved_5xx']}"
        )
        print(json.dumps(found))
        return 0 if clean else 2
    finally:
        server.stop()
        server._kill_orphans()
        if args.keep:
            print(f"data kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

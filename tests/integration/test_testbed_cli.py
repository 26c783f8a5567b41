"""The smart-mining testbed as an operator runs it, against `provenance serve` on anvil: register the
trucks' scales, simulate a shift and pipe it into `provenance ingest trips -`; a second ingest
registers nothing; the site's account then shows the loads, from the API and from
`provenance report`."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from provenance.chain.node import free_port
from tests.integration.test_main_job import CLI, run_cli, serve_env, start_serve, stop, wait_for_line
from tests.shifts import finished_shift_start

pytestmark = [pytest.mark.anvil, pytest.mark.clock]


def ingest(env: dict[str, str], lines: str) -> tuple[int, dict[str, object], str]:
    done = subprocess.run(
        [*CLI, "ingest", "trips", "-"], input=lines, capture_output=True, text=True, timeout=180, env=env
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def test_a_simulated_shift_is_piped_into_ingest_once(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    server = start_serve(tmp_path, port, api_port)
    try:
        wait_for_line(server, "Ctrl-C stops")
        env = serve_env(tmp_path, port, api_port)
        created = run_cli(
            "accounts", "create", "--name", "fleet", "--role", "registrar", "--site", "SH2", env=env
        )
        assert created.returncode == 0, created.stderr
        env["PROVENANCE_API_TOKEN"] = created.stdout.strip().splitlines()[-1]

        added = run_cli("devices", "add", "--site", "SH2", "--trucks", "3", env=env)
        assert added.returncode == 0, added.stdout + added.stderr
        assert added.stdout.count(" added") == 3
        assert (
            run_cli("devices", "add", "--site", "SH2", "--trucks", "3", env=env).stdout.count(
                "already active"
            )
            == 3
        )

        simulated = run_cli(
            "simulate",
            "trucks",
            "--trucks",
            "3",
            "--hours",
            "2",
            "--seed",
            "11",
            "--start",
            str(finished_shift_start(2)),
            env=env,
        )
        assert simulated.returncode == 0, simulated.stderr
        trips = [json.loads(line) for line in simulated.stdout.splitlines()]
        disagreeing = sum(
            abs(t["mass_g"] - t["weighbridge_mass_g"]) * 100 > t["weighbridge_mass_g"] for t in trips
        )

        code, summary, stderr = ingest(env, simulated.stdout + "not json\n")
        assert code == 1, stderr
        assert summary["registered"] == len(trips) - disagreeing
        assert summary["rejected"] == disagreeing + 1
        assert f"line {len(trips) + 1}: malformed line" in stderr

        deadline = time.monotonic() + 30
        again: dict[str, object] = {}
        while time.monotonic() < deadline:  # the indexer follows the chain within a second or so
            code, again, _ = ingest(env, simulated.stdout)
            if again["skipped_already_registered"] == summary["registered"]:
                break
            time.sleep(0.5)
        assert again["registered"] == 0
        assert again["skipped_already_registered"] == summary["registered"]

        # the shift's own span, not the month: a shift may straddle a month's end
        first, last = min(t["loaded_at"] for t in trips) - 3600, int(time.time()) + 3600
        url = f"http://127.0.0.1:{api_port}/v1/sites/SH2/mass-balance?from={first}&to={last}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            account = json.load(answer)
        registered_g = sum(
            t["mass_g"]
            for t in trips
            if abs(t["mass_g"] - t["weighbridge_mass_g"]) * 100 <= t["weighbridge_mass_g"]
        )
        assert account["extracted_g"] == registered_g
        assert account["reconciles"] is True
        report = run_cli(
            "report", "mass-balance", "--site", "SH2", "--from", str(first), "--to", str(last), "--unit", "g",
            env=env,
        )  # fmt: skip
        assert report.returncode == 0, report.stdout + report.stderr
        assert f"{registered_g:,} g" in report.stdout
    finally:
        stop(server)

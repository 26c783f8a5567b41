"""The main job and the deploy command as a user runs them: real processes, a real anvil node."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance.chain.connection import connect
from provenance.chain.node import AnvilNode, free_port
from provenance.config import DEFAULT_BACKGROUND_NICE

pytestmark = pytest.mark.anvil

CLI = [sys.executable, "-m", "provenance.cli.main"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def serve_env(data_dir: Path, port: int, api_port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PROVENANCE_DATA_DIR": str(data_dir),
        "PROVENANCE_NODE_PORT": str(port),
        "PROVENANCE_API_PORT": str(api_port),
    }
    env.pop("PROVENANCE_RPC_URL", None)
    env.pop("PROVENANCE_DATABASE_URL", None)
    return env


def indexed_custodians(data_dir: Path, lot_ids: list[str]) -> list[str]:
    """Custodians of `lot_ids` as the main job's SQLite index has them."""
    with sqlite3.connect(f"file:{data_dir / 'index.sqlite3'}?mode=ro", uri=True) as db:
        found = dict(
            db.execute("SELECT lot_id, custodian FROM lots WHERE pending_custodian IS NULL").fetchall()
        )
    return [found.get(lot_id, "") for lot_id in lot_ids]


def start_serve(data_dir: Path, port: int, api_port: int) -> subprocess.Popen[str]:
    env = serve_env(data_dir, port, api_port)
    return subprocess.Popen(
        [*CLI, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_line(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if marker in line:
            return lines
    process.kill()
    raise AssertionError(f"no {marker!r} in output: {lines}; stderr: {process.communicate()[1]}")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def health(api_port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/health", timeout=10) as answer:
        return dict(json.load(answer))


def test_serve_deploys_once_serves_the_api_and_keeps_the_chain_across_restarts(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    first = start_serve(tmp_path, port, api_port)
    lines = wait_for_line(first, "Ctrl-C stops")
    record = json.loads((tmp_path / "deployment.json").read_text())
    w3 = connect(f"http://127.0.0.1:{port}")
    code_before = w3.eth.get_code(record["registry"])
    assert any("deployed now" in line for line in lines)
    assert sum("admin API token" in line for line in lines) == 1
    assert f"buyer's page of a lot: http://127.0.0.1:{api_port}/lots/LOT-ID" in "\n".join(lines)
    assert any(line.startswith("warning: PROVENANCE_PUBLIC_URL is unset") for line in lines), lines
    assert len(code_before) > 1000
    assert wait_until(lambda: health(api_port)["status"] == "ok")
    base = os.getpriority(os.PRIO_PROCESS, 0)
    background = max(base, DEFAULT_BACKGROUND_NICE)
    wanted = {
        "serve": base,
        "node": background,
        "indexer": background,
        "outbox-worker": background,
        "deliveries": background,
    }
    # a child lowers its own priority first thing in its main, which a spawned child reaches
    # after its imports: possibly after the API already answers
    assert wait_until(lambda: niceness_of(tmp_path / "pids.json") == wanted), (
        "the API runs at the caller's priority, the background processes below it",
        niceness_of(tmp_path / "pids.json"),
    )
    led = {"indexer", "outbox-worker", "deliveries"}
    assert wait_until(lambda: leaders(api_port, tmp_path / "pids.json") == led), (
        "the three children lead their roles, and /health names them",
        health(api_port).get("leaders"),
    )
    assert "chain saved" in stop(first)

    second = start_serve(tmp_path, port, api_port)
    lines = wait_for_line(second, "Ctrl-C stops")
    assert any("deployed earlier" in line and record["registry"] in line for line in lines)
    assert not any("admin API token" in line for line in lines), "the token is shown on first start only"
    assert w3.eth.get_code(record["registry"]) == code_before
    assert wait_until(lambda: health(api_port)["status"] == "ok")

    demo = run_cli("demo", env=serve_env(tmp_path, port, api_port))
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout[demo.stdout.index("{") :])
    said = demo.stdout[: demo.stdout.index("{")]
    for shipment in summary["shipments"]:  # the pages to open, and the new accounts' tokens, once
        assert f"http://127.0.0.1:{api_port}/lots/{shipment}" in said
    assert f"http://127.0.0.1:{api_port}/sites/{summary['site']}?period=" in said
    assert (
        len(re.findall(r"^  (?:registrar|processor|lab|buyer-a|buyer-b): prv_\S+$", said, re.MULTILINE)) == 5
    )
    assert wait_until(
        lambda: (
            indexed_custodians(tmp_path, summary["shipments"])
            == [summary["accounts"]["buyer-a"], summary["accounts"]["buyer-b"]]
        )
    )
    stop(second)

    key_file = tmp_path / "keys" / "admin.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert key_file.read_text().strip() not in "\n".join(lines)


def leaders(api_port: int, pids_file: Path) -> set[str]:
    """The roles whose running lease /health shows held by the child of that name in pids.json."""
    pids = json.loads(pids_file.read_text())
    found = health(api_port).get("leaders")
    assert isinstance(found, list)
    return {
        leader["role"]
        for leader in found
        if leader["leading"] and leader["holder"].endswith(f":{pids.get(leader['role'])}:{leader['role']}")
    }


def niceness_of(pids_file: Path) -> dict[str, int]:
    pids: dict[str, int] = json.loads(pids_file.read_text(encoding="utf-8"))
    return {name: os.getpriority(os.PRIO_PROCESS, pid) for name, pid in pids.items()}


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def test_deploy_writes_a_record_that_matches_the_chain(tmp_path: Path) -> None:
    with AnvilNode() as node:
        w3 = connect(node.url)
        # the dev key is generated on first use; fund it the way `serve` does
        from provenance.chain.keys import DevKeyring
        from provenance.chain.node import fund

        fund(w3, DevKeyring(tmp_path).get_or_create("admin").address)
        out = tmp_path / "deployment.json"
        result = run_cli("deploy", "--rpc", node.url, "--out", str(out), "--data-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        record = json.loads(out.read_text())
        assert record["chain_id"] == w3.eth.chain_id
        assert record["genesis_hash"] == w3.eth.get_block(0)["hash"].to_0x_hex()
        assert w3.eth.get_transaction_receipt(record["tx_hash"])["contractAddress"] == record["registry"]

        again = run_cli("deploy", "--rpc", node.url, "--out", str(out), "--data-dir", str(tmp_path))
        assert again.returncode == 2
        assert "never overwritten" in again.stderr
        assert json.loads(out.read_text()) == record


def test_deploy_to_an_unreachable_node_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(
        "deploy", "--rpc", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path / "d.json"),
        "--data-dir", str(tmp_path),
    )  # fmt: skip

    assert result.returncode == 2
    assert "no node answers" in result.stderr
    assert "Traceback" not in result.stderr


def test_deploy_refuses_a_bad_admin_address(tmp_path: Path) -> None:
    result = run_cli(
        "deploy", "--rpc", "http://127.0.0.1:1", "--admin", "0x1234", "--out", str(tmp_path / "d")
    )

    assert result.returncode == 2
    assert "--admin" in result.stderr


def test_a_killed_node_is_really_gone() -> None:
    node = AnvilNode()
    node.start()
    w3 = connect(node.url)
    assert w3.eth.chain_id

    node.kill()

    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        connect(node.url, timeout_s=2).eth.chain_id  # noqa: B018


def test_deploying_from_an_account_without_ether_is_one_line_naming_it(tmp_path: Path) -> None:
    with AnvilNode() as node:
        result = run_cli(
            "deploy", "--rpc", node.url, "--out", str(tmp_path / "d.json"), "--data-dir", str(tmp_path)
        )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "holds 0 wei on chain 31337" in line
    assert "PROVENANCE_KEYSTORE" in line
    assert not (tmp_path / "d.json").exists()


def test_serve_against_a_chain_where_its_key_holds_nothing_says_so_and_exits_2(tmp_path: Path) -> None:
    with AnvilNode() as node:
        env = {**serve_env(tmp_path, free_port(), free_port()), "PROVENANCE_RPC_URL": node.url}
        result = subprocess.run([*CLI, "serve"], capture_output=True, text=True, timeout=120, env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert any("holds 0 wei" in line and line.startswith("error:") for line in result.stderr.splitlines())


def test_serve_on_an_api_port_in_use_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        env = {**serve_env(tmp_path, free_port(), taken.getsockname()[1]), "PROVENANCE_API_PROCESSES": "2"}
        result = subprocess.run([*CLI, "serve"], capture_output=True, text=True, timeout=120, env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "in use" in error.lower(), error
    assert "node stopped, chain saved" in result.stdout

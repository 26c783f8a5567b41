"""The embedded node: anvil from node_modules, its chain persisted in the data directory.

anvil dumps its state every few seconds and on a clean exit; a SIGKILL loses what came after the
last dump, which is exactly what the transaction outbox is there to survive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from web3 import Web3

from provenance.chain.connection import connect
from provenance.errors import NodeError

REPO_ROOT = Path(__file__).resolve().parents[2]
HARDFORK = "prague"
"""Matches the compiler's evmVersion, so the node runs exactly the code we verified."""


def anvil_executable() -> Path:
    """The anvil binary itself, not npm's `.bin/anvil` Node wrapper: a signal sent to the wrapper
    does not reach the node, so a SIGKILL would leave the real node running."""
    override = os.environ.get("PROVENANCE_ANVIL")
    if override:
        return Path(override)
    packages = REPO_ROOT / "node_modules" / "@foundry-rs"
    for binary in sorted(packages.glob("anvil-*/bin/anvil")):
        if os.access(binary, os.X_OK):
            return binary
    wrapper = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if wrapper.exists():
        return wrapper
    raise NodeError(f"anvil not found under {packages}: run `npm ci` (or `make run`, which does it)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def saved_genesis_timestamp(state_path: Path) -> int | None:
    """The timestamp of the genesis block in anvil's state dump (the earliest, if it holds several).

    anvil (1.7) makes a fresh genesis block at every start, with the current time, and a dump made
    after a restart holds it beside the loaded one; which of them a later start calls block 0 is
    then up to chance, and `serve` rightly refuses a node whose genesis is not the deployment's
    (seen after two or three restarts, tests/faults). Starting with the saved genesis timestamp
    makes the fresh genesis identical to the saved one, so there is only ever one."""
    try:
        blocks = json.loads(state_path.read_text(encoding="utf-8")).get("blocks", [])
        stamps = [
            int(block["header"]["timestamp"], 16) for block in blocks if block["header"]["number"] == "0x0"
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return min(stamps) if stamps else None


class AnvilNode:
    """Starts anvil and stops it cleanly (so it dumps its state); usable as a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        state_path: Path | None = None,
        state_interval_s: int = 5,
        block_time_s: float | None = None,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
        niceness: int = 0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.state_path = state_path
        self.state_interval_s = state_interval_s
        self.block_time_s = block_time_s
        self.log_path = log_path
        self.extra_args = extra_args
        self.niceness = niceness
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        # started under `nice`, so every one of its threads runs at that niceness (setpriority on
        # its pid afterwards would reach only its main thread); `nice -n` adds to our own
        increment = self.niceness - os.getpriority(os.PRIO_PROCESS, 0)
        nice = shutil.which("nice") if increment > 0 else None
        command = [
            *([nice, "-n", str(increment)] if nice else []),
            str(anvil_executable()),
            "--host", self.host,
            "--port", str(self.port),
            "--hardfork", HARDFORK,
            "--silent",
        ]  # fmt: skip
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            command += [
                "--state", str(self.state_path),
                "--state-interval", str(self.state_interval_s),
            ]  # fmt: skip
            genesis_timestamp = saved_genesis_timestamp(self.state_path)
            if genesis_timestamp is not None:
                command += ["--timestamp", str(genesis_timestamp)]
        if self.block_time_s is not None:
            command += ["--block-time", str(self.block_time_s)]
        return command + list(self.extra_args)

    def start(self, timeout_s: float = 30.0) -> Web3:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # its own process group, so stop() and kill() reach every process of the node; the child
        # keeps its own descriptor of the log, so ours is closed at once
        if self.log_path is None:
            self.process = subprocess.Popen(
                self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
        else:
            with open(self.log_path, "ab") as output:
                self.process = subprocess.Popen(
                    self.command(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
                )
        w3 = connect(self.url, timeout_s=10)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeError(f"anvil exited with code {self.process.returncode} at start ({self.url})")
            try:
                w3.eth.chain_id  # noqa: B018 - the first answer means it is up
                return w3
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise NodeError(f"anvil did not answer on {self.url} within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT first: anvil then writes its state dump before exiting."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal_group(signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: what a crash or power cut does; the state after the last dump is lost."""
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def _signal_group(self, sent: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sent)

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def fund(w3: Web3, address: str, wei: int = 10**24) -> None:
    """Gives a dev account ether on anvil (its `anvil_setBalance`), so no well-known key is needed."""
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]

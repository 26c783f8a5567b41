"""A second EVM implementation for the tests: Hardhat's node (EDR), from node_modules like anvil.

The write path was only ever run against anvil and eth-tester, and a call object that anvil took
(both `data` and `input`) Hardhat refused. The tests that matter run against both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from web3 import Web3

from provenance.chain.connection import connect
from provenance.chain.node import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
HARDHAT = REPO_ROOT / "node_modules" / ".bin" / "hardhat"
CONFIG = REPO_ROOT / "tools" / "hardhat" / "hardhat.config.js"


class HardhatNode:
    """`hardhat node` on a free port (chain 31337, Prague, automine; its own prefunded accounts)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> Web3:
        if not HARDHAT.exists():
            raise RuntimeError(f"{HARDHAT} is missing: run `npm ci` (`make test` does)")
        environment = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
        self.process = subprocess.Popen(
            [
                str(HARDHAT),
                "--config",
                str(CONFIG),
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        w3 = connect(self.url, timeout_s=10)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hardhat node exited with {self.process.returncode}")
            with contextlib.suppress(Exception):
                w3.eth.chain_id  # noqa: B018 - the first answer means it is up
                return w3
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hardhat node did not answer on {self.url} within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> HardhatNode:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def fund_from_a_dev_account(w3: Web3, address: str, wei: int = 10**21) -> None:
    """Ether for a generated key, sent by the node's first unlocked account (anvil and Hardhat both
    start with prefunded dev accounts; neither's balance-setting call is the other's)."""
    sender = w3.eth.accounts[0]
    tx_hash = w3.eth.send_transaction({"from": sender, "to": Web3.to_checksum_address(address), "value": wei})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def unreachable_web3() -> Web3:
    """A web3 whose node refuses every connection: a port that was free a moment ago."""
    from web3 import HTTPProvider

    return Web3(HTTPProvider(f"http://127.0.0.1:{free_port()}", exception_retry_configuration=None))

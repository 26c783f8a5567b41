"""The embedded node: anvil from node_modules, its chain saved in the data directory by us.

anvil's own persistence (`--state FILE --state-interval N`) is not used, for three reasons found
in its source (foundry 1.7.1, docs/faults.md) and reproduced here:

* its dump reads the blocks, then waits for the state while a block is being mined, so a dump can
  hold the state of a block it does not hold: a SIGKILL later, the restored chain has a lot
  consumed with no event that consumed it (39 of 60 dumps under load, bench/node_kills.py);
* it truncates the file and writes it in place: a kill during the write leaves a torn file;
* a restart loads the blocks but not the clock: the next block's time is the genesis time plus
  the seconds since the start, earlier than the blocks already there.

So `save` pauses mining (the queue of blocks anvil has already begun drained), takes
`anvil_dumpState`, and keeps it only if the head is still the head and the state's root (from
`eth_getProof`) is the head's `stateRoot`, that is, if the state is exactly the blocks' state; then
mining goes on and the snapshot is written durably (`node_snapshots`). `start` restores the newest
snapshot with mining off, checks the root again, sets the clock to the later of now and the head's
time (`evm_setTime`), and only then mines: a block is never earlier than the one before it.

A SIGKILL loses what came after the last save; the transaction outbox re-sends it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_utils.crypto import keccak
from web3 import Web3

from provenance.chain.connection import connect
from provenance.chain.node_calls import HttpNodeCalls
from provenance.chain.node_snapshots import Genesis, Snapshot, SnapshotStore
from provenance.errors import NodeError, NodeStateInconsistent

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
HARDFORK = "prague"
"""Matches the compiler's evmVersion, so the node runs exactly the code we verified."""
ANY_ADDRESS = "0x" + "00" * 20
STILL_S = 0.01
"""How long the head must not move, once mining is paused, before a dump is taken, doubled at
each attempt: anvil goes on mining the blocks it had queued already (hundreds under a flood of
transactions), and the check after the dump refuses a dump that one of them overtook."""
SAVE_ATTEMPTS = 7


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


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on the port (SO_REUSEADDR as anvil binds: the connections of a
    node just killed, waiting out TIME_WAIT, do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@dataclass(frozen=True)
class Restored:
    """Where a start found the chain: the snapshot, its head, and the clock it set."""

    snapshot: str
    block_number: int
    head_timestamp: int
    clock: int


class AnvilNode:
    """Starts anvil (restoring its saved chain), saves it, stops it (saving first), or kills it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        state_dir: Path | None = None,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
        niceness: int = 0,
        die_with_parent: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.snapshots = None if state_dir is None else SnapshotStore(state_dir)
        self.log_path = log_path
        self.extra_args = extra_args
        self.niceness = niceness
        self.die_with_parent = die_with_parent
        """SIGKILL the node when the thread that started it dies (a `serve` killed with SIGKILL
        would otherwise leave its node running, holding the port)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.restored: Restored | None = None
        self._saved_head: str | None = None
        self._saving = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self, *, load: Path | None = None, genesis: Genesis | None = None) -> list[str]:
        # started under `nice`, so every one of its threads runs at that niceness (setpriority on
        # its pid afterwards would reach only its main thread); `nice -n` adds to our own
        increment = self.niceness - os.getpriority(os.PRIO_PROCESS, 0)
        nice = shutil.which("nice") if increment > 0 else None
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        command = [
            *([setpriv, "--pdeathsig", "KILL"] if setpriv else []),
            *([nice, "-n", str(increment)] if nice else []),
            str(anvil_executable()),
            "--host", self.host,
            "--port", str(self.port),
            "--hardfork", HARDFORK,
            "--silent",
        ]  # fmt: skip
        if load is not None:
            # mining waits until the clock is set (`_go_live`); the fresh genesis anvil makes at
            # start is the saved one only with the saved timestamp (else a dump holds two)
            command += ["--load-state", str(load), "--no-mining"]
            if genesis is not None:
                command += ["--timestamp", str(genesis.timestamp)]
        return command + list(self.extra_args)

    # ---------------------------------------------------------------- start, restore

    def start(self, timeout_s: float = 60.0) -> Web3:
        """A fresh chain, or the newest saved one whose state agrees with its blocks.

        NodeError if anvil will not start (its port taken); NodeStateInconsistent if there are
        snapshots and none can be restored."""
        if port_in_use(self.host, self.port):
            raise NodeError(f"port {self.port} is in use: is another node or `serve` running?")
        snapshots = self.snapshots.newest_first() if self.snapshots is not None else []
        if not snapshots:
            return self._launch(self.command(), timeout_s)
        assert self.snapshots is not None
        problems = []
        for snapshot in snapshots:
            try:
                w3 = self._restore(snapshot, timeout_s)
            except NodeError as error:
                problems.append(f"{snapshot.path.name}: {error}")
                log.error("the node's saved chain %s cannot be used: %s", snapshot.path.name, error)
                self.kill()
                continue
            if snapshot is not snapshots[0]:
                moved = self.snapshots.abandon_newer_than(snapshot)
                log.error(
                    "the node was restored from the older %s; set aside: %s",
                    snapshot.path.name,
                    ", ".join(path.name for path in moved),
                )
            if snapshot.sequence < 0:  # the legacy `--state` file: saved our way from now on
                self._saved_head = None
                self.save()
            return w3
        raise NodeStateInconsistent(
            "no saved chain of the embedded node can be restored; writes are stopped until a person "
            f"looks (restore {self.snapshots.directory} from a backup): " + "; ".join(problems)
        )

    def _restore(self, snapshot: Snapshot, timeout_s: float) -> Web3:
        assert self.snapshots is not None
        try:
            state = snapshot.plain_json()
        except (OSError, ValueError) as error:
            raise NodeError(str(error)) from error
        loading = self.snapshots.loading_path()
        loading.write_bytes(state)
        del state
        try:
            w3 = self._launch(self.command(load=loading, genesis=self.snapshots.genesis()), timeout_s)
        finally:
            loading.unlink(missing_ok=True)
        calls = self._calls()
        try:
            head = calls.request("eth_getBlockByNumber", ["latest", False])
            root = _state_root(calls)
            if root != head["stateRoot"]:
                raise NodeStateInconsistent(
                    f"its state (root {root}) is not the state of its newest block "
                    f"{int(head['number'], 16)} (root {head['stateRoot']}): it holds facts without their events"
                )
            self.restored = self._go_live(calls, snapshot, head)
        finally:
            calls.close()
        self._saved_head = head["hash"]
        log.info(
            "node restored from %s: block %d (time %d), clock set to %d",
            snapshot.path.name,
            self.restored.block_number,
            self.restored.head_timestamp,
            self.restored.clock,
        )
        return w3

    def _go_live(self, calls: HttpNodeCalls, snapshot: Snapshot, head: dict[str, Any]) -> Restored:
        """The clock to the later of now and the head's time, then mining on: the first block after
        a restart is never earlier than the last one before it, and follows the wall clock."""
        head_timestamp = int(head["timestamp"], 16)
        clock = max(int(time.time()), head_timestamp)
        calls.request("evm_setTime", [clock])
        calls.request("evm_setAutomine", [True])
        return Restored(snapshot.path.name, int(head["number"], 16), head_timestamp, clock)

    def _launch(self, command: list[str], timeout_s: float) -> Web3:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # its own process group, so stop() and kill() reach every process of the node; the child
        # keeps its own descriptor of the log, so ours is closed at once
        if self.log_path is None:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
        else:
            with open(self.log_path, "ab") as output:
                self.process = subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
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
        self.kill()
        raise NodeError(f"anvil did not answer on {self.url} within {timeout_s:.0f} s")

    # ---------------------------------------------------------------- save

    def save(self) -> Snapshot | None:
        """Saves the chain if its head moved since the last save; returns the snapshot, or None if
        there was nothing new. NodeError if no consistent dump could be taken (the last snapshot
        stays the one a restart uses)."""
        if self.snapshots is None:
            raise NodeError("this node keeps no state (no state_dir)")
        with self._saving:  # serve saves after its first deployment, beside the keeper's saves
            return self._save()

    def _save(self) -> Snapshot | None:
        assert self.snapshots is not None
        calls = self._calls(timeout_s=300.0)
        try:
            latest = calls.request("eth_getBlockByNumber", ["latest", False])
            if latest["hash"] == self._saved_head:
                return None
            self._record_genesis(calls)
            head, dump = self._consistent_dump(calls)
        finally:
            calls.close()
        snapshot = self.snapshots.write(int(head["number"], 16), dump)
        self._saved_head = head["hash"]
        return snapshot

    def _consistent_dump(self, calls: HttpNodeCalls) -> tuple[dict[str, Any], bytes]:
        # mining may be off already (someone paused it for an `anvil_reorg`): then it stays off
        mining = bool(calls.request("anvil_getAutomine", []))
        if mining:
            calls.request("evm_setAutomine", [False])
        try:
            for attempt in range(SAVE_ATTEMPTS):
                head = _still_head(calls, STILL_S * 2**attempt)
                dump = calls.request_bytes("anvil_dumpState", [])
                root = _state_root(calls)  # the state first, then the head: see docs/faults.md
                after = calls.request("eth_getBlockByNumber", ["latest", False])
                if after["hash"] != head["hash"]:
                    continue  # a block anvil had queued was mined during the dump
                if root == after["stateRoot"]:
                    return head, dump
                # the state was changed outside any block (anvil_setBalance funds a new account):
                # seal the change into a block of its own, so that a block's root accounts for it
                calls.request("evm_mine", [])
        finally:
            if mining:
                calls.request("evm_setAutomine", [True])
        raise NodeError(f"no consistent dump of the chain in {SAVE_ATTEMPTS} attempts")

    def _record_genesis(self, calls: HttpNodeCalls) -> None:
        assert self.snapshots is not None
        block = calls.request("eth_getBlockByNumber", ["0x0", False])
        self.snapshots.record_genesis(Genesis(int(block["timestamp"], 16), block["hash"]))

    # ---------------------------------------------------------------- stop, kill

    def stop(self, timeout_s: float = 30.0) -> None:
        """Saves the chain (when it keeps one), then SIGINT; SIGKILL if it does not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.snapshots is not None:
            try:
                self.save()
            except Exception as error:
                log.error("the node's chain could not be saved on stop: %s", error)
        self._signal_group(signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: what a crash or power cut does; the chain after the last save is lost."""
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _calls(self, timeout_s: float = 30.0) -> HttpNodeCalls:
        return HttpNodeCalls(self.url, timeout_s=timeout_s)

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


def _still_head(calls: HttpNodeCalls, still_s: float, timeout_s: float = 10.0) -> dict[str, Any]:
    """The head once it has not moved for `still_s` (mining is paused: anvil is finishing the
    blocks it had queued before)."""
    deadline = time.monotonic() + timeout_s
    head = calls.request("eth_getBlockByNumber", ["latest", False])
    while True:
        time.sleep(still_s)
        again = calls.request("eth_getBlockByNumber", ["latest", False])
        if again["hash"] == head["hash"] or time.monotonic() > deadline:
            return dict(again)
        head = again


def _state_root(calls: HttpNodeCalls) -> str:
    """The root of the state the node holds now: the first node of any account proof is the root
    node of the state trie, and its hash is the root."""
    proof = calls.request("eth_getProof", [ANY_ADDRESS, [], "latest"])
    return "0x" + keccak(bytes.fromhex(proof["accountProof"][0][2:])).hex()


def fund(w3: Web3, address: str, wei: int = 10**24) -> None:
    """Gives a dev account ether on anvil (its `anvil_setBalance`), so no well-known key is needed;
    then mines a block, so that the balance is in a block's state (and in the next save: the node
    keeper saves a chain whose head moved)."""
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

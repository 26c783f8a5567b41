"""`provenance serve`'s embedded node kept alive and saved, like its other children.

One thread of the serve process saves the node's chain every `save_every_s` (when its head moved;
`AnvilNode.save` takes only consistent snapshots) and starts the node again, with back-off, when
it dies: restored from its newest good snapshot, with its clock set from its own head. The outbox
worker re-sends what the node lost, and the indexer follows it back; neither needs to know.

A node whose every snapshot disagrees with its own blocks is not started again: `/health` says so
and why, and nothing is written until a person restores the chain (`NodeStateInconsistent`).

The node is started, saved and stopped from this thread only: it is started with a parent-death
signal, which Linux ties to the thread that started it (not the process), so this thread lives as
long as the node and stops it on its way out, a final save first.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from provenance.chain.node import AnvilNode
from provenance.errors import NodeError, NodeStateInconsistent

log = logging.getLogger("provenance.serve")

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
SAVE_SHARE = 10.0
STEADY_S = 10.0
"""A node that ran this long before it died starts again at the shortest back-off: it was killed
(or crashed) while working, not failing at start. Only a node that dies sooner backs off further."""


@dataclass(frozen=True)
class NodeStatus:
    restarts: int
    last_exit: str | None
    """How the node last died, and when (None: it never has)."""
    saved_block: int | None
    saved_at: float | None
    """Unix time of the last save."""
    save_error: str | None
    """Why the last save failed (None when it succeeded)."""
    halted: str | None
    """Why the node is not being started again (its saved chain is inconsistent)."""
    running: bool


class NodeKeeper:
    def __init__(self, node: AnvilNode, *, save_every_s: float) -> None:
        self.node = node
        self.save_every_s = save_every_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._restarts = 0
        self._last_exit: str | None = None
        self._saved_block: int | None = None
        self._saved_at: float | None = None
        self._save_error: str | None = None
        self._halted: str | None = None

    def status(self) -> NodeStatus:
        with self._lock:
            return NodeStatus(
                restarts=self._restarts,
                last_exit=self._last_exit,
                saved_block=self._saved_block,
                saved_at=self._saved_at,
                save_error=self._save_error,
                halted=self._halted,
                running=self.node.alive(),
            )

    def start(self) -> None:
        """Starts the node (restoring its chain) in the keeper's thread, and returns once it
        answers; raises what `AnvilNode.start` raised, and then keeps nothing running."""
        first: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(first,), name="node-keeper", daemon=True)
        self._thread.start()
        first.result()

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stops the thread, which saves the chain and stops the node on its way out."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self, first: Future[None]) -> None:
        try:
            self.node.start()
        except BaseException as error:
            first.set_exception(error)
            return
        first.set_result(None)
        attempts = 0  # starts since a node last ran for STEADY_S
        started: float | None = time.monotonic()
        next_save = time.monotonic() + self.save_every_s
        try:
            while not self._stopping.wait(0.1):
                if self._halted is not None:
                    continue
                if not self.node.alive():
                    if started is not None and time.monotonic() - started > STEADY_S:
                        attempts = 0
                    started = time.monotonic() if self._restart(attempts) else None
                    attempts += 1
                    continue
                if time.monotonic() >= next_save:
                    began = time.monotonic()
                    self._save()
                    # mining pauses while a dump is taken, and a dump grows with the chain: saving
                    # never takes more than a tenth of the node's time
                    took = time.monotonic() - began
                    next_save = time.monotonic() + max(self.save_every_s, SAVE_SHARE * took)
        finally:
            self.node.stop()

    def _restart(self, attempts: int) -> bool:
        process = self.node.process
        code = process.returncode if process is not None else None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        delay = RESTART_BACKOFF_S[min(attempts, len(RESTART_BACKOFF_S) - 1)]
        if process is not None and process.returncode is not None:
            with self._lock:
                self._last_exit = f"{how} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
            log.error("the embedded node %s; starting it again in %.1f s from its last save", how, delay)
            self.node.process = None  # reported once; a start that fails leaves no process
        else:
            log.warning("starting the embedded node again in %.1f s", delay)
        if self._stopping.wait(delay):
            return False
        try:
            self.node.start()
        except NodeStateInconsistent as error:
            with self._lock:
                self._halted = str(error)
            log.critical("the embedded node is not started again: %s", error)
            return False
        except NodeError as error:
            log.error("the embedded node did not start again: %s", error)
            return False
        with self._lock:
            self._restarts += 1
        restored = self.node.restored
        log.warning(
            "the embedded node is back (restart %d)%s",
            self._restarts,
            f": block {restored.block_number} from {restored.snapshot}, clock {restored.clock}"
            if restored
            else "",
        )
        return True

    def _save(self) -> None:
        try:
            snapshot = self.node.save()
        except Exception as error:
            with self._lock:
                self._save_error = f"{type(error).__name__}: {error}"[:300]
            if self.node.alive():
                log.warning("the embedded node's chain could not be saved: %s", error)
            return
        with self._lock:
            self._save_error = None
            if snapshot is not None:
                self._saved_block = snapshot.block_number
                self._saved_at = time.time()

"""The main job's child processes: the outbox worker, the indexer, and the API's extra processes.

In threads beside the API's request threads they queued for the GIL: each of the worker's many
short database and node calls gives the GIL up and waits to get it back behind 32 busy request
threads, and a step took several times as long as alone (docs/benchmarks.md, "Profiles behind
the code"). In processes they run beside the API, not behind it.

The API process and the worker process keep each other awake over two one-way pipes: the API
says "work" after storing an operation (the idle worker starts at once instead of at its next
poll), and the worker names the operations it made final (a `?wait=true` request answers at once
instead of at its next database poll). Both sides still poll, so a lost message only costs time.

With `PROVENANCE_API_PROCESSES` above one, more API processes accept connections on the listening
socket of serve's own (one port; the kernel gives each connection to one process): one process is
one GIL, and a slow request's Python held up other reads between their database round trips. The
parent relays between them and the worker: an extra process's "work" goes on to the worker, the
worker's finished operations to every API process.

A child that dies is started again (with backoff), like the node or the database failing under a
thread: nothing is lost, the state is in the database. Children ignore SIGINT (Ctrl-C reaches the
whole process group) and stop when the parent says so or its pipe closes (the parent died).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from provenance.config import Settings

if TYPE_CHECKING:
    from provenance.bootstrap import Runtime

log = logging.getLogger("provenance.serve")

STOP = "stop"
WORK = "work"
API_APP = "api.app:served"
"""The API's factory, named by its import string: the package never imports `api` (the API is an
entrypoint that imports the package, not the other way round)."""
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def _child_logging() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def lower_priority(niceness: int, pid: int = 0) -> None:
    """Lets the API's request threads go first when the cores are busy: background work (indexing,
    sending) only has to keep up on average, reads have a latency target. Raising one's own
    niceness needs no privilege; a system that refuses it anyway only logs it."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, max(os.getpriority(os.PRIO_PROCESS, pid), niceness))
    except OSError as error:
        log.warning("could not lower the priority of process %d to niceness %d: %s", pid, niceness, error)


def _listen(inbox: Connection, stop: threading.Event, on_work: Callable[[], None]) -> threading.Thread:
    """Reads the parent's messages until STOP or until the pipe closes (the parent is gone)."""

    def run() -> None:
        while not stop.is_set():
            try:
                message = inbox.recv()
            except (EOFError, OSError):
                break
            if message == STOP:
                break
            if message == WORK:
                on_work()
        stop.set()

    thread = threading.Thread(target=run, name="parent-pipe", daemon=True)
    thread.start()
    return thread


def _fenced(engine: Any, role: str, leadership_token: Callable[[], int | None], settings: Settings) -> None:
    from provenance.index.leases import fence_commits
    from provenance.leadership import holder_name

    fence_commits(engine, role, leadership_token, idle_s=settings.lease_s, holder=holder_name(role))


def release_lease_of(settings: Settings, role: str) -> Callable[[int], None]:
    """For a supervisor: ends the lease of `role` held by a child that exited (a SIGKILL or a
    crash), so that a standby on another replica, or the child started again, leads at once."""
    from provenance.bootstrap import index_engine
    from provenance.index.leases import Leases
    from provenance.leadership import holder_name

    def release(pid: int) -> None:
        engine = index_engine(settings.effective_database_url)
        try:
            if Leases(engine).release_holder(role, holder_name(role, pid)):
                log.info("released the %s lease of exited process %d", role, pid)
        finally:
            engine.dispose()

    return release


def outbox_worker_main(settings: Settings, inbox: Connection, outbox: Connection) -> None:
    """The child process of the outbox worker: it signs and sends only while it holds the lease."""
    _child_logging()
    lower_priority(settings.background_nice)
    from provenance.bootstrap import build_runtime
    from provenance.chain.outbox import OutboxWorker
    from provenance.leadership import OUTBOX_WORKER

    stop = threading.Event()
    term: dict[str, Any] = {}
    sending = threading.Lock()

    def finished(operation_ids: Sequence[str]) -> None:
        with sending, contextlib.suppress(OSError):  # OSError: the parent is gone; the listener stops us
            outbox.send(list(operation_ids))

    def poke() -> None:
        runtime = term.get("runtime")
        if runtime is not None:
            runtime.outbox.signal.poke()

    _listen(inbox, stop, poke)

    def run_term(leading: threading.Event, token: Callable[[], int | None]) -> None:
        runtime = build_runtime(settings)  # afresh each term: nothing cached may outlive the lease
        _fenced(runtime.engine, OUTBOX_WORKER, token, settings)
        runtime.outbox.on_final = finished
        worker = OutboxWorker(
            runtime.outbox, runtime.client, runtime.signer_for, confirmations=settings.confirmations
        )
        term["runtime"] = runtime
        try:
            worker.run(_either(stop, leading))
        finally:
            term.pop("runtime", None)
            worker.close()
            runtime.close()

    _lead_with_token(settings, OUTBOX_WORKER, stop, run_term)


def indexer_main(settings: Settings, inbox: Connection, _outbox: Connection) -> None:
    """The child process of the indexer: it writes the index only while it holds the lease."""
    from provenance.leadership import INDEXER

    def follow(engine: Any, deployment: Any, until: threading.Event) -> None:
        from provenance.bootstrap import node_connection
        from provenance.chain.logsource import RpcLogSource
        from provenance.index.indexer import Indexer

        Indexer(
            engine,
            RpcLogSource(node_connection(settings.effective_rpc_url), deployment.registry),
            deployment,
            confirmations=settings.confirmations,
            identifiers=settings.epcis_identifiers(),
        ).follow(until)

    _lead_over_the_index(settings, inbox, INDEXER, follow)


def deliveries_main(settings: Settings, inbox: Connection, _outbox: Connection) -> None:
    """The child process of outbound deliveries (docs/deliveries.md): it sends only while it holds
    the `deliveries` lease, and every commit of its is fenced by it."""
    from provenance.leadership import DELIVERIES

    def deliver(engine: Any, deployment: Any, until: threading.Event) -> None:
        from provenance.deliveries import build_deliverer

        deliverer = build_deliverer(
            engine, settings, chain_id=deployment.chain_id, registry=deployment.registry
        )
        deliverer.run(until, workers=settings.delivery_workers)

    _lead_over_the_index(settings, inbox, DELIVERIES, deliver)


def _lead_over_the_index(
    settings: Settings,
    inbox: Connection,
    role: str,
    work: Callable[[Any, Any, threading.Event], None],
) -> None:
    """A child that works on the index only while it holds `role`'s lease: for each term, a fresh
    engine whose every commit is fenced by the term's token, and `work(engine, deployment,
    until)` until serve stops it or the lease is lost."""
    _child_logging()
    lower_priority(settings.background_nice)
    from provenance.bootstrap import index_engine, recorded_deployment

    deployment = recorded_deployment(settings.deployment_path)
    stop = threading.Event()
    _listen(inbox, stop, lambda: None)

    def run_term(leading: threading.Event, token: Callable[[], int | None]) -> None:
        engine = index_engine(settings.effective_database_url)
        _fenced(engine, role, token, settings)
        try:
            work(engine, deployment, _either(stop, leading))
        finally:
            engine.dispose()

    _lead_with_token(settings, role, stop, run_term)


def listen_for_api(settings: Settings) -> socket.socket:
    """The API's listening socket, bound by serve before any API process starts and shared by all
    of them. A port in use is an OSError here, before anything else is started."""
    return socket.create_server((settings.api_host, settings.api_port), backlog=2048)


def api_server(runtime: Runtime, *, signals: bool = True) -> Any:
    """The uvicorn server of one API process. `signals=False` in an extra process: it stops when
    serve says so over its pipe, not on the Ctrl-C that reaches the whole process group."""
    import uvicorn
    from uvicorn.importer import import_from_string

    class PipeStoppedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    server_class = uvicorn.Server if signals else PipeStoppedServer
    served = import_from_string(API_APP)
    return server_class(uvicorn.Config(partial(served, runtime), factory=True, log_level="warning"))


def api_main(settings: Settings, inbox: Connection, outbox: Connection, listener: socket.socket) -> None:
    """An extra API process: it answers on `listener`, tells serve when it stored an operation (for
    the worker), and wakes its `?wait=true` requests when serve relays the worker's finished ones."""
    _child_logging()
    from provenance.bootstrap import build_runtime

    runtime = build_runtime(settings)
    server = api_server(runtime, signals=False)
    stored = threading.Event()
    runtime.outbox.on_submit = stored.set  # request threads only set an event (see Child.nudge)

    def tell_parent() -> None:
        while not server.should_exit:
            if stored.wait(timeout=1.0):
                stored.clear()
                try:
                    outbox.send(WORK)
                except OSError:  # the parent is gone; its pipe's end stops us below
                    return

    def listen() -> None:
        while True:
            try:
                message = inbox.recv()
            except (EOFError, OSError):
                break
            if message == STOP:
                break
            if isinstance(message, list):
                runtime.outbox.signal.wake(message)
        server.should_exit = True

    threading.Thread(target=tell_parent, name="to-parent", daemon=True).start()
    threading.Thread(target=listen, name="parent-pipe", daemon=True).start()
    try:
        server.run(sockets=[listener])
    finally:
        runtime.close()


def _lead_with_token(
    settings: Settings,
    role: str,
    stop: threading.Event,
    run_term: Callable[[threading.Event, Callable[[], int | None]], None],
) -> None:
    from provenance.bootstrap import index_engine
    from provenance.index.leases import Leases
    from provenance.leadership import Leadership

    lease_engine = index_engine(settings.effective_database_url)
    leadership = Leadership(Leases(lease_engine), role, ttl_s=settings.lease_s)
    try:
        leadership.run(stop, lambda leading: run_term(leading, lambda: leadership.token))
    finally:
        lease_engine.dispose()


def _either(first: threading.Event, second: threading.Event) -> threading.Event:
    """An event set as soon as either is (the loops of the indexer and the worker take one)."""
    both = threading.Event()

    def watch() -> None:
        while not both.is_set():
            if first.wait(0.1) or second.is_set():
                both.set()

    threading.Thread(target=watch, name="stop-or-lease-lost", daemon=True).start()
    return both


@dataclass
class Child:
    """One supervised child process and the pipes to it."""

    name: str
    main: Callable[..., None]
    """Called as main(settings, inbox, outbox, *args) in the child."""
    settings: Settings
    args: tuple[Any, ...] = ()
    """More arguments of `main`, pickled for the child (a socket is passed as a duplicate)."""
    on_message: Callable[[Any], None] = lambda _message: None
    on_exit: Callable[[int], None] = lambda _pid: None
    """Told the pid of the child that exited (its lease can be released at once)."""
    process: BaseProcess | None = None
    _to_child: Connection | None = None
    _from_child: Connection | None = None
    _sending: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _nudged: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        child_in, self._to_child = context.Pipe(duplex=False)
        self._from_child, child_out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=self.main,
            args=(self.settings, child_in, child_out, *self.args),
            name=self.name,
            daemon=True,
        )
        self.process.start()
        child_in.close()
        child_out.close()
        threading.Thread(
            target=self._read, args=(self._from_child,), name=f"{self.name}-pipe", daemon=True
        ).start()

    def send(self, message: Any) -> None:
        """Best effort: a child that is restarting misses the message and finds the work by polling."""
        with self._sending:
            self._send(message)

    def nudge(self) -> None:
        """Asks for one WORK message to be sent soon; nudges while one is being sent merge into the
        next. Request threads only set an event: many of them writing to one pipe cost the API
        dearly, and the child needs only to know that there is *something* new."""
        self._nudged.set()

    def _nudger(self) -> None:
        while not self._stopping.is_set():
            if self._nudged.wait(timeout=1.0):
                self._nudged.clear()
                self.send(WORK)

    def _send(self, message: Any) -> None:
        if self._to_child is None:
            return
        with contextlib.suppress(OSError):
            self._to_child.send(message)

    def _read(self, pipe: Connection) -> None:
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                return
            try:
                self.on_message(message)
            except Exception:
                log.exception("%s: a message from the child could not be handled", self.name)

    def supervise(self) -> threading.Thread:
        """Starts the child and keeps it running until `stop`."""

        def run() -> None:
            failures = 0
            while not self._stopping.is_set():
                self.start()
                started = time.monotonic()
                assert self.process is not None
                while self.process.is_alive() and not self._stopping.is_set():
                    self.process.join(timeout=0.5)
                if self.process.pid is not None and not self.process.is_alive():
                    try:
                        self.on_exit(self.process.pid)
                    except Exception as error:  # the lease ends by itself anyway
                        log.warning("%s: after its exit: %s", self.name, error)
                if self._stopping.is_set():
                    return
                failures = 0 if time.monotonic() - started > 60 else failures + 1
                delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
                log.error(
                    "%s exited with code %s; starting it again in %.0f s (the API keeps serving)",
                    self.name,
                    self.process.exitcode,
                    delay,
                )
                self._stopping.wait(delay)

        thread = threading.Thread(target=run, name=f"{self.name}-supervisor", daemon=True)
        thread.start()
        threading.Thread(target=self._nudger, name=f"{self.name}-nudger", daemon=True).start()
        return thread

    def stop(self, timeout_s: float = 30.0) -> None:
        """Asks the child to finish its step and exit; kills it if it does not within `timeout_s`."""
        self._stopping.set()
        self.send(STOP)
        process = self.process
        if process is None:
            return
        process.join(timeout=timeout_s)
        if process.is_alive():
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout_s)
            process.kill()
            process.join(timeout=30)

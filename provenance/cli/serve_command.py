"""`provenance serve`: the main job in one process.

With no PROVENANCE_RPC_URL it starts the embedded anvil node (its chain kept in the data
directory), deploys the registry on first start, migrates the SQLite index, and creates and prints
an admin API token on first start. Then it runs the indexer and the outbox worker, each in a child
process of its own (`provenance.background`: in threads they queued behind the API's for the GIL),
and serves the API. Ctrl-C stops all of it; the node saves its chain on the way out.

`--only` runs a part (api, indexer, worker) as one of a set of replicas on one chain and one
PostgreSQL: API replicas are stateless, and the indexer and the worker run only while they hold
their lease (`provenance.leadership`), so any number of replicas may offer them.

`PROVENANCE_API_PROCESSES` above one runs more API processes on the same port, as children
(`provenance.background.api_main`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance.background import Child
    from provenance.config import Settings

log = logging.getLogger("provenance.serve")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _record_pids(path: Path, children: list[Child], node_pid: Callable[[], int | None]) -> None:
    """Keeps `path` naming this process and each child's current pid, rewritten after a restart: read
    by operators and by the fault tests (tests/faults) to kill one process on purpose."""

    def run() -> None:
        written: dict[str, int] = {}
        while True:
            node = node_pid()
            pids = {"serve": os.getpid()} | ({"node": node} if node is not None else {})
            for child in children:
                if child.process is not None and child.process.pid is not None:
                    pids[child.name] = child.process.pid
            if pids != written:
                with contextlib.suppress(OSError):
                    temporary = path.with_suffix(".tmp")
                    temporary.write_text(json.dumps(pids), encoding="utf-8")
                    temporary.replace(path)
                    written = pids
            time.sleep(0.2)

    threading.Thread(target=run, name="pids-file", daemon=True).start()


def start_lines(settings: Settings) -> list[str]:
    """What serve says once the API answers: where, the pages for people, and a warning when the
    QR codes printed for lots would point at a host only this machine can reach."""
    base = f"http://{settings.api_host}:{settings.api_port}"
    processes = f", {settings.api_processes} processes" if settings.api_processes > 1 else ""
    lines = [
        f"buyer's page of a lot: {base}/lots/LOT-ID (its QR code: {base}/lots/LOT-ID/qr.svg)",
        f"site manager's month: {base}/sites/SITE?period=YYYY-MM",
    ]
    if not settings.public_url:
        lines.append(
            "warning: PROVENANCE_PUBLIC_URL is unset, so a lot's QR code points at the host its page "
            f"was opened from (here {base}), which a phone at the mine gate cannot reach; set it to "
            "the public address (https://...) before printing codes"
        )
    return [*lines, f"API on {base} (docs at {base}/docs{processes}); Ctrl-C stops"]


PARTS = ("api", "indexer", "worker", "deliveries")


def _parts(only: list[str] | None) -> frozenset[str]:
    if not only:
        return frozenset(PARTS)
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        _fail(f"--only: unknown part {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    return frozenset(only)


def serve(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only this part (api, indexer, worker or deliveries; repeat for more) so that each "
            "runs on its own host: replicas on one PostgreSQL elect one indexer, one worker and one "
            "deliverer. Needs "
            "PROVENANCE_RPC_URL, a deployment record and a migrated database.",
        ),
    ] = None,
) -> None:
    """Run the main job: node (embedded unless PROVENANCE_RPC_URL is set), indexer, outbox worker, deliveries and API."""
    from provenance.background import (
        WORK,
        Child,
        api_main,
        api_server,
        deliveries_main,
        indexer_main,
        listen_for_api,
        outbox_worker_main,
        release_lease_of,
    )
    from provenance.bootstrap import (
        admin_account,
        build_runtime,
        embedded_node,
        ensure_deployment,
        first_admin_token,
        node_connection,
    )
    from provenance.config import Settings
    from provenance.index.db import upgrade
    from provenance.index.wakeups import WakeupListener
    from provenance.leadership import DELIVERIES, INDEXER, OUTBOX_WORKER
    from provenance.node_keeper import NodeKeeper

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    parts = _parts(only)
    settings = Settings()
    replica = parts != frozenset(PARTS)
    if replica and settings.embedded:
        _fail("--only runs a part of a set of replicas: set PROVENANCE_RPC_URL to the chain they share")
    if replica and not settings.deployment_path.exists():
        _fail(
            f"--only needs the deployment record {settings.deployment_path}: deploy once "
            "(`provenance deploy`) and give every replica the same record"
        )
    node = embedded_node(settings) if settings.embedded else None
    keeper = NodeKeeper(node, save_every_s=settings.node_state_interval_s) if node else None
    node_running = False
    children: list[Child] = []
    wakeups: WakeupListener | None = None
    try:
        if keeper is not None:
            keeper.start()  # the node restored and live, or an error that says why not
            node_running = True
        w3 = node_connection(node.url if node else settings.effective_rpc_url)
        if not w3.is_connected():
            _fail(f"no node answers at {settings.effective_rpc_url}")
        admin = admin_account(settings)
        deployment, created = ensure_deployment(settings, w3, admin)
        if created and node is not None:
            node.save()  # a crash before the keeper's first save would lose the registry
        if settings.database_url is None:
            upgrade(settings.effective_database_url)  # the embedded SQLite index migrates itself
        runtime = build_runtime(settings, w3=w3)
        runtime.node_keeper = keeper
        token = first_admin_token(runtime, admin) if "api" in parts else None

        where = f"embedded anvil at {node.url}" if node else settings.effective_rpc_url
        typer.echo(f"chain {deployment.chain_id} via {where}")
        typer.echo(f"registry {deployment.registry} ({'deployed now' if created else 'deployed earlier'})")
        typer.echo(f"data in {settings.data_dir.resolve()}")
        if replica:
            typer.echo(f"running {', '.join(part for part in PARTS if part in parts)} (--only)")
        if token is not None:
            typer.echo(f"admin API token (shown once, keep it): {token}")

        if "indexer" in parts:
            children.append(
                Child("indexer", indexer_main, settings, on_exit=release_lease_of(settings, INDEXER))
            )
        if "deliveries" in parts:
            children.append(
                Child("deliveries", deliveries_main, settings, on_exit=release_lease_of(settings, DELIVERIES))
            )
        listener = listen_for_api(settings) if "api" in parts else None
        more_apis = [
            Child(f"api-{number}", api_main, settings, args=(listener,))
            for number in range(2, settings.api_processes + 1)
            if listener is not None
        ]

        def finished(operation_ids: Sequence[str]) -> None:
            runtime.outbox.signal.wake(operation_ids)
            for api in more_apis:
                api.send(list(operation_ids))

        if "worker" in parts:
            worker = Child(
                "outbox-worker",
                outbox_worker_main,
                settings,
                on_message=finished,
                on_exit=release_lease_of(settings, OUTBOX_WORKER),
            )
            runtime.outbox.on_submit = worker.nudge
            for api in more_apis:
                api.on_message = lambda message: worker.nudge() if message == WORK else None
            children.append(worker)
        children.extend(more_apis)
        if runtime.engine.dialect.name == "postgresql":  # replicas on other hosts wake this one
            wakeups = WakeupListener(
                runtime.engine,
                origin=settings.origin,
                on_work=worker.nudge if "worker" in parts else None,
                on_final=finished,
            ).start()
        for child in children:
            child.supervise()
        _record_pids(
            settings.data_dir / "pids.json",
            children,
            lambda: node.process.pid if node is not None and node.process is not None else None,
        )
        if listener is None:
            typer.echo("no API in this replica; Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            return
        for line in start_lines(settings):
            typer.echo(line)
        with contextlib.suppress(KeyboardInterrupt):
            api_server(runtime).run(sockets=[listener])
    except (ProvenanceError, OSError) as error:
        log.debug("serve failed", exc_info=True)
        _fail(str(error))
    finally:
        if wakeups is not None:
            wakeups.stop()
        for child in children:
            child.stop()
        if keeper is not None and node_running:
            keeper.stop()
            typer.echo("node stopped, chain saved")

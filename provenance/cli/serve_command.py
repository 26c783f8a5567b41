"""`provenance serve`: the main job in one process.

With no PROVENANCE_RPC_URL it starts the embedded anvil node (its chain kept in the data
directory), deploys the registry on first start, migrates the SQLite index, and creates and prints
an admin API token on first start. Then it runs the indexer and the outbox worker in threads and
serves the API. Ctrl-C stops all of it; the node saves its chain on the way out.

The API is named to uvicorn by its import string: the package never imports `api` (the API is an
entrypoint that imports the package, not the other way round).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import NoReturn

import typer

from provenance.errors import ProvenanceError

log = logging.getLogger("provenance.serve")

API_FACTORY = "api.app:from_environment"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def serve() -> None:
    """Run the main job: node (embedded unless PROVENANCE_RPC_URL is set), indexer, outbox worker and API."""
    import uvicorn

    from provenance.bootstrap import (
        admin_account,
        build_services,
        connect,
        embedded_node,
        ensure_deployment,
        first_admin_token,
    )
    from provenance.chain.logsource import RpcLogSource
    from provenance.chain.outbox import OutboxWorker
    from provenance.config import Settings
    from provenance.index.db import upgrade
    from provenance.index.indexer import Indexer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = Settings()
    node = embedded_node(settings) if settings.embedded else None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        w3 = node.start() if node else connect(settings.effective_rpc_url)
        if not w3.is_connected():
            _fail(f"no node answers at {settings.effective_rpc_url}")
        admin = admin_account(settings)
        deployment, created = ensure_deployment(settings, w3, admin)
        if settings.database_url is None:
            upgrade(settings.effective_database_url)  # the embedded SQLite index migrates itself
        services = build_services(settings, w3=w3)
        token = first_admin_token(services, admin)

        where = f"embedded anvil at {node.url}" if node else settings.effective_rpc_url
        typer.echo(f"chain {deployment.chain_id} via {where}")
        typer.echo(f"registry {deployment.registry} ({'deployed now' if created else 'deployed earlier'})")
        typer.echo(f"data in {settings.data_dir.resolve()}")
        if token is not None:
            typer.echo(f"admin API token (shown once, keep it): {token}")

        indexer = Indexer(
            services.engine,
            RpcLogSource(connect(settings.effective_rpc_url), deployment.registry),
            deployment,
            confirmations=settings.confirmations,
        )
        worker = OutboxWorker(
            services.outbox, services.client, services.signer_for, confirmations=settings.confirmations
        )
        threads = [
            _supervised("indexer", lambda: indexer.follow(stop), stop),
            _supervised("outbox-worker", lambda: worker.run(stop), stop),
        ]
        for thread in threads:
            thread.start()
        typer.echo(f"API on http://{settings.api_host}:{settings.api_port} (docs at /docs); Ctrl-C stops")
        server = uvicorn.Server(
            uvicorn.Config(
                API_FACTORY, factory=True, host=settings.api_host, port=settings.api_port, log_level="warning"
            )
        )
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if node:
            node.stop()
            typer.echo("node stopped, chain saved")


def _supervised(name: str, body: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """Runs `body` in a thread; a crash is logged loudly and the rest keeps serving (reads, health)."""

    def run() -> None:
        try:
            body()
        except Exception:
            if not stop.is_set():
                log.exception("%s stopped on an error; the API keeps serving, /health shows the lag", name)

    return threading.Thread(target=run, name=name, daemon=True)

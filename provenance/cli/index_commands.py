"""`provenance db upgrade` and `provenance index`: the schema, and the indexer that fills it."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, NoReturn

import typer

from provenance.domain.blocks import Confirmations, parse_confirmations
from provenance.errors import DomainError, ProvenanceError

db_app = typer.Typer(help="The index database: schema migrations, and moving it.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _confirmations(value: str | None, default: Confirmations) -> Confirmations:
    if value is None:
        return default
    try:
        return parse_confirmations(value, "--confirmations")
    except DomainError as error:
        raise typer.BadParameter(error.message, param_hint="--confirmations") from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the index schema, or bring it to this version's newest migration."""
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.index.db import describe, upgrade

    settings = Settings()
    url = settings.effective_database_url
    try:
        upgrade(url)
    except ProvenanceError as error:
        _fail(str(error))
    typer.echo(f"index database {describe(index_engine(url))} is at the newest schema")


@db_app.command("move")
def db_move(
    to: Annotated[
        str,
        typer.Option(
            help="The empty database to move into, e.g. postgresql+psycopg://USER@HOST:5432/NAME "
            "or sqlite:///PATH (created and migrated here)."
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="The database to move from (default: PROVENANCE_DATABASE_URL, else the data directory's SQLite).",
        ),
    ] = None,
) -> None:
    """Copy everything (credentials, the outbox, the index) into another database, all or nothing.

    Stop every `provenance serve` on the database first; afterwards set PROVENANCE_DATABASE_URL
    to the new one. API tokens issued before keep working there."""
    from provenance.config import Settings
    from provenance.index.move import move_database

    settings = Settings()
    try:
        moved = move_database(source or settings.effective_database_url, to)
    except ProvenanceError as error:
        _fail(str(error))
    typer.echo(f"moved {moved.total:,} rows from {moved.source} to {moved.target}:")
    for table, rows in moved.rows.items():
        if rows:
            typer.echo(f"  {table}: {rows:,}")
    typer.echo("now set PROVENANCE_DATABASE_URL to the new database (the old one is left as it was)")


def index(
    once: Annotated[
        bool, typer.Option("--once", help="Stop after catching up instead of following new blocks.")
    ] = False,
    confirmations: Annotated[
        str | None,
        typer.Option(
            help="Blocks to stay behind the head, or `finalized` (default: PROVENANCE_CONFIRMATIONS)."
        ),
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between polls for new blocks.", min=0.05)] = 1.0,
) -> None:
    """Index the registry's events into the SQL index: backfill, then follow new blocks until Ctrl-C."""
    from provenance.bootstrap import index_engine, node_connection, recorded_deployment
    from provenance.chain.logsource import RpcLogSource
    from provenance.cli.progress import ProgressReport
    from provenance.config import Settings
    from provenance.index.db import check_current, describe
    from provenance.index.indexer import Indexer

    settings = Settings()
    depth = _confirmations(confirmations, settings.confirmations)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = threading.Event()
    try:
        deployment = recorded_deployment(settings.deployment_path)
        engine = index_engine(settings.effective_database_url)
        check_current(engine)
        w3 = node_connection(settings.effective_rpc_url)
        if not w3.is_connected():
            _fail(f"no node answers at {settings.effective_rpc_url}")
        deployment.check_against(w3)
        indexer = Indexer(
            engine,
            RpcLogSource(w3, deployment.registry),
            deployment,
            confirmations=depth,
            identifiers=settings.epcis_identifiers(),
        )
        for caught in (signal.SIGINT, signal.SIGTERM):
            signal.signal(caught, lambda *_: stop.set())
        with ProgressReport() as report:
            result = indexer.sync(stop, lambda done, total: report("backfill", done, total, "blocks"))
        typer.echo(
            f"indexed {result.blocks} blocks and {result.events} events into {describe(engine)}; "
            f"cursor at block {result.head}" + (f" ({result.reorgs} reorgs undone)" if result.reorgs else "")
        )
        if once or stop.is_set():
            return
        typer.echo("following new blocks; Ctrl-C stops")
        indexer.follow(stop)
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    typer.echo("stopped")

"""`provenance audit [--rpc URL] [--registry ADDRESS] [--database URL] [--report FILE]`: an
auditor's replay of the whole registry from the chain alone (see provenance/audit/service.py,
docs/audit.md). Left out, the three default to the data directory's deployment record and the
settings (`chain_defaults`).

Exit status: 0 when everything agrees, 1 on any discrepancy (the summary and the report name each
one), 2 for bad arguments, an unreachable node, no registry at the address or an unreadable index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from provenance.cli.chain_defaults import RegistryOption, RpcOption
from provenance.errors import ProvenanceError


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def audit(
    rpc: RpcOption = None,
    registry: RegistryOption = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="The live index to check, as a SQLAlchemy URL: postgresql+psycopg://USER@HOST:5432/NAME "
            "or sqlite:///PATH. Default: the configured index, when there is one; without any, the "
            "index comparison is left out."
        ),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the full JSON report to this file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines on stderr.")] = False,
) -> None:
    """Rebuild the index from the chain alone, re-check every rule, compare the live index and lotState."""
    from provenance.audit.report import summary
    from provenance.audit.service import audit as run_audit
    from provenance.bootstrap import node_connection
    from provenance.chain.connection import is_address
    from provenance.cli.chain_defaults import default_database, resolve_chain_target
    from provenance.cli.progress import ProgressReport
    from provenance.config import Settings

    target = resolve_chain_target(rpc, registry, announce=not quiet)
    rpc, registry = target.rpc, target.registry
    database, database_defaulted = default_database(database)
    if database_defaulted and not quiet:
        typer.echo("comparing the configured index with the chain", err=True)
    if not is_address(registry):
        _fail(f"--registry: {registry!r} is not an address")
    if report is not None and not report.parent.is_dir():
        _fail(f"--report: the folder {report.parent} does not exist")
    w3 = node_connection(rpc, timeout_s=60.0)
    try:
        if not w3.is_connected():
            _fail(f"--rpc: no node answers at {rpc}")
        with ProgressReport(terminal=False if quiet else None) as shown:
            result = run_audit(
                w3,
                registry,
                database_url=database,
                identifiers=Settings().epcis_identifiers(),
                progress=None
                if quiet
                else lambda phase, done, total: shown(phase, done, total, _unit(phase)),
            )
    except ProvenanceError as error:
        _fail(str(error))
    if report is not None:
        report.write_text(result.to_json(), encoding="utf-8")
    typer.echo(summary(result))
    if report is not None:
        typer.echo(f"report written to {report}")
    raise typer.Exit(0 if result.ok else 1)


def _unit(phase: str) -> str:
    return "blocks" if phase == "rebuild" else "lots"

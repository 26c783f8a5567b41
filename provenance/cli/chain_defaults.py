"""Where the chain tools (`audit`, `verify`, `verify-contract`) look when `--rpc`, `--registry` or
`--database` is left out: the data directory's deployment record and the settings, as `serve`
uses them. An auditor who trusts nothing of the operator's names all three; an operator on the
mine's own machine need not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from provenance.config import Settings
from provenance.errors import ConfigurationError

RpcOption = Annotated[
    str | None,
    typer.Option("--rpc", help="JSON-RPC URL of a node you trust (your own). Default: the configured node."),
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry", help="Address of the OreLotRegistry. Default: the data directory's deployment record."
    ),
]


@dataclass(frozen=True)
class ChainTarget:
    rpc: str
    registry: str
    from_block: int
    defaulted: tuple[str, ...]
    """The options that came from the deployment record or the settings, for the line that says so."""
    record: str
    """The deployment record looked at."""

    def said(self) -> str | None:
        parts = []
        if "--registry" in self.defaulted:
            parts.append(f"the registry {self.registry} of {self.record}")
        if "--rpc" in self.defaulted:
            parts.append(f"the configured node {self.rpc}")
        return "using " + " and ".join(parts) if parts else None


def chain_target(rpc: str | None, registry: str | None) -> ChainTarget:
    """ConfigurationError naming the option when it is missing and nothing records it."""
    from provenance.bootstrap import recorded_deployment

    settings = Settings()
    deployment = recorded_deployment(settings.deployment_path) if settings.deployment_path.exists() else None
    defaulted: list[str] = []
    if registry is None:
        if deployment is None:
            raise ConfigurationError(
                f"--registry: give the registry's address (no deployment record in {settings.data_dir})"
            )
        registry = deployment.registry
        defaulted.append("--registry")
    if rpc is None:
        if deployment is None:
            raise ConfigurationError(
                f"--rpc: give a node's URL (no deployment record in {settings.data_dir})"
            )
        rpc = settings.effective_rpc_url
        defaulted.append("--rpc")
    from_block = (
        deployment.block_number if deployment and deployment.registry.lower() == registry.lower() else 0
    )
    return ChainTarget(rpc, registry, from_block, tuple(defaulted), str(settings.deployment_path))


def default_database(database: str | None) -> tuple[str | None, bool]:
    """The index to compare: the one given, else the configured one when it exists (the SQLite file
    of the data directory only once `serve` has made it). Returns it and whether it was defaulted."""
    if database is not None:
        return database, False
    settings = Settings()
    if settings.database_url is not None:
        return settings.database_url, True
    path = settings.data_dir / "index.sqlite3"
    return (settings.effective_database_url, True) if path.exists() else (None, False)


def resolve_chain_target(rpc: str | None, registry: str | None, *, announce: bool = True) -> ChainTarget:
    """`chain_target` for a command: a missing option is one line on stderr and exit 2; what was
    defaulted is said on stderr (stdout stays the command's answer)."""
    try:
        target = chain_target(rpc, registry)
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    said = target.said()
    if announce and said is not None:
        typer.echo(said, err=True)
    return target

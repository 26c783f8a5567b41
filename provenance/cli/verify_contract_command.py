"""`provenance verify-contract [--rpc URL] [--registry ADDRESS]`: is the code at the address what the
committed sources compile to? (provenance/chain/bytecode.py)

Exit status: 0 for a full match (these exact sources, metadata included); 1 for a partial match
(the same executable code from sources that differ only in metadata: comments, whitespace, file
names) and for a mismatch, because only a full match proves which sources were deployed; 2 for bad
arguments, an unreachable node, no contract at the address or no usable compiler.
"""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer

from provenance.cli.chain_defaults import RegistryOption, RpcOption
from provenance.errors import ProvenanceError


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def verify_contract(
    rpc: RpcOption = None,
    registry: RegistryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")] = False,
) -> None:
    """Recompile the committed sources with the recorded compiler and compare with the deployed code."""
    from provenance.bootstrap import node_connection
    from provenance.chain.bytecode import verify_contract as run
    from provenance.chain.connection import is_address
    from provenance.cli.chain_defaults import resolve_chain_target

    target = resolve_chain_target(rpc, registry, announce=not as_json)
    rpc, registry = target.rpc, target.registry
    if not is_address(registry):
        _fail(f"--registry: {registry!r} is not an address")
    w3 = node_connection(rpc, timeout_s=30.0)
    try:
        if not w3.is_connected():
            _fail(f"--rpc: no node answers at {rpc}")
        result = run(w3, registry)
    except ProvenanceError as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        typer.echo(
            f"{result.registry} on chain {result.chain_id}: {result.verdict.upper()} match"
            if result.verdict != "mismatch"
            else f"{result.registry} on chain {result.chain_id}: MISMATCH"
        )
        typer.echo(
            f"compiled by solc {result.compiler_version} (evm {result.settings.get('evmVersion')}, optimizer runs "
            f"{result.settings.get('optimizer', {}).get('runs')}, viaIR {result.settings.get('viaIR')}); input sha256 "
            f"{result.input_sha256[:16]}…"
        )
        typer.echo(
            f"code: {result.code_bytes} bytes on chain, {result.compiled_bytes} compiled; "
            f"{result.immutables_masked} immutable ranges masked"
        )
        typer.echo(
            f"metadata on chain {result.metadata_on_chain[:24]}…, compiled {result.metadata_compiled[:24]}…"
        )
        for note in result.notes:
            typer.echo(note)
    raise typer.Exit(0 if result.verdict == "full" else 1)

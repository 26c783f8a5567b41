"""`provenance verify LOT [--rpc URL] [--registry ADDRESS]`: a lot and its lineage checked against the chain
alone, with no index and no API: what a buyer runs against their own node.

Exit status: 0 verified, 1 failed (the report names each difference), 2 bad arguments, an
unreachable node, no registry at the address, or a lot the chain does not know.
"""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer

from provenance.cli.chain_defaults import RegistryOption, RpcOption
from provenance.errors import ProvenanceError
from provenance.verification.model import DEFAULT_MAX_LOTS, Status, Verification, verification_dict
from provenance.wording import counted


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def verify(
    lot: Annotated[str, typer.Argument(help="The lot id to verify.")],
    rpc: RpcOption = None,
    registry: RegistryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")] = False,
    max_lots: Annotated[
        int, typer.Option(min=1, help="Stop walking the lineage after this many lots (and say so).")
    ] = DEFAULT_MAX_LOTS,
    from_block: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Read logs from this block on. Default: the recorded deployment block, else 0.",
        ),
    ] = None,
) -> None:
    """Verify a lot and its whole lineage from the chain alone: events, state, mass, lab signatures."""
    from provenance.bootstrap import node_connection
    from provenance.chain.connection import is_address
    from provenance.chain.reader import ChainReader
    from provenance.cli.chain_defaults import resolve_chain_target
    from provenance.domain.values import encode_label
    from provenance.verification.service import verify_on_chain

    try:
        encode_label(lot, "LOT")
    except ProvenanceError as error:
        _fail(str(error))
    target = resolve_chain_target(rpc, registry, announce=not as_json)
    rpc, registry = target.rpc, target.registry
    if from_block is None:
        from_block = target.from_block
    if not is_address(registry):
        _fail(f"--registry: {registry!r} is not an address")
    try:
        reader = ChainReader(node_connection(rpc, timeout_s=10.0), registry)
        if not reader.has_code():
            _fail(f"--registry: no contract at {registry} on the node at {rpc}")
        verification = verify_on_chain(reader, lot, max_lots=max_lots, from_block=from_block)
    except ProvenanceError as error:
        _fail(f"--rpc: {error}")
    if verification is None:
        _fail(f"LOT: the registry at {registry} has no lot {lot!r}")
    if as_json:
        typer.echo(json.dumps(verification_dict(verification), indent=1))
    else:
        typer.echo(report(verification))
    raise typer.Exit(0 if verification.verdict.value == "verified" else 1)


def report(verification: Verification) -> str:
    """A human report: the verdict, what was walked, then each failed fact, then the checks."""
    v = verification
    lines = [
        f"lot {v.lot_id}: {v.verdict.value.upper()}",
        f"chain {v.chain_id}, registry {v.registry}, read at block {v.block_number}",
        f"lineage: {counted(len(v.lots_checked), 'lot')} checked: {', '.join(v.lots_checked)}",
    ]
    if v.bound_hit:
        lines.append(f"WARNING: stopped at --max-lots {v.max_lots}; older lineage was not checked")
    if v.differences:
        lines.append("differences:")
        for d in v.differences:
            where = (
                f" (block {d.where.block_number}, tx {d.where.tx_hash}, log {d.where.log_index})"
                if d.where
                else ""
            )
            lines.append(
                f"  {d.lot_id} {d.event} {d.field}: expected {d.index_value!r}, chain says {d.chain_value!r}{where}"
            )
    passed = sum(1 for check in v.checks if check.status is Status.PASS)
    lines.append(f"checks: {passed} passed, {len(v.checks) - passed} failed")
    for check in v.checks:
        where = (
            f" [block {check.where.block_number} tx {check.where.tx_hash[:12]}… log {check.where.log_index}]"
            if check.where
            else ""
        )
        lines.append(
            f"  {check.status.value:4} {check.name:22} {check.lot_id}{where} {check.detail}".rstrip()
        )
    return "\n".join(lines)

"""The `provenance` command. Bad arguments exit 2 with a message, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperOption

from provenance.cli.accounts_commands import accounts_app
from provenance.cli.audit_command import audit
from provenance.cli.deliveries_commands import deliveries_app
from provenance.cli.fleet_commands import devices_app, ingest_app, simulate_app
from provenance.cli.hub_commands import hub_app
from provenance.cli.index_commands import db_app, index
from provenance.cli.outbox_commands import outbox_app
from provenance.cli.records_commands import corrections_app, stock_app
from provenance.cli.report_commands import report_app
from provenance.cli.serve_command import serve
from provenance.cli.verify_command import verify
from provenance.cli.verify_contract_command import verify_contract
from provenance.errors import ProvenanceError


def _flags_without_a_type(option: TyperOption, ctx: Any) -> str | None:
    """typer 0.29's rich help labels every flag `<bool>` (its plain help does not): a flag takes no
    value, so it shows none."""
    return None if option.is_flag else _typed(option, ctx)


_typed = TyperOption.display_type_rich
TyperOption.display_type_rich = _flags_without_a_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    help="Provenance of ore lots on chain: compile, deploy, serve, index, verify, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",  # a docstring's line breaks are not the help's: paragraphs flow
)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(report_app, name="report")
app.add_typer(simulate_app, name="simulate")
app.add_typer(devices_app, name="devices")
app.add_typer(ingest_app, name="ingest")
app.add_typer(outbox_app, name="outbox")
app.add_typer(corrections_app, name="corrections")
app.add_typer(stock_app, name="stock")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(hub_app, name="hub")
app.command()(index)
app.command()(serve)
app.command()(verify)
app.command()(audit)
app.command("verify-contract")(verify_contract)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def compile(
    check: Annotated[bool, typer.Option(help="Only check that the committed artifacts are fresh.")] = False,
) -> None:
    """Compile contracts/ with the pinned solc and write (or check) the committed artifacts."""
    from provenance.chain import compiler

    try:
        if check:
            artifact, standard_input = compiler.compile_registry()
            stale = [
                path.name
                for path, fresh in ((compiler.ARTIFACT_PATH, artifact), (compiler.INPUT_PATH, standard_input))
                if not path.exists() or path.read_text(encoding="utf-8") != fresh
            ]
            if stale:
                fail(f"artifacts are stale: {', '.join(stale)}; run `provenance compile`", code=1)
            typer.echo("artifacts are fresh")
            return
        path = compiler.write_artifacts()
    except ProvenanceError as error:
        fail(str(error))
    typer.echo(f"wrote {path}")


@app.command()
def deploy(
    rpc: Annotated[str, typer.Option(help="JSON-RPC URL of the chain.")],
    out: Annotated[Path, typer.Option(help="Where to write the deployment record.")] = Path(
        "data/deployment.json"
    ),
    keystore: Annotated[Path | None, typer.Option(help="Encrypted keystore of the deployer.")] = None,
    password_file: Annotated[Path | None, typer.Option(help="File holding the keystore password.")] = None,
    admin: Annotated[str | None, typer.Option(help="Admin address (default: the deployer).")] = None,
    data_dir: Annotated[Path, typer.Option(help="Data directory holding dev keys.")] = Path("data"),
    address: Annotated[
        str | None, typer.Option(help="Deploy from this account, whose key the external signer holds.")
    ] = None,
    signer_url: Annotated[
        str | None, typer.Option(help="The external signer (Web3Signer's eth1 JSON-RPC) holding --address.")
    ] = None,
) -> None:
    """Deploy the registry and write a deployment record (chain id, genesis hash, address, block)."""
    from provenance.bootstrap import node_connection
    from provenance.chain.connection import TransactionSigner, is_address
    from provenance.chain.deployment import deploy_registry
    from provenance.chain.keys import DevKeyring, load_keystore
    from provenance.chain.remote_signer import RemoteSigner

    if admin is not None and not is_address(admin):
        fail(f"--admin: {admin!r} is not an address")
    if (address is None) != (signer_url is None):
        fail("--address and --signer-url go together (a key the external signer holds)")
    if address is not None and keystore is not None:
        fail("--address (a key of the external signer) and --keystore exclude each other")
    if out.exists():
        fail(f"--out: {out} exists; a deployment record is never overwritten")
    try:
        account: TransactionSigner
        if address is not None and signer_url is not None:
            account = RemoteSigner(signer_url, address)
            account.check_holds_key()
        elif keystore:
            account = load_keystore(keystore, password_file)
        else:
            account = DevKeyring(data_dir).get_or_create("admin")
        w3 = node_connection(rpc)
        if not w3.is_connected():
            fail(f"--rpc: no node answers at {rpc}")
        _, deployment = deploy_registry(w3, account, admin)
        deployment.save(out)
    except ProvenanceError as error:
        fail(str(error))
    typer.echo(
        f"registry {deployment.registry} on chain {deployment.chain_id} at block {deployment.block_number}"
    )
    typer.echo(f"record written to {out}")


@app.command()
def demo(
    api: Annotated[
        str | None, typer.Option(help="The running API (default: from PROVENANCE_API_HOST/PORT).")
    ] = None,
    day: Annotated[str | None, typer.Option(help="The day to play, YYYY-MM-DD (default: yesterday).")] = None,
) -> None:
    """Fill a running `provenance serve` with a realistic day at the testbed, through its API."""
    import json
    from datetime import UTC, datetime, timedelta

    from provenance.clients.demo import run_demo
    from provenance.config import Settings

    settings = Settings()
    try:
        when = (
            datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
            if day
            else datetime.now(UTC) - timedelta(days=1)
        )
    except ValueError:
        fail(f"--day: {day!r} is not a date like 2026-11-24")
    if when.date() >= datetime.now(UTC).date():
        fail("--day: play a day that is over (the shift's trips must lie in the past)")
    try:
        summary = run_demo(
            settings, api or f"http://{settings.api_host}:{settings.api_port}", when, typer.echo
        )
    except (ProvenanceError, OSError) as error:
        fail(str(error))
    typer.echo(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app()

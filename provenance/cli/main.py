"""The `provenance` command. Bad arguments exit 2 with a message, never a traceback."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError

app = typer.Typer(
    help="Provenance of ore lots on chain: compile, deploy, serve, index, verify, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
) -> None:
    """Deploy the registry and write a deployment record (chain id, genesis hash, address, block)."""
    from provenance.bootstrap import connect
    from provenance.chain.connection import is_address
    from provenance.chain.deployment import deploy_registry
    from provenance.chain.keys import DevKeyring, load_keystore

    if admin is not None and not is_address(admin):
        fail(f"--admin: {admin!r} is not an address")
    if out.exists():
        fail(f"--out: {out} exists; a deployment record is never overwritten")
    try:
        account = (
            load_keystore(keystore, password_file)
            if keystore
            else DevKeyring(data_dir).get_or_create("admin")
        )
        w3 = connect(rpc)
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
def serve() -> None:
    """Run the main job: the embedded node (unless PROVENANCE_RPC_URL is set) with the registry deployed."""
    from provenance.bootstrap import admin_account, connect, embedded_node, ensure_deployment
    from provenance.config import Settings

    settings = Settings()
    node = embedded_node(settings) if settings.embedded else None
    stop = threading.Event()
    for caught in (signal.SIGINT, signal.SIGTERM):
        signal.signal(caught, lambda *_: stop.set())
    try:
        w3 = node.start() if node else connect(settings.effective_rpc_url)
        admin = admin_account(settings)
        deployment, created = ensure_deployment(settings, w3, admin)
        where = f"embedded anvil at {node.url}" if node else settings.effective_rpc_url
        typer.echo(f"chain {deployment.chain_id} via {where}")
        typer.echo(f"registry {deployment.registry} ({'deployed now' if created else 'deployed earlier'})")
        typer.echo(f"admin account {admin.address}; data in {settings.data_dir.resolve()}")
        typer.echo("running; Ctrl-C stops")
        sys.stdout.flush()
        stop.wait()
    except (ProvenanceError, OSError) as error:
        fail(str(error))
    finally:
        if node:
            node.stop()
            typer.echo("node stopped, state saved")


if __name__ == "__main__":
    app()

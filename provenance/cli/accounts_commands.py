"""`provenance accounts create | list | revoke`: chain accounts with a role, and the API tokens that act for them.

`create` makes (or reuses) the account's key, funds it on the embedded node, grants its role with
the admin key and prints a new API token once: only a hash of the token is stored, so it cannot be
shown again. Keys and tokens are never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError
from provenance.services.accounts import RoleName

accounts_app = typer.Typer(
    help="Accounts on chain (with a role) and their API credentials.", no_args_is_help=True
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@accounts_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Credential (and dev key) name: a-z 0-9 - _.")],
    role: Annotated[RoleName, typer.Option(help="The on-chain role to grant.", case_sensitive=False)],
    site: Annotated[str | None, typer.Option(help="The site a registrar registers lots of.")] = None,
    keystore: Annotated[
        Path | None, typer.Option(help="Use this encrypted keystore's key instead of a dev key.")
    ] = None,
    password_file: Annotated[Path | None, typer.Option(help="File holding the keystore's password.")] = None,
    address: Annotated[
        str | None,
        typer.Option(help="An account whose key the external signer holds (no key in this process)."),
    ] = None,
    signer_url: Annotated[
        str | None,
        typer.Option(help="The external signer (Web3Signer's eth1 JSON-RPC); default PROVENANCE_SIGNER_URL."),
    ] = None,
) -> None:
    """Create an account with a role and print its API token (shown once)."""
    from provenance.config import Settings
    from provenance.services.accounts import create_account

    settings = Settings()
    try:
        created = create_account(settings, name, role, site, keystore, password_file, address, signer_url)
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    typer.echo(f"account {name}: {created.address}, {created.described} ({created.granted})")
    if not settings.embedded:
        typer.echo("note: fund this account with ether on the chain before it sends transactions")
    typer.echo("API token (shown once; store it now, only its hash is kept):")
    typer.echo(created.token)


@accounts_app.command("list")
def list_accounts() -> None:
    """Credentials: names, addresses and whether they are active. No secrets."""
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.index.credentials_store import CredentialStore
    from provenance.index.db import check_current

    settings = Settings()
    try:
        engine = index_engine(settings.effective_database_url)
        try:
            check_current(engine)
            rows = CredentialStore(engine).all()
        finally:
            engine.dispose()
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    if not rows:
        typer.echo("no credentials; create one with `provenance accounts create`")
        return
    for row in rows:
        typer.echo(
            f"{row.name}\t{row.account}\t{_key_kind(row.key_ref)}\t{'active' if row.active else 'revoked ' + str(row.revoked_at)}"
        )


@accounts_app.command("revoke")
def revoke(name: Annotated[str, typer.Option(help="The credential to revoke.")]) -> None:
    """Revoke a credential's API token at once. Its on-chain role is left as it is."""
    from provenance.bootstrap import index_engine
    from provenance.config import Settings
    from provenance.index.credentials_store import CredentialStore
    from provenance.index.db import check_current

    settings = Settings()
    try:
        engine = index_engine(settings.effective_database_url)
        try:
            check_current(engine)
            store = CredentialStore(engine)
            if not store.revoke(name):
                _fail(f"no active credential named {name!r}")
        finally:
            engine.dispose()
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    typer.echo(f"credential {name} revoked")


def _key_kind(key_ref: str) -> str:
    return key_ref.split(":", 1)[0]

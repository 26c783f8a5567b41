"""`provenance accounts create | list | revoke`: chain accounts with a role, and the API tokens that act for them.

`create` makes (or reuses) the account's key, funds it on the embedded node, grants its role with
the admin key and prints a new API token once: only a hash of the token is stored, so it cannot be
shown again. Keys and tokens are never logged.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from provenance.errors import ProvenanceError

accounts_app = typer.Typer(
    help="Accounts on chain (with a role) and their API credentials.", no_args_is_help=True
)


class RoleName(enum.StrEnum):
    REGISTRAR = "registrar"
    PROCESSOR = "processor"
    LAB = "lab"
    ADMIN = "admin"


ROLE_CONSTANTS = {
    RoleName.PROCESSOR: "PROCESSOR_ROLE",
    RoleName.LAB: "LAB_ROLE",
    RoleName.ADMIN: "DEFAULT_ADMIN_ROLE",
}


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
) -> None:
    """Create an account with a role and print its API token (shown once)."""
    from provenance.bootstrap import admin_account, build_services
    from provenance.chain.keys import DevKeyring, dev_key_ref, keystore_key_ref, load_keystore
    from provenance.chain.node import fund
    from provenance.config import Settings
    from provenance.domain.values import encode_label

    if role is RoleName.REGISTRAR and site is None:
        _fail("--site is required for a registrar (registrars register lots of one site)")
    if role is not RoleName.REGISTRAR and site is not None:
        _fail(f"--site applies to registrars only, not to {role}")
    if (keystore is None) != (password_file is None):
        _fail("--keystore and --password-file go together")
    settings = Settings()
    try:
        if site is not None:
            encode_label(site, "--site")
        services = build_services(settings)
        try:
            if services.credentials.by_name(name) is not None:
                _fail(f"a credential named {name!r} exists; revoke it first or choose another name")
            if keystore is not None and password_file is not None:
                account = load_keystore(keystore, password_file)
                key_ref = keystore_key_ref(keystore, password_file)
            else:
                account = DevKeyring(settings.data_dir).get_or_create(name)
                key_ref = dev_key_ref(name)
            client = services.client
            if settings.embedded:
                fund(services.w3, account.address)
            if role is RoleName.REGISTRAR:
                assert site is not None
                role_id, described = client.registrar_role(site), f"registrar of site {site}"
            else:
                role_id, described = client.role(ROLE_CONSTANTS[role]), ROLE_CONSTANTS[role]
            if client.has_role(role_id, account.address):
                granted = "already held"
            else:
                client.grant_role(admin_account(settings), role_id, account.address)
                granted = "granted"
            _, token = services.credentials.create(name, account.address, key_ref)
        finally:
            services.close()
    except (ProvenanceError, OSError) as error:
        _fail(str(error))
    typer.echo(f"account {name}: {account.address}, {described} ({granted})")
    if not settings.embedded:
        typer.echo("note: fund this account with ether on the chain before it sends transactions")
    typer.echo("API token (shown once; store it now, only its hash is kept):")
    typer.echo(token)


@accounts_app.command("list")
def list_accounts() -> None:
    """Credentials: names, addresses and whether they are active. No secrets."""
    from provenance.config import Settings
    from provenance.index.credentials_store import CredentialStore
    from provenance.index.db import check_current, make_engine

    settings = Settings()
    try:
        engine = make_engine(settings.effective_database_url)
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
    from provenance.config import Settings
    from provenance.index.credentials_store import CredentialStore
    from provenance.index.db import check_current, make_engine

    settings = Settings()
    try:
        engine = make_engine(settings.effective_database_url)
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

"""Accounts that act on chain with a role, and the API credentials that act for them.

Shared by `provenance accounts create` and `provenance demo`: make (or reuse) the key, fund it on
the embedded node, grant the role with the admin key, and mint a token shown once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from provenance.config import Settings
from provenance.errors import ConfigurationError


class RoleName(enum.StrEnum):
    REGISTRAR = "registrar"
    PROCESSOR = "processor"
    LAB = "lab"
    ADMIN = "admin"
    BUYER = "buyer"
    """No role on chain: a buyer only accepts lots offered to it (and may offer them on)."""


ROLE_CONSTANTS = {
    RoleName.PROCESSOR: "PROCESSOR_ROLE",
    RoleName.LAB: "LAB_ROLE",
    RoleName.ADMIN: "DEFAULT_ADMIN_ROLE",
}


@dataclass(frozen=True)
class CreatedAccount:
    address: str
    described: str
    """The role as a person reads it, e.g. "registrar of site SH2"."""
    granted: str
    """"granted" now, or "already held"."""
    token: str


def create_account(
    settings: Settings,
    name: str,
    role: RoleName,
    site: str | None = None,
    keystore: Path | None = None,
    password_file: Path | None = None,
    signer_address: str | None = None,
    signer_url: str | None = None,
) -> CreatedAccount:
    """Raises ConfigurationError for a name in use or inconsistent options, SignerError when the
    external signer does not hold `signer_address`'s key."""
    from provenance.bootstrap import admin_account, build_runtime
    from provenance.chain.connection import TransactionSigner
    from provenance.chain.keys import DevKeyring, dev_key_ref, keystore_key_ref, load_keystore, remote_key_ref
    from provenance.chain.node import fund
    from provenance.chain.remote_signer import RemoteSigner
    from provenance.domain.values import encode_label

    if role is RoleName.REGISTRAR and site is None:
        raise ConfigurationError("--site is required for a registrar (registrars register lots of one site)")
    if role is not RoleName.REGISTRAR and site is not None:
        raise ConfigurationError(f"--site applies to registrars only, not to {role}")
    if (keystore is None) != (password_file is None):
        raise ConfigurationError("--keystore and --password-file go together")
    if signer_address is not None and keystore is not None:
        raise ConfigurationError("--address (a key of the external signer) and --keystore exclude each other")
    signer_url = signer_url or settings.signer_url
    if signer_address is not None and signer_url is None:
        raise ConfigurationError(
            "--address names a key of an external signer: give --signer-url or set PROVENANCE_SIGNER_URL"
        )
    if site is not None:
        encode_label(site, "--site")
    runtime = build_runtime(settings)
    try:
        if runtime.credentials.by_name(name) is not None:
            raise ConfigurationError(
                f"a credential named {name!r} exists; revoke it first or choose another name"
            )
        account: TransactionSigner
        if signer_address is not None and signer_url is not None:
            remote = RemoteSigner(signer_url, signer_address)
            remote.check_holds_key()
            account, key_ref = remote, remote_key_ref(signer_url, remote.address)
        elif keystore is not None and password_file is not None:
            account = load_keystore(keystore, password_file)
            key_ref = keystore_key_ref(keystore, password_file)
        else:
            account = DevKeyring(settings.data_dir).get_or_create(name)
            key_ref = dev_key_ref(name)
        client = runtime.client
        if settings.embedded:
            fund(runtime.w3, account.address)
        if role is RoleName.BUYER:
            role_id, described = None, "no on-chain role (custody only)"
        elif role is RoleName.REGISTRAR:
            assert site is not None
            role_id, described = client.registrar_role(site), f"registrar of site {site}"
        else:
            role_id, described = client.role(ROLE_CONSTANTS[role]), ROLE_CONSTANTS[role]
        if role_id is None:
            granted = "nothing to grant"
        elif client.has_role(role_id, account.address):
            granted = "already held"
        else:
            client.grant_role(admin_account(settings), role_id, account.address)
            granted = "granted"
        if settings.embedded:
            _wait_saved(settings, int(runtime.w3.eth.block_number))
        _, token = runtime.credentials.create(name, account.address, key_ref)
    finally:
        runtime.close()
    return CreatedAccount(account.address, described, granted, token)


def _wait_saved(settings: Settings, block_number: int) -> None:
    """A grant (or funding) on the embedded node is reported done only once the node's chain is
    saved with it: a crash of the node before would take it back, and, made outside the outbox,
    nothing would send it again."""
    from provenance.chain.node_snapshots import SnapshotStore
    from provenance.errors import NodeError

    timeout_s = 3 * settings.node_state_interval_s + 30
    if not SnapshotStore(settings.data_dir / "chain").wait_covering(block_number, timeout_s):
        raise NodeError(
            f"the embedded node did not save block {block_number} within {timeout_s:.0f} s "
            "(is `provenance serve` running?); run the command again once it does"
        )

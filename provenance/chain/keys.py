"""Keys that sign transactions: generated development keys in the data directory, an encrypted
keystore file, or an external signer by URL that keeps the key out of this process altogether
(`remote_signer`). Key material never appears in logs or reprs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from provenance.chain.connection import TransactionSigner
from provenance.chain.remote_signer import RemoteSigner
from provenance.errors import ConfigurationError

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class DevKeyring:
    """Named development keys, one 0600 file each under `data_dir/keys`; created on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "keys"

    def get_or_create(self, name: str) -> LocalAccount:
        if not _NAME.fullmatch(name):
            raise ConfigurationError(f"key name {name!r} must be lower-case letters, digits, - or _")
        path = self.directory / f"{name}.key"
        if path.exists():
            existing: LocalAccount = Account.from_key(path.read_text(encoding="ascii").strip())
            return existing
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        account: LocalAccount = Account.create()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(account.key.hex() + "\n")
        return account

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.directory.glob("*.key"))


def load_keystore(path: Path, password_file: Path | None) -> LocalAccount:
    """An account from an encrypted (Web3 Secret Storage) keystore file."""
    if password_file is None:
        raise ConfigurationError("a keystore needs PROVENANCE_KEYSTORE_PASSWORD_FILE")
    try:
        encrypted = json.loads(path.read_text(encoding="utf-8"))
        password = password_file.read_text(encoding="utf-8").rstrip("\n")
        key = Account.decrypt(encrypted, password)
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot open keystore {path}: {type(error).__name__}") from None
    account: LocalAccount = Account.from_key(key)
    return account


DEV_KEY_PREFIX = "dev:"
KEYSTORE_PREFIX = "keystore:"
REMOTE_PREFIX = "remote:"


def dev_key_ref(name: str) -> str:
    """How a credential names a development key of the keyring: never the key itself."""
    return DEV_KEY_PREFIX + name


def keystore_key_ref(path: Path, password_file: Path) -> str:
    """How a credential names an encrypted keystore and the file holding its password."""
    return KEYSTORE_PREFIX + json.dumps(
        {"path": str(path.resolve()), "password_file": str(password_file.resolve())}, sort_keys=True
    )


def remote_key_ref(url: str, address: str) -> str:
    """How a credential names an account whose key an external signer at `url` holds."""
    return REMOTE_PREFIX + json.dumps({"url": url, "address": address}, sort_keys=True)


class KeyResolver:
    """Turns a credential's key reference into the key that signs for it, opening each key once."""

    def __init__(self, data_dir: Path) -> None:
        self.keyring = DevKeyring(data_dir)
        self._opened: dict[str, TransactionSigner] = {}

    def __call__(self, key_ref: str) -> TransactionSigner:
        account = self._opened.get(key_ref)
        if account is None:
            account = self._open(key_ref)
            self._opened[key_ref] = account
        return account

    def _open(self, key_ref: str) -> TransactionSigner:
        if key_ref.startswith(DEV_KEY_PREFIX):
            name = key_ref.removeprefix(DEV_KEY_PREFIX)
            if not (self.keyring.directory / f"{name}.key").exists():
                raise ConfigurationError(f"no development key named {name!r} in {self.keyring.directory}")
            return self.keyring.get_or_create(name)
        if key_ref.startswith(KEYSTORE_PREFIX):
            try:
                where = json.loads(key_ref.removeprefix(KEYSTORE_PREFIX))
                path, password_file = Path(where["path"]), Path(where["password_file"])
            except (ValueError, KeyError, TypeError):
                raise ConfigurationError("a keystore key reference is malformed") from None
            return load_keystore(path, password_file)
        if key_ref.startswith(REMOTE_PREFIX):
            try:
                where = json.loads(key_ref.removeprefix(REMOTE_PREFIX))
                url, address = str(where["url"]), str(where["address"])
            except (ValueError, KeyError, TypeError):
                raise ConfigurationError("an external signer's key reference is malformed") from None
            return RemoteSigner(url, address)
        if _NAME.fullmatch(key_ref):  # a bare development key name
            return self._open(DEV_KEY_PREFIX + key_ref)
        raise ConfigurationError(
            "unknown kind of key reference (expected dev:NAME, keystore:... or remote:...)"
        )

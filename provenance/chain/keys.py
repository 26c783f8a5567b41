"""Keys that sign transactions: generated development keys in the data directory, or an
encrypted keystore file in production. Key material never appears in logs or reprs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

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

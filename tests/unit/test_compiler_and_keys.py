"""Choosing a compiler without downloading one, and keys that never leak."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_account import Account

from provenance.chain import compiler
from provenance.chain.keys import DevKeyring, load_keystore
from provenance.errors import CompilerError, ConfigurationError

SOLCJS = compiler.REPO_ROOT / "tools" / "solcjs"


def fake_solc(folder: Path, version: str) -> Path:
    """A `solc` on PATH that reports `version` and compiles through the solc-js wrapper."""
    path = folder / "solc"
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "solc, the solidity compiler commandline interface"; '
        f'echo "Version: {version}+commit.deadbeef.Linux.g++"; exit 0; fi\n'
        f'exec "{SOLCJS}" "$@"\n'
    )
    path.chmod(0o755)
    return path


def test_a_native_solc_of_the_pinned_version_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    native = fake_solc(tmp_path, compiler.SOLC_VERSION)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert compiler.find_compiler().executable == native


def test_a_native_solc_of_another_version_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_solc(tmp_path, "0.8.29")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    chosen = compiler.find_compiler()

    assert chosen.executable == SOLCJS
    assert chosen.version.startswith(compiler.SOLC_VERSION)


def test_no_compiler_at_all_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "tools").mkdir()

    with pytest.raises(CompilerError, match="npm ci"):
        compiler.find_compiler(root=tmp_path)


def test_standard_input_inlines_every_import() -> None:
    sources = compiler.standard_input()["sources"]

    assert compiler.MAIN_SOURCE in sources
    assert "@openzeppelin/contracts/access/AccessControl.sol" in sources
    assert all("content" in unit for unit in sources.values())


def test_dev_keys_are_created_once_with_private_permissions(tmp_path: Path) -> None:
    ring = DevKeyring(tmp_path)

    first = ring.get_or_create("admin")
    again = ring.get_or_create("admin")

    assert first.address == again.address
    assert (tmp_path / "keys" / "admin.key").stat().st_mode & 0o777 == 0o600
    assert ring.names() == ["admin"]


def test_dev_key_names_cannot_escape_the_key_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        DevKeyring(tmp_path).get_or_create("../evil")


def test_keystore_opens_with_its_password_and_fails_without_leaking(tmp_path: Path) -> None:
    account = Account.create()
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "correct horse", iterations=2)))
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("correct horse\n")
    wrong.write_text("battery staple\n")

    assert load_keystore(keystore, right).address == account.address
    with pytest.raises(ConfigurationError) as caught:
        load_keystore(keystore, wrong)
    assert account.key.hex() not in str(caught.value)
    assert "battery" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="PASSWORD_FILE"):
        load_keystore(keystore, None)

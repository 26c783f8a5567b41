"""`provenance serve --only ...`: a part of a set of replicas, or a clear refusal (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provenance.cli.main import app


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PROVENANCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("PROVENANCE_RPC_URL", raising=False)
    return tmp_path / "data"


def test_an_unknown_part_is_named(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--only", "api", "--only", "scheduler"])

    assert result.exit_code == 2
    assert "--only: unknown part scheduler; the parts are api, indexer, worker" in result.output
    assert not data_dir.exists(), "a refused serve starts nothing and writes nothing"


def test_a_replica_needs_the_chain_it_shares(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--only", "indexer"])

    assert result.exit_code == 2
    assert "set PROVENANCE_RPC_URL" in result.output
    assert not data_dir.exists()


def test_a_replica_needs_the_deployment_record(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVENANCE_RPC_URL", "http://127.0.0.1:9")

    result = CliRunner().invoke(app, ["serve", "--only", "worker"])

    assert result.exit_code == 2
    assert f"--only needs the deployment record {data_dir / 'deployment.json'}" in result.output


def test_serve_warns_of_qr_codes_only_this_machine_can_open(data_dir: Path) -> None:
    from provenance.cli.serve_command import start_lines
    from provenance.config import Settings

    local = start_lines(Settings(api_port=8123))
    assert any(line.startswith("warning: PROVENANCE_PUBLIC_URL is unset") for line in local)
    assert local[-1].endswith("Ctrl-C stops"), "the last line says the API answers"

    public = start_lines(Settings(api_port=8123, public_url="https://provenance.taebaek.example"))
    assert not any(line.startswith("warning") for line in public)
    assert "http://127.0.0.1:8123/lots/LOT-ID" in public[0]

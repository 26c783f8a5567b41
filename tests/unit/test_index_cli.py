"""`provenance db upgrade` and `provenance index`: they do their job, or say what is wrong (exit 2),
never with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provenance.chain.deployment import Deployment
from provenance.cli.main import app
from provenance.index.db import check_current, make_engine


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PROVENANCE_DATABASE_URL", raising=False)
    monkeypatch.setenv("PROVENANCE_RPC_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    return tmp_path / "data"


def deployment_record(data_dir: Path) -> None:
    Deployment(
        chain_id=31337,
        genesis_hash="0x" + "00" * 32,
        registry="0x" + "11" * 20,
        block_number=1,
        block_hash="0x" + "22" * 32,
        tx_hash="0x" + "33" * 32,
        deployer="0x" + "44" * 20,
        compiler_version="0.8.30",
    ).save(data_dir / "deployment.json")


def test_db_upgrade_creates_the_schema_in_the_data_directory(environment: Path) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "newest schema" in result.output
    engine = make_engine(f"sqlite:///{environment / 'index.sqlite3'}")
    try:
        check_current(engine)
    finally:
        engine.dispose()


def test_db_upgrade_of_the_configured_database(
    db_url: str, environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", db_url)

    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output


def test_db_upgrade_of_an_unreachable_database_is_a_message(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENANCE_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")

    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert "error: cannot upgrade the index database" in result.output
    assert "Traceback" not in result.output


def test_index_without_a_deployment_record_is_a_message(environment: Path) -> None:
    result = CliRunner().invoke(app, ["index", "--once"])

    assert result.exit_code == 2
    assert "error: cannot read deployment record" in result.output
    assert "Traceback" not in result.output


def test_index_refuses_a_database_that_is_behind_and_names_the_command(environment: Path) -> None:
    deployment_record(environment)

    result = CliRunner().invoke(app, ["index", "--once"])

    assert result.exit_code == 2
    assert "run `provenance db upgrade`" in result.output


def test_index_without_a_node_is_a_message(environment: Path) -> None:
    deployment_record(environment)
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0

    result = CliRunner().invoke(app, ["index", "--once"])

    assert result.exit_code == 2
    assert "no node answers at http://127.0.0.1:9" in result.output


def test_index_takes_a_number_of_confirmations_or_finalized(environment: Path) -> None:
    result = CliRunner().invoke(app, ["index", "--once", "--confirmations", "soon"])

    assert result.exit_code == 2
    assert "finalized" in result.output


@pytest.mark.parametrize(("given", "taken"), [("finalized", "finalized"), ("3", 3), ("0", 0)])
def test_the_settings_take_a_number_of_confirmations_or_finalized(
    given: str, taken: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenance.config import Settings

    monkeypatch.setenv("PROVENANCE_CONFIRMATIONS", given)
    assert Settings().confirmations == taken


@pytest.mark.parametrize("given", ["-1", "soon", "latest"])
def test_other_confirmations_are_refused_naming_the_setting(
    given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from provenance.config import Settings

    monkeypatch.setenv("PROVENANCE_CONFIRMATIONS", given)
    with pytest.raises(ValidationError, match="confirmations"):
        Settings()

"""`provenance audit` against tampered indexes: a real index of a real anvil history (every event
kind, tests/index_chain.py `full_history`), altered by one SQL statement per class of discrepancy,
on SQLite and PostgreSQL. The audit must name what was altered and exit 1; a faithful index exits 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from provenance.chain.node import AnvilNode
from provenance.cli.main import app
from provenance.index.db import make_engine
from tests.index_chain import IndexChain, chain_on, full_history

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def anvil_history() -> Iterator[tuple[AnvilNode, IndexChain]]:
    """full_history on anvil, with its unlocked dev accounts (one chain for the whole module)."""
    node = AnvilNode()
    w3 = node.start()
    try:
        chain = chain_on(w3)
        full_history(chain)
        yield node, chain
    finally:
        node.kill()


@pytest.fixture
def live_index(anvil_history: tuple[AnvilNode, IndexChain], db_url: str) -> str:
    """A faithful index of the history, on the engine of `db_url`."""
    _, chain = anvil_history
    engine = make_engine(db_url)
    try:
        chain.indexer(engine).sync()
    finally:
        engine.dispose()
    return db_url


def tamper(url: str, *statements: str, **params: Any) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), params)
    finally:
        engine.dispose()


def run_audit(
    node: AnvilNode, chain: IndexChain, tmp_path: Path, *extra: str
) -> tuple[int, str, dict[str, Any]]:
    report = tmp_path / "audit.json"
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "--rpc",
            node.url,
            "--registry",
            chain.client.address,
            "--report",
            str(report),
            "--quiet",
            *extra,
        ],
    )
    assert "Traceback" not in result.output
    body: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return result.exit_code, result.stdout, body


def messages(body: dict[str, Any]) -> list[str]:
    return [finding["message"] for finding in body["findings"]]


def test_a_faithful_index_passes(
    anvil_history: tuple[AnvilNode, IndexChain], live_index: str, tmp_path: Path
) -> None:
    node, chain = anvil_history

    code, output, body = run_audit(node, chain, tmp_path, "--database", live_index)

    assert code == 0, output
    assert "audit: OK, everything agrees" in output
    assert body["ok"] is True
    assert body["digests"]["index"] == body["digests"]["chain"]
    assert body["lots"] == 6
    assert body["checked"]["mass_conservation"] == 2
    assert body["checked"]["assay_signature"] == 1
    assert body["checked"]["device_signature"] == 1


def test_without_a_database_the_comparison_is_skipped(
    anvil_history: tuple[AnvilNode, IndexChain], tmp_path: Path
) -> None:
    node, chain = anvil_history

    code, output, body = run_audit(node, chain, tmp_path)

    assert code == 0, output
    assert "the index comparison was skipped" in output
    assert body["index_compared"] is False
    assert body["block"] == chain.head


@pytest.mark.parametrize(
    ("case", "statements", "expected"),
    [
        pytest.param(
            "changed mass",
            ["UPDATE lots SET mass_g = 1001 WHERE lot_id = 'A1'"],
            ["lot A1: mass_g index=1001 chain=1000"],
            id="changed-mass",
        ),
        pytest.param(
            "changed custodian",
            ["UPDATE lots SET custodian = :someone WHERE lot_id = 'P1'"],
            [
                "lot P1: custodian index='0x000000000000000000000000000000000000dEaD'",
                "lot P1: custodian index=",
            ],
            id="changed-custodian",
        ),
        pytest.param(
            "deleted event",
            ["DELETE FROM events WHERE name = 'AssayRecorded'"],
            ["event AssayRecorded", "missing in index"],
            id="deleted-event",
        ),
        pytest.param(
            "inserted fake lot",
            [
                "INSERT INTO lots (lot_id, origin, site, face, commodity, mass_g, grade_ppm, extracted_at, record_hash,"
                " transform_id, creator, custodian, pending_custodian, remaining_g, status, block_number, block_hash,"
                " tx_hash, tx_index, log_index) SELECT 'FAKE-1', origin, site, face, commodity, mass_g, grade_ppm,"
                " extracted_at, record_hash, transform_id, creator, custodian, pending_custodian, remaining_g, status,"
                " block_number, block_hash, tx_hash, tx_index, log_index FROM lots WHERE lot_id = 'A1'"
            ],
            [
                "lot FAKE-1 only in index",
                "lot FAKE-1: in the index, but lotState says the registry has no such lot",
            ],
            id="inserted-lot",
        ),
        pytest.param(
            "dropped lineage edge",
            ["DELETE FROM lineage_edges WHERE output_lot_id = 'M1' AND input_lot_id = 'A1'"],
            ["edge A1→M1 missing in index"],
            id="dropped-edge",
        ),
        pytest.param(
            "changed stored EPCIS event",
            [
                "UPDATE epcis_event_ids SET document = REPLACE(document, '\"commissioning\"', '\"shipping\"')"
                " WHERE part = 0"
            ],
            ["stored EPCIS event block", "document index="],
            id="changed-epcis-document",
        ),
        pytest.param(
            "index ahead of the chain",
            ["UPDATE index_cursor SET block_number = block_number + 5, block_hash = :fake"],
            ["index ahead of the chain: its cursor is at block"],
            id="index-ahead",
        ),
        pytest.param(
            "index of another chain",
            ["UPDATE chain_mirror SET chain_id = 1, genesis_hash = :fake"],
            [
                "index of another chain: its chain_id is 1",
                "index of another chain: its genesis_hash is 0xabab",
            ],
            id="another-chain",
        ),
    ],
)
def test_a_tampered_index_is_named_and_fails(
    anvil_history: tuple[AnvilNode, IndexChain],
    live_index: str,
    tmp_path: Path,
    case: str,
    statements: list[str],
    expected: list[str],
) -> None:
    node, chain = anvil_history
    tamper(
        live_index, *statements, someone="0x000000000000000000000000000000000000dEaD", fake="0x" + "ab" * 32
    )

    code, output, body = run_audit(node, chain, tmp_path, "--database", live_index)

    assert code == 1, f"{case}: {output}"
    assert body["ok"] is False
    found = messages(body)
    for fragment in expected:
        assert any(fragment in message for message in found), f"{case}: {fragment!r} not in {found}"
    assert expected[0] in output, output


def test_a_changed_custodian_also_disagrees_with_lot_state(
    anvil_history: tuple[AnvilNode, IndexChain], live_index: str, tmp_path: Path
) -> None:
    node, chain = anvil_history
    tamper(live_index, "UPDATE lots SET custodian = :someone WHERE lot_id = 'P1'", someone=chain.processor)

    code, _, body = run_audit(node, chain, tmp_path, "--database", live_index)

    assert code == 1
    state = [f for f in body["findings"] if f["check"] == "state"]
    assert [f["subject"] for f in state] == ["lot P1"]
    assert state[0]["details"]["chain"] == chain.buyer


def test_bad_arguments_and_an_unreachable_node_exit_2(
    anvil_history: tuple[AnvilNode, IndexChain], tmp_path: Path
) -> None:
    node, chain = anvil_history
    runner = CliRunner()

    not_an_address = runner.invoke(app, ["audit", "--rpc", node.url, "--registry", "0x123"])
    no_node = runner.invoke(app, ["audit", "--rpc", "http://127.0.0.1:9", "--registry", chain.client.address])
    no_registry = runner.invoke(app, ["audit", "--rpc", node.url, "--registry", chain.admin])

    for result in (not_an_address, no_node, no_registry):
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert "is not an address" in not_an_address.output
    assert "no node answers" in no_node.output
    assert "no contract at" in no_registry.output


def test_events_stored_by_another_version_of_the_mapping_are_one_finding(
    anvil_history: tuple[AnvilNode, IndexChain], live_index: str, tmp_path: Path
) -> None:
    node, chain = anvil_history
    tamper(live_index, "UPDATE epcis_id_scheme SET mapping = :other", other="0" * 64)

    code, output, body = run_audit(node, chain, tmp_path, "--database", live_index)

    assert code != 0, output
    assert [finding["kind"] for finding in body["findings"]] == ["other_mapping"]
    assert "another version of the EPCIS mapping" in body["findings"][0]["message"]


def test_an_audit_under_other_identifier_settings_says_so_once_instead_of_per_event(
    anvil_history: tuple[AnvilNode, IndexChain],
    live_index: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, chain = anvil_history
    monkeypatch.setenv("PROVENANCE_PUBLIC_URL", "https://another-deployment.invalid")

    code, output, body = run_audit(node, chain, tmp_path, "--database", live_index)

    assert code != 0, output
    assert [finding["kind"] for finding in body["findings"]] == ["other_identifiers"]
    assert "PROVENANCE_PUBLIC_URL" in body["findings"][0]["message"]

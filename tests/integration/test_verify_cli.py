"""`provenance verify LOT --rpc URL --registry ADDRESS` against a real anvil: from the chain alone,
no index, no API. Exit 0 verified, 1 failed, 2 for what cannot be verified at all; never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from provenance.chain.node import AnvilNode
from provenance.chain.reader import ChainReader
from provenance.cli.main import app
from provenance.domain.events import DecodedEvent
from tests.index_chain import IndexChain, chain_on
from tests.unit.test_verify_index import build_history

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def anvil_chain() -> Iterator[tuple[AnvilNode, IndexChain]]:
    """The history of tests/unit/test_verify_index.py, on anvil (its unlocked dev accounts)."""
    node = AnvilNode()
    w3 = node.start()
    try:
        chain = chain_on(w3)
        build_history(chain)
        yield node, chain
    finally:
        node.kill()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["verify", *args])


def test_a_good_lot_is_verified_from_the_chain_alone(anvil_chain: tuple[AnvilNode, IndexChain]) -> None:
    node, chain = anvil_chain

    result = run("B1", "--rpc", node.url, "--registry", chain.client.address)

    assert result.exit_code == 0, result.output
    assert "lot B1: VERIFIED" in result.output
    assert "4 lots checked" in result.output
    assert "Traceback" not in result.output


def test_json_output_has_the_verdict_and_every_check(anvil_chain: tuple[AnvilNode, IndexChain]) -> None:
    node, chain = anvil_chain

    result = run("B1", "--rpc", node.url, "--registry", chain.client.address, "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["verdict"] == "verified"
    assert body["mode"] == "chain"
    assert set(body["lots_checked"]) == {"B1", "S1", "L2", "L1"}
    names = {check["name"] for check in body["checks"]}
    assert {"lot_state_replayed", "conservation", "assay_signature"} <= names
    conservation = next(c for c in body["checks"] if c["name"] == "conservation" and c["lot_id"] == "B1")
    assert conservation["where"]["block_number"] > 0


def test_the_bound_is_reported(anvil_chain: tuple[AnvilNode, IndexChain]) -> None:
    node, chain = anvil_chain

    result = run("B1", "--rpc", node.url, "--registry", chain.client.address, "--max-lots", "1")

    assert result.exit_code == 0, result.output
    assert "stopped at --max-lots 1" in result.output


def test_a_node_that_hides_an_event_fails_the_replay(
    anvil_chain: tuple[AnvilNode, IndexChain], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lagging or lying node that leaves out L2's consumption: the replay no longer matches lotState."""
    node, chain = anvil_chain
    honest = ChainReader.lot_logs

    def hiding(self: ChainReader, lot_id: str, from_block: int, to_block: int) -> list[DecodedEvent]:
        events = honest(self, lot_id, from_block, to_block)
        return [e for e in events if not (lot_id == "L2" and e.name == "LotConsumed")]

    monkeypatch.setattr(ChainReader, "lot_logs", hiding)

    result = run("B1", "--rpc", node.url, "--registry", chain.client.address)

    assert result.exit_code == 1, result.output
    assert "lot B1: FAILED" in result.output
    assert "L2 lotState remaining_g: expected 3000, chain says 1000" in result.output


def test_an_unknown_lot_exits_2(anvil_chain: tuple[AnvilNode, IndexChain]) -> None:
    node, chain = anvil_chain

    result = run("NO-SUCH-LOT", "--rpc", node.url, "--registry", chain.client.address)

    assert result.exit_code == 2
    assert "has no lot 'NO-SUCH-LOT'" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_node_exits_2() -> None:
    result = run("B1", "--rpc", "http://127.0.0.1:9", "--registry", "0x" + "11" * 20)

    assert result.exit_code == 2
    assert "error: --rpc" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("lot", "registry", "message"),
    [
        ("B1", "not-an-address", "--registry: 'not-an-address' is not an address"),
        ("bad lot id!", "0x" + "11" * 20, "LOT: must be 1 to 32 characters"),
    ],
)
def test_bad_arguments_exit_2(lot: str, registry: str, message: str) -> None:
    result = run(lot, "--rpc", "http://127.0.0.1:9", "--registry", registry)

    assert result.exit_code == 2
    assert message in result.output


def test_an_address_without_the_registry_exits_2(anvil_chain: tuple[AnvilNode, IndexChain]) -> None:
    node, _ = anvil_chain

    result = run("B1", "--rpc", node.url, "--registry", "0x" + "11" * 20)

    assert result.exit_code == 2
    assert "no contract at" in result.output

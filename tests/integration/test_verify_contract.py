"""`provenance verify-contract`: the committed sources recompiled with the recorded compiler, against
deployed code. A registry deployed from the committed artifact is a full match; one deployed from a
source whose comment changed is a partial match (only the metadata hash differs); one whose code
changed is a mismatch. Each compile takes seconds, so the two modified sources compile in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_abi import encode as abi_encode
from typer.testing import CliRunner
from web3 import EthereumTesterProvider, Web3

from provenance.chain.artifacts import standard_input_text
from provenance.chain.bytecode import compile_runtime, split_metadata, verify_contract
from provenance.chain.compiler import MAIN_SOURCE
from provenance.chain.deployment import deploy_registry
from provenance.chain.node import AnvilNode
from provenance.cli.main import app

pytestmark = pytest.mark.slow


def modified_input(old: str, new: str) -> str:
    data = json.loads(standard_input_text())
    source = data["sources"][MAIN_SOURCE]["content"]
    assert old in source
    data["sources"][MAIN_SOURCE]["content"] = source.replace(old, new, 1)
    return json.dumps(data)


COMMENT_CHANGED = modified_input("pragma solidity", "// an auditor's copy\npragma solidity")
CODE_CHANGED = modified_input("MAX_CLOCK_SKEW = 15 minutes", "MAX_CLOCK_SKEW = 16 minutes")


@pytest.fixture(scope="module")
def compiled() -> None:
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(compile_runtime, [standard_input_text(), COMMENT_CHANGED, CODE_CHANGED]))


@pytest.fixture(scope="module")
def w3() -> Web3:
    return Web3(EthereumTesterProvider())


def deploy_from(w3: Web3, input_text: str) -> str:
    compiled = compile_runtime(input_text)
    admin = w3.eth.accounts[0]
    tx = w3.eth.send_transaction(
        {"from": admin, "data": compiled.creation_code + abi_encode(["address"], [admin]), "gas": 10_000_000}
    )
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    assert address is not None
    return str(address)


def test_the_committed_artifact_deployed_is_a_full_match(compiled: None, w3: Web3) -> None:
    client, _ = deploy_registry(w3, w3.eth.accounts[0])

    result = verify_contract(w3, client.address)

    assert result.verdict == "full"
    assert result.immutables_masked >= 5  # EIP712's cached domain separator, chain id, address, hashes
    assert result.metadata_on_chain == result.metadata_compiled
    assert result.compiler_version.startswith("0.8.30")


def test_a_changed_comment_is_a_partial_match(compiled: None, w3: Web3) -> None:
    address = deploy_from(w3, COMMENT_CHANGED)

    result = verify_contract(w3, address)

    assert result.verdict == "partial"
    assert result.metadata_on_chain != result.metadata_compiled
    assert result.first_difference is None


def test_changed_code_is_a_mismatch(compiled: None, w3: Web3) -> None:
    address = deploy_from(w3, CODE_CHANGED)

    result = verify_contract(w3, address)

    assert result.verdict == "mismatch"
    assert result.first_difference is not None


def test_metadata_is_the_cbor_tail() -> None:
    code, metadata = split_metadata(bytes.fromhex("6080aabbcc0003"))

    assert (code, metadata) == (bytes.fromhex("6080"), bytes.fromhex("aabbcc0003"))


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode()
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.mark.anvil
def test_the_command_exits_0_on_a_full_match_1_on_a_partial_one_and_2_without_a_contract(
    compiled: None, anvil: AnvilNode
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    client, _ = deploy_registry(w3, w3.eth.accounts[0])
    partial = deploy_from(w3, COMMENT_CHANGED)
    runner = CliRunner()

    full = runner.invoke(app, ["verify-contract", "--rpc", anvil.url, "--registry", client.address])
    partly = runner.invoke(app, ["verify-contract", "--rpc", anvil.url, "--registry", partial, "--json"])
    nothing = runner.invoke(app, ["verify-contract", "--rpc", anvil.url, "--registry", w3.eth.accounts[1]])

    assert full.exit_code == 0, full.output
    assert "FULL match" in full.stdout
    assert partly.exit_code == 1, partly.output
    assert json.loads(partly.stdout)["verdict"] == "partial"
    assert nothing.exit_code == 2
    assert "no contract at" in nothing.output
    assert "Traceback" not in full.output + partly.output + nothing.output

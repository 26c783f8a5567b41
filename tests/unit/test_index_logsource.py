"""The log source: adapts its ranges to what the node accepts, and never passes on an answer that
contradicts the block headers."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from requests.exceptions import ReadTimeout
from web3 import Web3
from web3.datastructures import AttributeDict
from web3.exceptions import Web3RPCError
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from provenance.chain.events import _word_reader, decoders
from provenance.chain.logsource import RpcLogSource
from provenance.errors import InconsistentLogs, LogSourceError
from tests.index_chain import IndexChain, full_history


@pytest.fixture(scope="module")
def chain() -> IndexChain:
    chain = IndexChain.fresh()
    for index in range(6):
        chain.register(chain.lot(f"A{index}", 1_000 + index), chain.lot(f"B{index}", 2_000 + index))
    return chain


class Limited:
    """Stands in for `w3.eth.get_logs` on a node that refuses wide ranges or many results."""

    def __init__(
        self, real: Any, *, max_blocks: int = 10**9, error: type[Exception] = Web3RPCError, hint: bool = False
    ):
        self.real = real
        self.max_blocks = max_blocks
        self.error = error
        self.hint = hint
        self.calls: list[tuple[int, int]] = []

    def __call__(self, params: dict[str, Any]) -> list[Any]:
        start, end = params["fromBlock"], params["toBlock"]
        self.calls.append((start, end))
        if end - start + 1 > self.max_blocks:
            if self.error is ReadTimeout:
                raise ReadTimeout("HTTPConnectionPool: Read timed out. (read timeout=30)")
            message = "query returned more than 10000 results"
            if self.hint:
                message += f". Try with this block range [{hex(start)}, {hex(start + self.max_blocks - 1)}]."
            raise Web3RPCError(message)
        answer: list[Any] = self.real(params)
        return answer


def _all(chain: IndexChain) -> list[Any]:
    return chain.source().logs(0, chain.head)


def test_logs_come_decoded_in_chain_order_with_their_coordinates(chain: IndexChain) -> None:
    events = _all(chain)
    keys = [(event.block_number, event.tx_index, event.log_index) for event in events]

    assert keys == sorted(keys)
    assert [event.name for event in events[:2]] == ["RoleGranted", "RoleGranted"]
    registered = [event for event in events if event.name == "LotRegistered"]
    assert [event.args["lotId"] for event in registered[:2]] == ["A0", "B0"]
    assert registered[0].args["massG"] == 1_000
    assert all(event.address == chain.client.address for event in events)


@pytest.mark.parametrize(
    "node",
    [
        {"max_blocks": 3},
        {"max_blocks": 4, "hint": True},
        {"max_blocks": 2, "error": ReadTimeout},
    ],
    ids=["too-many-results", "suggested-range", "timeout"],
)
def test_a_refused_range_is_narrowed_until_the_node_answers(
    chain: IndexChain, monkeypatch: pytest.MonkeyPatch, node: dict[str, Any]
) -> None:
    expected = _all(chain)
    source = chain.source()
    limited = Limited(source.w3.eth.get_logs, **node)
    monkeypatch.setattr(source.w3.eth, "get_logs", limited)

    events = source.logs(0, chain.head)

    assert events == expected
    answered = [(start, end) for start, end in limited.calls if end - start + 1 <= node["max_blocks"]]
    assert sorted(answered) == answered
    assert answered[0][0] == 0
    assert answered[-1][1] == chain.head
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(answered))
    if node.get("hint"):
        assert limited.calls[1] == (0, 3)


def test_a_single_block_the_node_refuses_is_an_error(
    chain: IndexChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = chain.source()
    monkeypatch.setattr(source.w3.eth, "get_logs", Limited(source.w3.eth.get_logs, max_blocks=0))

    with pytest.raises(LogSourceError, match=r"eth_getLogs 5\.\.5 failed"):
        source.logs(5, 9)


def _tampered(chain: IndexChain, monkeypatch: pytest.MonkeyPatch, change: Any) -> RpcLogSource:
    source = chain.source()
    real = source.w3.eth.get_logs

    def tampered(params: dict[str, Any]) -> list[Any]:
        logs = [AttributeDict(dict(entry)) for entry in real(params)]
        return list(change(logs))

    monkeypatch.setattr(source.w3.eth, "get_logs", tampered)
    return source


def test_a_log_whose_block_hash_is_not_the_headers_is_refused(
    chain: IndexChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fork(logs: list[Any]) -> list[Any]:
        return [AttributeDict({**logs[0], "blockHash": b"\x12" * 32}), *logs[1:]]

    with pytest.raises(InconsistentLogs, match="the chain moved under the read"):
        _tampered(chain, monkeypatch, fork).logs(0, chain.head)


def test_a_log_returned_twice_is_refused(chain: IndexChain, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InconsistentLogs, match="returned twice"):
        _tampered(chain, monkeypatch, lambda logs: logs + logs[-1:]).logs(0, chain.head)


def test_a_log_outside_the_range_asked_for_is_refused(
    chain: IndexChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stray(logs: list[Any]) -> list[Any]:
        return [AttributeDict({**logs[0], "blockNumber": 10**6}), *logs[1:]]

    with pytest.raises(InconsistentLogs, match="got a log of block 1000000"):
        _tampered(chain, monkeypatch, stray).logs(0, chain.head)


def test_a_removed_log_is_refused(chain: IndexChain, monkeypatch: pytest.MonkeyPatch) -> None:
    def removed(logs: list[Any]) -> list[Any]:
        return [AttributeDict({**logs[0], "removed": True}), *logs[1:]]

    with pytest.raises(InconsistentLogs, match="removed log"):
        _tampered(chain, monkeypatch, removed).logs(0, chain.head)


def test_the_safe_head_stays_the_asked_number_of_blocks_behind(chain: IndexChain) -> None:
    source = chain.source()
    latest = source.head(0)

    assert latest.number == chain.head
    assert source.head(2).number == chain.head - 2
    assert source.head(2).hash == chain.w3.eth.get_block(chain.head - 2)["hash"].to_0x_hex()
    assert source.head(10**6).number == 0
    assert source.head("finalized").number <= latest.number
    assert source.block(latest.number) == latest
    assert source.block(latest.number).parent_hash == source.block(latest.number - 1).hash


def test_many_headers_are_read_at_once(chain: IndexChain) -> None:
    source = chain.source()

    headers = source.blocks(range(1, chain.head + 1))

    assert sorted(headers) == list(range(1, chain.head + 1))
    assert all(headers[n].parent_hash == headers[n - 1].hash for n in range(2, chain.head + 1))


def test_a_block_the_node_does_not_have_is_an_error(chain: IndexChain) -> None:
    with pytest.raises(LogSourceError, match="cannot read block"):
        chain.source().block(10**6)


# ---------------------------------------------------------------------- over JSON-RPC


def _as_json_rpc(value: Any) -> Any:
    """What a JSON-RPC node sends: quantities and bytes as 0x-hex strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_as_json_rpc(item) for item in value]
    return {key: _as_json_rpc(item) for key, item in dict(value).items()}


class JsonRpcNode(JSONBaseProvider):
    """A JSON-RPC provider answering from an eth-tester chain with raw (unformatted) JSON, as a
    real node does; it refuses eth_getLogs over more than `max_blocks` blocks with geth's error."""

    def __init__(self, chain: IndexChain, max_blocks: int = 10**9) -> None:
        super().__init__()
        self.chain = chain
        self.max_blocks = max_blocks
        self.calls: list[str] = []

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.calls.append(method)
        eth = self.chain.w3.eth
        if method == "eth_getLogs":
            (query,) = params
            start, end = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            if end - start + 1 > self.max_blocks:
                return {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "error": {"code": -32005, "message": "query returned more than 10000 results"},
                }
            logs = eth.get_logs({"address": query["address"], "fromBlock": start, "toBlock": end})
            return {"jsonrpc": "2.0", "id": 1, "result": _as_json_rpc(logs)}
        if method == "eth_getBlockByNumber":
            identifier = params[0]
            block = eth.get_block(int(identifier, 16) if identifier.startswith("0x") else identifier)
            return {"jsonrpc": "2.0", "id": 1, "result": _as_json_rpc(block)}
        raise NotImplementedError(method)

    def make_batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse]:
        self.calls.append("batch")
        return [self.make_request(method, params) for method, params in requests]


def test_over_json_rpc_raw_answers_decode_to_the_same_events(chain: IndexChain) -> None:
    node = JsonRpcNode(chain, max_blocks=4)
    source = RpcLogSource(Web3(node), chain.client.address)

    events = source.logs(0, chain.head)

    assert events == _all(chain)
    assert "batch" in node.calls


def test_over_json_rpc_headers_come_in_batches(chain: IndexChain) -> None:
    node = JsonRpcNode(chain)
    source = RpcLogSource(Web3(node), chain.client.address)

    headers = source.blocks(range(1, chain.head + 1))

    assert headers == chain.source().blocks(range(1, chain.head + 1))
    assert node.calls == ["batch", *["eth_getBlockByNumber"] * chain.head]


# ---------------------------------------------------------------------- decoding


def test_word_slicing_decodes_every_event_exactly_as_eth_abi() -> None:
    history = IndexChain.fresh()
    full_history(history)
    logs = history.w3.eth.get_logs({"address": history.client.address, "fromBlock": 0, "toBlock": "latest"})
    fast = decoders()
    slow = {
        topic: dataclasses.replace(
            decoder, topic_readers=(None,) * len(decoder.topic_fields), data_readers=None
        )
        for topic, decoder in fast.items()
    }
    names = set()

    for entry in logs:
        topics = [bytes(topic) for topic in entry["topics"]]
        names.add(fast[topics[0]].name)
        assert fast[topics[0]].decode(topics, bytes(entry["data"])) == slow[topics[0]].decode(
            topics, bytes(entry["data"])
        )
    assert len(names) >= 19


@pytest.mark.parametrize(
    ("abi_type", "word"),
    [
        ("address", b"\x01" + b"\0" * 11 + b"\x22" * 20),
        ("uint96", (1 << 96).to_bytes(32, "big")),
        ("uint8", (256).to_bytes(32, "big")),
        ("bool", (2).to_bytes(32, "big")),
        ("int8", (128).to_bytes(32, "big")),
        ("bytes32", b"\0" * 31),
    ],
)
def test_a_malformed_word_is_refused_as_eth_abi_would(abi_type: str, word: bytes) -> None:
    read = _word_reader(abi_type)

    assert read is not None
    with pytest.raises(ValueError):  # noqa: PT011 - eth_abi's own errors are ValueErrors too
        read(word)
    with pytest.raises(Exception):  # noqa: B017, PT011
        abi_decode([abi_type], word, strict=True)

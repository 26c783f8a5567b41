"""The few node calls the outbox worker makes on every step, without web3's request stack.

Each of web3's calls runs its middleware, request and result formatters, and `requests`; on the
worker's hot path (the latest block, a receipt, a simulation, a send: four or five calls a step)
that cost more than the node's own work (docs/benchmarks.md, "Profiles behind the code").
`HttpNodeCalls` speaks JSON-RPC over one kept-alive `http.client` connection instead.
`Web3NodeCalls` makes the same calls through web3, for providers that are not HTTP (eth-tester in
the tests). Both return the same small records and raise the same errors: `CallReverted` with the
revert data for a refused simulation, `RpcError` for what the node refused otherwise.
"""

from __future__ import annotations

import binascii
import http.client
import itertools
import json
import re
import threading
import urllib.parse
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.exceptions import BlockNotFound, TransactionNotFound

from provenance.chain.client import revert_data
from provenance.errors import CallReverted, RpcError

HEX_PIECE = 1 << 18
"""Hex digits decoded per piece of a long result: each piece holds the GIL for well under 1 ms."""
_HEX_RESULT = re.compile(rb'\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*\d+\s*,\s*"result"\s*:\s*"0x')

BlockTag = int | str
"""A block number, or a tag such as "latest" or "pending"."""


@dataclass(frozen=True)
class Head:
    number: int
    hash: str
    parent_hash: str
    base_fee: int | None


@dataclass(frozen=True)
class Receipt:
    block_number: int
    block_hash: str
    gas_used: int
    status: int


@dataclass(frozen=True)
class SentTransaction:
    sender: str
    to: str | None
    data: bytes
    gas: int


class NodeCalls(Protocol):
    def block(self, number: BlockTag) -> Head | None: ...

    def transaction_count(self, address: str, block: BlockTag) -> int: ...

    def receipt(self, tx_hash: str) -> Receipt | None: ...

    def transaction(self, tx_hash: str) -> SentTransaction | None: ...

    def call(self, transaction: Mapping[str, Any], block: BlockTag = "latest") -> bytes: ...

    def estimate_gas(self, transaction: Mapping[str, Any]) -> int: ...

    def send_raw_transaction(self, raw_tx: str) -> None: ...

    def gas_price(self) -> int: ...

    def close(self) -> None: ...


def node_calls(w3: Web3) -> NodeCalls:
    """Raw JSON-RPC when `w3` talks HTTP to its node, web3's own calls otherwise."""
    provider = w3.provider
    if isinstance(provider, HTTPProvider) and provider.endpoint_uri:
        timeout = (provider.get_request_kwargs() or {}).get("timeout", 30.0)
        return HttpNodeCalls(str(provider.endpoint_uri), timeout_s=float(timeout))
    return Web3NodeCalls(w3)


# ------------------------------------------------------------------------------ JSON-RPC over HTTP


class HttpNodeCalls:
    """JSON-RPC on one kept-alive connection per thread. A request on a connection the node
    closed (an idle timeout, a restart) is sent once more on a new one: every call here is a read
    or a send of signed bytes, which the node answers "already known" the second time."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = parsed.path or "/"
        if parsed.query:
            self._path += "?" + parsed.query
        self._timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        """Every thread's connection, so that `close` (or this object's collection) closes them all."""
        self._closer = weakref.finalize(self, _close_all, self._open)

    def close(self) -> None:
        """Closes every connection; a later call opens a new one."""
        _close_all(self._open)

    def request(self, method: str, params: list[Any]) -> Any:
        """The `result` of one JSON-RPC call; CallReverted or RpcError for an `error`."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        return _result_of(self._post(body.encode()))

    def request_bytes(self, method: str, params: list[Any]) -> bytes:
        """The `result` of a call that answers one long 0x-hex string (`anvil_dumpState`), as
        bytes. Decoded in pieces, never as one JSON document: a single `json.loads` and
        `bytes.fromhex` of a dump of megabytes hold the GIL for tens of milliseconds in one go,
        and in `provenance serve` every API read thread waits that long (docs/architecture.md)."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        data = self._post(body.encode())
        head = _HEX_RESULT.match(data, 0, min(len(data), 200))
        end = data.rfind(b'"')
        if head is None or end < head.end() or data[end + 1 :].strip() != b"}":
            result = _result_of(data)
            if not isinstance(result, str):
                raise RpcError(0, f"{method} answered no hex string")
            return bytes.fromhex(result.removeprefix("0x"))
        hex_digits = memoryview(data)[head.end() : end]
        return b"".join(
            binascii.unhexlify(hex_digits[start : start + HEX_PIECE])
            for start in range(0, len(hex_digits), HEX_PIECE)
        )

    def _post(self, body: bytes) -> bytes:
        for attempt in (0, 1):
            connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
            reused = connection is not None
            if connection is None:
                factory = (
                    http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
                )
                connection = factory(self._host, self._port, timeout=self._timeout_s)
                self._local.connection = connection
            self._open.add(connection)  # again after `close`: http.client reconnects by itself
            try:
                connection.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self._drop(connection)
                if attempt == 0 and reused:
                    continue
                raise
            if response.will_close:
                self._drop(connection)
            if response.status != 200:
                raise RpcError(response.status, f"HTTP {response.status} from the node: {data[:200]!r}")
            return data
        raise AssertionError("unreachable")

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._open.discard(connection)
        self._local.connection = None

    def block(self, number: BlockTag) -> Head | None:
        found = self.request("eth_getBlockByNumber", [_tag(number), False])
        if found is None:
            return None
        base_fee = found.get("baseFeePerGas")
        return Head(
            number=int(found["number"], 16),
            hash=found["hash"],
            parent_hash=found["parentHash"],
            base_fee=None if base_fee is None else int(base_fee, 16),
        )

    def transaction_count(self, address: str, block: BlockTag) -> int:
        return int(self.request("eth_getTransactionCount", [address, _tag(block)]), 16)

    def receipt(self, tx_hash: str) -> Receipt | None:
        found = self.request("eth_getTransactionReceipt", [tx_hash])
        if found is None or found.get("blockNumber") is None:
            return None
        return Receipt(
            block_number=int(found["blockNumber"], 16),
            block_hash=found["blockHash"],
            gas_used=int(found["gasUsed"], 16),
            status=int(found["status"], 16),
        )

    def transaction(self, tx_hash: str) -> SentTransaction | None:
        found = self.request("eth_getTransactionByHash", [tx_hash])
        if found is None:
            return None
        return SentTransaction(
            sender=found["from"],
            to=found.get("to"),
            data=bytes(HexBytes(found.get("input") or "0x")),
            gas=int(found["gas"], 16),
        )

    def call(self, transaction: Mapping[str, Any], block: BlockTag = "latest") -> bytes:
        return bytes(HexBytes(self.request("eth_call", [_json_transaction(transaction), _tag(block)])))

    def estimate_gas(self, transaction: Mapping[str, Any]) -> int:
        return int(self.request("eth_estimateGas", [_json_transaction(transaction)]), 16)

    def send_raw_transaction(self, raw_tx: str) -> None:
        self.request("eth_sendRawTransaction", [raw_tx])

    def gas_price(self) -> int:
        return int(self.request("eth_gasPrice", []), 16)


def _close_all(connections: set[http.client.HTTPConnection]) -> None:
    for connection in list(connections):
        connection.close()
    connections.clear()


def _tag(block: BlockTag) -> str:
    return hex(block) if isinstance(block, int) else block


def _json_transaction(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """A call's fields as JSON-RPC wants them: numbers and bytes as 0x hex."""
    encoded: dict[str, Any] = {}
    for name, value in transaction.items():
        if isinstance(value, bool) or value is None:
            raise ValueError(f"transaction field {name} cannot be {value!r}")
        if isinstance(value, int):
            encoded[name] = hex(value)
        elif isinstance(value, bytes | bytearray):
            encoded[name] = "0x" + bytes(value).hex()
        else:
            encoded[name] = value
    if "data" in encoded:
        # the execution-apis schema (GenericTransaction) names it `input`; `data` is an older alias
        # that nodes differ on: Hardhat's EDR refuses a call that names both (-32602), geth refuses
        # both when they differ. `input` alone is read by anvil, Hardhat and geth
        # (tests/integration/test_other_nodes.py)
        encoded["input"] = encoded.pop("data")
    return encoded


# ------------------------------------------------------------------------------ through web3


class Web3NodeCalls:
    """The same calls through web3 (any provider): the tests' eth-tester chain."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def close(self) -> None:
        """Nothing to close: web3's provider is the caller's."""

    def block(self, number: BlockTag) -> Head | None:
        try:
            found = self.w3.eth.get_block(number)  # type: ignore[arg-type]
        except BlockNotFound:
            return None
        base_fee = found.get("baseFeePerGas")
        return Head(
            number=int(found["number"]),
            hash=HexBytes(found["hash"]).to_0x_hex(),
            parent_hash=HexBytes(found["parentHash"]).to_0x_hex(),
            base_fee=None if base_fee is None else int(base_fee),
        )

    def transaction_count(self, address: str, block: BlockTag) -> int:
        return int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(address), block))  # type: ignore[arg-type]

    def receipt(self, tx_hash: str) -> Receipt | None:
        try:
            found = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        return Receipt(
            block_number=int(found["blockNumber"]),
            block_hash=HexBytes(found["blockHash"]).to_0x_hex(),
            gas_used=int(found["gasUsed"]),
            status=int(found["status"]),
        )

    def transaction(self, tx_hash: str) -> SentTransaction | None:
        try:
            found = self.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        return SentTransaction(
            sender=str(found["from"]), to=found.get("to"), data=bytes(found["input"]), gas=int(found["gas"])
        )

    def call(self, transaction: Mapping[str, Any], block: BlockTag = "latest") -> bytes:
        with _reverts_as_call_reverted():
            return bytes(self.w3.eth.call(dict(transaction), block))  # type: ignore[arg-type]

    def estimate_gas(self, transaction: Mapping[str, Any]) -> int:
        with _reverts_as_call_reverted():
            return int(self.w3.eth.estimate_gas(dict(transaction)))  # type: ignore[arg-type]

    def send_raw_transaction(self, raw_tx: str) -> None:
        self.w3.eth.send_raw_transaction(HexBytes(raw_tx))

    def gas_price(self) -> int:
        return int(self.w3.eth.gas_price)


@contextmanager
def _reverts_as_call_reverted() -> Iterator[None]:
    """web3's revert exceptions (which differ by provider) as `CallReverted`; others as they are."""
    try:
        yield
    except Exception as error:
        data = revert_data(error)
        if data is None:
            raise
        raise CallReverted(data, str(error)) from error


def _result_of(data: bytes) -> Any:
    """The `result` of one JSON-RPC answer; CallReverted or RpcError for an `error`."""
    answer = json.loads(data)
    error = answer.get("error")
    if error is not None:
        code, message = int(error.get("code", 0)), str(error.get("message", ""))
        detail = error.get("data")
        if isinstance(detail, Mapping):  # Hardhat: {"message": ..., "data": "0x..."}; anvil, geth: "0x..."
            detail = detail.get("data")
        if code == 3 or "revert" in message.lower():
            raw = bytes(HexBytes(detail)) if isinstance(detail, str) and detail.startswith("0x") else b""
            raise CallReverted(raw, message)
        raise RpcError(code, message)
    return answer.get("result")

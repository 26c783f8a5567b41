"""`HttpNodeCalls.request_bytes`: a long hex result decoded in pieces equals the JSON decoding of
the same answer, whatever the key order or spacing, and an error is still an error."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provenance.chain.node_calls import HEX_PIECE, HttpNodeCalls
from provenance.errors import RpcError


class Node:
    """A JSON-RPC endpoint that answers every request with `answer` (bytes, sent as they are)."""

    def __init__(self) -> None:
        self.answer = b""
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(node.answer)))
                self.end_headers()
                self.wfile.write(node.answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def node() -> Iterator[Node]:
    serving = Node()
    yield serving
    serving.server.shutdown()
    serving.server.server_close()


STATE = os.urandom(3 * HEX_PIECE // 2 + 7)  # pieces of either size, and an odd tail


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps({"jsonrpc": "2.0", "id": 1, "result": "0x" + STATE.hex()}, separators=(",", ":")),
        json.dumps({"jsonrpc": "2.0", "id": 7, "result": "0x" + STATE.hex()}, indent=1),
        json.dumps({"id": 1, "result": "0x" + STATE.hex(), "jsonrpc": "2.0"}),
        json.dumps({"result": "0x" + STATE.hex().upper(), "id": 1, "jsonrpc": "2.0"}),
    ],
    ids=["compact", "spaced", "result-in-the-middle", "other-order-upper-case"],
)
def test_a_long_hex_result_is_the_same_bytes_as_json_gives(node: Node, answer: str) -> None:
    node.answer = answer.encode()
    calls = HttpNodeCalls(node.url)

    assert calls.request_bytes("anvil_dumpState", []) == bytes.fromhex(json.loads(answer)["result"][2:])


def test_an_error_answer_is_an_rpc_error(node: Node) -> None:
    node.answer = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no such method"}}
    ).encode()
    calls = HttpNodeCalls(node.url)

    with pytest.raises(RpcError, match="no such method"):
        calls.request_bytes("anvil_dumpState", [])

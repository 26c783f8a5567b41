"""A webhook receiver for tests and the benchmark: a small threaded HTTP server on 127.0.0.1 that
checks each delivery's signature with the recipe of docs/deliveries.md (read from the page, so the
recipe is tested as written) and can be down, slow, fail or hang on purpose."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs" / "deliveries.md"


def documented_verifier() -> Callable[[str, str, bytes], bool]:
    """`verify_delivery` from the one Python block of docs/deliveries.md that defines it, as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    source = next(block for block in blocks if "def verify_delivery" in block)
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOCS), "exec"), namespace)  # noqa: S102 - the page's own recipe
    verifier: Callable[[str, str, bytes], bool] = namespace["verify_delivery"]
    return verifier


@dataclass(frozen=True)
class Received:
    id: str
    type: str
    lot_id: str | None
    block_number: int
    tx_index: int
    log_index: int
    body: dict[str, Any]
    at: float
    arrival: int
    """The request's number: arrivals are numbered in order, answers may be recorded out of it."""


Behaviour = Callable[[int], str]
"""Given the request's number (0, 1, ...), one of: ok, slow, fail (500), hang (longer than the
client's timeout, then an answer nobody reads), reset (close without answering)."""


@dataclass
class Receiver:
    secret: str = ""
    behaviour: Behaviour = lambda _n: "ok"
    slow_s: float = 0.05
    hang_s: float = 1.0
    refuse_lot: str | None = None
    """Answer 500 to every message about this lot (a receiver that chokes on one lot's data)."""
    acknowledged: list[Received] = field(default_factory=list)
    """What it answered 2xx to and the answer went out, in arrival order (duplicates kept)."""
    bad_signatures: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        verify = documented_verifier()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers answer

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    number = receiver.requests
                    receiver.requests += 1
                mode = receiver.behaviour(number)
                if mode == "reset":
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "hang":
                    time.sleep(receiver.hang_s)
                    self._answer(200)  # the client gave up: this answer is never read
                    return
                if mode == "fail":
                    self._answer(500)
                    return
                if mode == "slow":
                    time.sleep(receiver.slow_s)
                if receiver.secret and not verify(
                    receiver.secret, self.headers.get("Provenance-Signature", ""), body
                ):
                    with receiver._lock:
                        receiver.bad_signatures += 1
                    self._answer(401)
                    return
                message = json.loads(body)
                if receiver.refuse_lot is not None and message["event"]["lot_id"] == receiver.refuse_lot:
                    self._answer(500)
                    return
                if message["id"] != self.headers.get("Provenance-Delivery-Id"):
                    self._answer(400)
                    return
                chain = message["chain"]
                received = Received(
                    message["id"],
                    message["type"],
                    message["event"]["lot_id"],
                    chain["block_number"],
                    chain["tx_index"],
                    chain["log_index"],
                    message,
                    time.time(),
                    number,
                )
                if self._answer(204):
                    receiver._acknowledge(received)

            def _answer(self, status: int) -> bool:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                    return True
                except OSError:
                    return False

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), name="receiver", daemon=True).start()
        return self

    def _acknowledge(self, item: Received) -> None:
        with self._lock:
            self.acknowledged.append(item)

    def stop(self) -> None:
        """Down: the port refuses connections until `start` again (the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self, kind: str = "event") -> list[str]:
        return [item.id for item in self.items() if item.type == kind]

    def items(self) -> list[Received]:
        """What was acknowledged, in the order it arrived."""
        with self._lock:
            return sorted(self.acknowledged, key=lambda item: item.arrival)


def running_receiver(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def main() -> None:
    """A receiver in a process of its own (bench/deliveries.py): prints its port, reads the secret
    from its first line of input, then prints a JSON line for every message it acknowledged."""
    import argparse
    import random
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rng, lock = random.Random(options.seed), threading.Lock()

    def flaky(_number: int) -> str:
        with lock:
            return "fail" if rng.random() < options.fail_rate else "ok"

    printed = threading.Lock()

    class Printing(Receiver):
        def _acknowledge(self, item: Received) -> None:
            fields = {
                "id": item.id,
                "type": item.type,
                "lot": item.lot_id,
                "block": item.block_number,
                "tx": item.tx_index,
            }
            with printed:
                print(json.dumps({**fields, "arrival": item.arrival, "at": item.at}), flush=True)

    receiver = Printing(behaviour=flaky).start()
    print(receiver.port, flush=True)
    receiver.secret = sys.stdin.readline().strip()
    sys.stdin.readline()  # the end of input (or a line) stops it
    receiver.stop()
    print(json.dumps({"calls": receiver.requests, "bad_signatures": receiver.bad_signatures}), flush=True)


if __name__ == "__main__":
    main()

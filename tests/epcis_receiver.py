"""An EPCIS query subscriber's callback for tests: a small threaded HTTP server on 127.0.0.1 that
checks `GS1-Signature` with the recipe of docs/deliveries.md (read from the page) under the
subscription's `signatureToken`, and answers 500 to the calls `fails` picks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.delivery_receiver import documented_verifier

TOKEN = "13df38d8275b13f05704629e5f1cf3d45d6132d5"  # GS1's example signatureToken


@dataclass
class EpcisReceiver:
    """A subscriber's callback: verifies `GS1-Signature`, answers 500 to the calls `fails` picks."""

    fails: Callable[[int], bool] = lambda _n: False
    token: str = TOKEN
    acknowledged: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: int = 0
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/epcis-callback"

    def start(self) -> EpcisReceiver:
        verify, receiver = documented_verifier(), self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    number = receiver.requests
                    receiver.requests += 1
                status = 204
                if receiver.fails(number):
                    status = 500
                elif not verify(receiver.token, self.headers.get("GS1-Signature", ""), body):
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    status = 401
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 204:
                    with receiver.lock:
                        receiver.acknowledged.append(
                            (self.headers["Provenance-Delivery-Id"], json.loads(body))
                        )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def documents(self) -> list[dict[str, Any]]:
        with self.lock:
            return [document for _, document in self.acknowledged]

    def events(self) -> list[dict[str, Any]]:
        return [
            event
            for document in self.documents()
            if "epcisBody" in document
            for event in document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        ]

    def retractions(self) -> list[dict[str, Any]]:
        """The RFC 7807 bodies of retractions, in arrival order."""
        return [document for document in self.documents() if "epcisBody" not in document]

"""A city data hub for tests: a threaded HTTP server on 127.0.0.1 that takes NGSI-LD batch
operations as ETSI GS CIM 009 V1.8.1 defines them (clause 6.15.3.1 upsert, 6.17.3.1 delete: 201
or 204 when every entity was taken, 207 with a BatchOperationResult naming each error, 400 for a
request it cannot read) or as KETI's ingest interface does (`{"datasetId", "entities"}` in,
200 with `success`/`errors` out), behind an OAuth 2.0 client-credentials token endpoint.

It fails on purpose, from a seeded random source: a whole batch answered 500 (nothing applied),
some entities of a batch refused with a 4xx each (the rest applied), a token revoked (401). It
keeps each entity as an NGSI-LD broker would (an update merges attributes, a replace sets them)
and checks, per OreLot, that each fact it applies comes after the last one it applied
(`lastFact.chainPosition`): what came out of order or twice is recorded, never hidden.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.ngsi_ld_checks import NotNgsiLd, check_entity

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CLIENT_ID = "mineral-provenance"
CLIENT_SECRET = "hub-client-secret-" + "x" * 16  # the test hub's own client


def problem(kind: str, detail: str) -> dict[str, str]:
    return {"type": ERRORS + kind, "title": kind, "detail": detail}


@dataclass
class HubReceiver:
    api: str = "etsi"
    """etsi: ETSI's bodies and statuses; keti: KETI's ingest interface."""
    seed: int = 0
    fail_batch: float = 0.0
    """Chance that a batch is answered 500 and nothing of it applied."""
    refuse_entity: float = 0.0
    """Chance that each entity of a batch is refused (4xx for it alone)."""
    revoke_token: float = 0.0
    """Chance that a request finds its token revoked (401)."""
    dataset_prefix: str = "mineral-provenance-"
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    out_of_order: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    applied: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    """(OreLot id, chain position of the fact) in the order applied."""
    batch_sizes: list[int] = field(default_factory=list)
    batches_failed: int = 0
    entities_refused: int = 0
    tokens_issued: int = 0
    unauthorised: int = 0
    _tokens: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/ngsi-ld/v1" if self.api == "etsi" else "")

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2.0/token"

    # ------------------------------------------------------------------ the server

    @contextmanager
    def running(self) -> Iterator[HubReceiver]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = hub.handle(self.path, dict(self.headers.items()), body)
                payload = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = urlsplit(path)
        with self._lock:
            if parts.path == "/oauth2.0/token":
                return self._token(body)
            token = headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self._tokens or self._random.random() < self.revoke_token:
                self._tokens.discard(token)
                self.unauthorised += 1
                return 401, problem("InvalidRequest", "no valid token")
            base = "/ngsi-ld/v1" if self.api == "etsi" else ""
            options = parse_qs(parts.query).get("options", [""])[0]
            if parts.path == base + "/entityOperations/upsert":
                return self._batch(body, headers, "upsert", update=options == "update")
            if parts.path == base + "/entityOperations/delete":
                return self._batch(body, headers, "delete", update=False)
            return 404, problem("ResourceNotFound", parts.path)

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["client_credentials"] or form.get("client_id") != [CLIENT_ID]:
            return 400, {"error": "invalid_request"}
        if form.get("client_secret") != [CLIENT_SECRET]:
            return 401, {"error": "invalid_client"}
        token = secrets.token_urlsafe(16)
        self._tokens.add(token)
        self.tokens_issued += 1
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 3600}

    def _batch(
        self, body: bytes, headers: dict[str, str], operation: str, *, update: bool
    ) -> tuple[int, Any]:
        try:
            document = json.loads(body)
        except ValueError:
            return 400, problem("InvalidRequest", "not JSON")
        if self.api == "keti":
            if not isinstance(document, dict) or not document.get("datasetId"):
                return 400, {"type": "C009", "title": "INVALID_PARAMETER", "detail": "datasetId is null"}
            dataset, items = document["datasetId"], document.get("entities") or []
        else:
            if not isinstance(document, list):
                return 400, problem("BadRequestData", "a batch is an array")
            if operation == "upsert" and headers.get("Content-Type") != "application/ld+json":
                return 400, problem("BadRequestData", "entities with @context need application/ld+json")
            dataset, items = None, document
        self.batch_sizes.append(len(items))
        if self._random.random() < self.fail_batch:
            self.batches_failed += 1
            return 500, problem("InternalError", "the hub failed (on purpose)")
        success: list[str] = []
        errors: list[dict[str, Any]] = []
        for item in items:
            entity_id = item if isinstance(item, str) else item.get("id")
            refusal = self._refusal(item, dataset, operation)
            if refusal is None and self._random.random() < self.refuse_entity:
                self.entities_refused += 1
                refusal = problem("BadRequestData", "refused on purpose")
            if refusal is None:
                refusal = self._apply(item, operation, update)
            if refusal is None:
                success.append(entity_id)
            else:
                errors.append({"entityId": entity_id, "error": refusal})
        if self.api == "keti":
            return 200, {"success": success or None, "errors": errors or None}
        if not errors:
            return 204, None
        return 207, {"success": success, "errors": errors}

    def _refusal(self, item: Any, dataset: str | None, operation: str) -> dict[str, str] | None:
        if operation == "delete":
            entity_id = item if isinstance(item, str) else item.get("id")
            if not isinstance(entity_id, str):
                return problem("BadRequestData", "an id")
            return None
        if not isinstance(item, dict):
            return problem("BadRequestData", "an entity is an object")
        if item.get("@context") is None:
            self.malformed.append(f"{item.get('id')}: no @context")
        try:
            check_entity(item, where=str(item.get("id")))
        except NotNgsiLd as error:
            self.malformed.append(str(error))
            return problem("BadRequestData", str(error))
        if dataset is not None and dataset != self.dataset_prefix + str(item.get("type")):
            return problem("BadRequestData", f"{item.get('type')} does not belong in dataset {dataset}")
        return None

    def _apply(self, item: Any, operation: str, update: bool) -> dict[str, str] | None:
        if operation == "delete":
            entity_id = item if isinstance(item, str) else item["id"]
            if self.entities.pop(entity_id, None) is None:
                return problem("ResourceNotFound", f"no entity {entity_id}")
            return None
        entity_id = item["id"]
        attributes = {key: value for key, value in item.items() if key != "@context"}
        held = self.entities.get(entity_id)
        if item.get("type") == "OreLot" and "lastFact" in item:
            position = tuple(item["lastFact"]["chainPosition"]["value"])
            if held is not None and update and "lastFact" in held:
                previous = tuple(held["lastFact"]["chainPosition"]["value"])
                if position == previous:
                    self.twice.append(f"{entity_id} at {position}")
                elif position < previous:
                    self.out_of_order.append(f"{entity_id}: {position} after {previous}")
            self.applied.append((entity_id, position))
        if held is None or not update:
            self.entities[entity_id] = attributes
        else:
            held.update(attributes)
        return None


def main() -> None:
    """As a process of its own (bench/deliveries.py --hub): prints its port, then one JSON line per
    OreLot fact applied ({"lot", "block", "tx", "log", "at"}), and its totals once stdin ends."""
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-rate", type=float, default=0.0, help="batches answered 500")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    printed = threading.Lock()

    class Printing(HubReceiver):
        def _apply(self, item: Any, operation: str, update: bool) -> dict[str, str] | None:
            refusal = super()._apply(item, operation, update)
            if refusal is None and operation == "upsert" and item.get("type") == "OreLot":
                block, tx, log = item["lastFact"]["chainPosition"]["value"]
                line = {
                    "lot": item["id"].rsplit(":", 1)[1],
                    "block": block,
                    "tx": tx,
                    "log": log,
                    "at": time.time(),
                }
                with printed:
                    print(json.dumps(line), flush=True)
            return refusal

    hub = Printing(seed=options.seed, fail_batch=options.fail_rate)
    hub._tokens.add("")  # no OAuth in the benchmark: requests without a token are let in
    with hub.running():
        print(hub.port, flush=True)
        sys.stdin.readline()
    totals = {
        "calls": len(hub.batch_sizes),
        "failed_batches": hub.batches_failed,
        "twice": len(hub.twice),
        "out_of_order": len(hub.out_of_order),
        "malformed": len(hub.malformed),
    }
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main()

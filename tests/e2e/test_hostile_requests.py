"""Hostile and malformed requests against the real app over HTTP: each is refused with a specific
status naming the offending field, writes nothing (no operation, no transaction, no block, no
stored document), and no private key or API token shows in any answer or log line.

What only the chain knows (a lot unknown, consumed or held by someone else) is not refused before
it is stored: the outbox pipelines writes, so a lot registered a moment ago may be consumed by the
next request before its registration is mined, and a check against the latest block would refuse
that legitimate sequence. Those requests are stored (202) and fail with the registry's decoded
error, leaving the chain as it was: `CHAIN_REFUSED` below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount
from sqlalchemy import text

from provenance.chain.keys import dev_key_ref
from provenance.chain.signing import sign_assay, sign_load
from provenance.domain.records import Assay, LotRegistration
from provenance.domain.values import MAX_MASS_G
from tests.e2e.conftest import (
    EXTRACTED_AT,
    MAX_DOCUMENT_BYTES,
    MAX_REQUEST_BYTES,
    SITE,
    Account,
    Stack,
    digest,
    error_of,
    lot_body,
)

UINT96_OVER = 2**96
SQL = "' OR '1'='1' --"
DROP = "SH2'; DROP TABLE operations; --"
TRAVERSAL = "../../keys/operator.key"
ENCODED_TRAVERSAL = "..%2F..%2Fkeys%2Foperator.key"


# ------------------------------------------------------------------ logs of the whole module


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as error:  # a record that cannot format is itself worth seeing
            self.lines.append(f"unformattable record {record.msg!r}: {error!r}")


@pytest.fixture(scope="module")
def log_lines() -> Iterator[list[str]]:
    """Every log line (DEBUG and up, any logger, tracebacks included) while this module runs."""
    handler = _Lines()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# ------------------------------------------------------------------ the world the requests attack


@dataclass
class World:
    stack: Stack
    held: str
    """A confirmed lot the operator holds."""
    foreign: str
    """A confirmed lot the clerk holds."""
    consumed: str
    """A lot the operator held and processed entirely."""
    recorded_assay: dict[str, Any]
    """A lab-signed assay the registry has recorded."""
    device: LocalAccount
    revoked_device: LocalAccount
    revoked_token: str
    operator_operation: str
    """An operation of the operator's account."""
    log_lines: list[str]

    @property
    def chain_id(self) -> int:
        return self.stack.runtime.client.chain_id

    @property
    def registry(self) -> str:
        return self.stack.runtime.client.address

    def secrets(self) -> list[str]:
        """The dev keyring's private keys (both spellings) and every API token of this module."""
        keys = [
            path.read_text(encoding="ascii").strip().lower().removeprefix("0x")
            for path in (self.stack.settings.data_dir / "keys").glob("*.key")
        ]
        tokens = [a.token for a in self.accounts()] + [self.revoked_token]
        return [*keys, *("0x" + key for key in keys), *tokens]

    def accounts(self) -> list[Account]:
        stack = self.stack
        return [stack.operator, stack.clerk, stack.lab, stack.buyer]

    def footprint(self) -> tuple[int, int, int, int]:
        """(operations, outbox transactions, chain head, stored files): what a write changes."""
        with self.stack.runtime.engine.connect() as connection:
            operations = connection.execute(text("SELECT count(*) FROM operations")).scalar_one()
            transactions = connection.execute(text("SELECT count(*) FROM outbox_transactions")).scalar_one()
        documents = self.stack.settings.data_dir / "documents"
        files = sum(1 for path in documents.rglob("*") if path.is_file()) if documents.exists() else 0
        return operations, transactions, self.stack.w3.eth.block_number, files

    def assert_no_secret(self, response: httpx.Response) -> None:
        seen = (response.text + json.dumps(dict(response.headers))).lower()
        for secret in self.secrets():
            assert secret.lower() not in seen, "a key or token in the answer"

    def signed_assay(self, signer: LocalAccount, **changes: Any) -> dict[str, Any]:
        """A fresh assay of the held lot signed by `signer` (chain_id, registry: for another domain)."""
        chain_id = changes.pop("chain_id", self.chain_id)
        registry = changes.pop("registry", self.registry)
        fields: dict[str, Any] = {
            "lot_id": self.held,
            "grade_ppm": 11_800,
            "method": "XRF",
            "certificate_hash": digest(f"cert {changes}"),
            "assayed_at": EXTRACTED_AT + 3600,
        } | changes
        assay = Assay(**{**fields, "certificate_hash": bytes.fromhex(fields["certificate_hash"][2:])})
        signature = sign_assay(signer, chain_id, registry, assay)
        return {"assay": fields, "signature": "0x" + signature.hex()}

    def attested_lot(self, signer: LocalAccount, lot_id: str | None = None, **changes: Any) -> dict[str, Any]:
        """A new lot of SH2 with a load signed by `signer` (chain_id: for another chain)."""
        chain_id = changes.pop("chain_id", self.chain_id)
        body = lot_body(lot_id or self.stack.lot_id())
        del body["site"]
        trip_id = "T01-" + body["lot_id"][-5:]
        lot = LotRegistration(
            lot_id=body["lot_id"],
            site=SITE,
            face=body["face"],
            commodity=body["commodity"],
            mass_g=body["mass_g"],
            grade_ppm=body["grade_ppm"],
            extracted_at=body["extracted_at"],
            record_hash=bytes.fromhex(body["record_hash"][2:]),
        )
        signature = sign_load(signer, chain_id, self.registry, lot, trip_id, EXTRACTED_AT)
        return body | {"trip_id": trip_id, "loaded_at": EXTRACTED_AT, "signature": "0x" + signature.hex()}


@pytest.fixture(scope="module")
def world(log_lines: list[str], stack: Stack) -> World:
    held = stack.register()
    foreign = stack.register(stack.clerk)
    consumed = stack.register(mass_g=1_000)
    out = stack.lot_id()
    processed = stack.write(
        "/v1/transformations",
        stack.operator,
        {
            "kind": "process",
            "site": SITE,
            "inputs": [{"lot_id": consumed, "mass_g": 1_000}],
            "outputs": [
                {
                    "lot_id": out,
                    "commodity": "COKE",
                    "mass_g": 900,
                    "grade_ppm": 0,
                    "record_hash": digest(out),
                }
            ],
            "loss_g": 100,
            "record_hash": digest(f"process {consumed}"),
        },
    )
    assert processed["status"] == "confirmed", processed
    client = stack.runtime.client
    device, revoked_device = EthAccount.create(), EthAccount.create()
    for scale in (device, revoked_device):
        client.add_device(stack.admin, scale.address, SITE, "truck-scale")
    client.revoke_device(stack.admin, revoked_device.address)
    _, revoked_token = stack.runtime.credentials.create(
        "hostile-revoked", stack.operator.address, dev_key_ref("operator")
    )
    assert stack.runtime.credentials.revoke("hostile-revoked")
    world = World(
        stack, held, foreign, consumed, {}, device, revoked_device, revoked_token, processed["id"], log_lines
    )
    world.recorded_assay = world.signed_assay(stack.lab.key)
    recorded = stack.write("/v1/assays", stack.buyer, world.recorded_assay)
    assert recorded["status"] == "confirmed", recorded
    return world


# ------------------------------------------------------------------ the table

Send = Callable[[World], httpx.Response]
Body = Any | Callable[[World], Any]


@dataclass(frozen=True)
class Hostile:
    id: str
    status: int
    fragment: str
    """Found in the error's field or message (or, for a 200, in the answer)."""
    send: Send


def _who(world: World, who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    if who == "revoked":
        return {"Authorization": f"Bearer {world.revoked_token}"}
    account: Account = getattr(world.stack, who)
    return account.auth


def _body(world: World, body: Body) -> Any:
    return body(world) if callable(body) else body


def post(path: str, body: Body, who: str | None = "operator", headers: dict[str, str] | None = None) -> Send:
    def send(world: World) -> httpx.Response:
        sent = {**_who(world, who), **(headers or {})}
        return world.stack.http.post(path, json=_body(world, body), headers=sent)

    return send


def raw(path: str, content: bytes | Iterator[bytes] | Callable[[], Iterator[bytes]], **headers: str) -> Send:
    """POSTs `content` as it is, as the operator (a callable: a chunked body, no Content-Length)."""

    def send(world: World) -> httpx.Response:
        sent = {**world.stack.operator.auth, "Content-Type": "application/json", **headers}
        body = content() if callable(content) else content
        return world.stack.http.post(path, content=body, headers=sent)

    return send


def get(path: str | Callable[[World], str], who: str | None = None, **params: Any) -> Send:
    def send(world: World) -> httpx.Response:
        url = path(world) if callable(path) else path
        return world.stack.http.get(url, params=params, headers=_who(world, who))

    return send


def upload(lot_id: str | Callable[[World], str], size: int, kind: str = "ticket") -> Send:
    def send(world: World) -> httpx.Response:
        lot = lot_id(world) if callable(lot_id) else lot_id
        return world.stack.http.post(
            f"/v1/lots/{lot}/documents",
            files={"file": ("ticket.pdf", b"%PDF" + b"x" * (size - 4), "application/pdf")},
            data={"kind": kind},
            headers=world.stack.operator.auth,
        )

    return send


def new_lot(**changes: Any) -> Callable[[World], dict[str, Any]]:
    return lambda world: lot_body(world.stack.lot_id(), **changes)


def batch(*changes: dict[str, Any], count: int | None = None) -> Callable[[World], dict[str, Any]]:
    def body(world: World) -> dict[str, Any]:
        items = [dict(c) for c in changes] if count is None else [{} for _ in range(count)]
        lots = []
        for item in items:
            lot = lot_body(item.pop("lot_id", None) or world.stack.lot_id(), **item)
            del lot["site"]
            lots.append(lot)
        return {"site": SITE, "lots": lots}

    return body


def transformation(
    inputs: Callable[[World], list[tuple[str, int]]], outputs_g: list[int], loss_g: int, kind: str = "process"
) -> Callable[[World], dict[str, Any]]:
    def body(world: World) -> dict[str, Any]:
        outs = []
        for mass_g in outputs_g:
            out = world.stack.lot_id()
            outs.append(
                {
                    "lot_id": out,
                    "commodity": "COKE",
                    "mass_g": mass_g,
                    "grade_ppm": 0,
                    "record_hash": digest(out),
                }
            )
        return {
            "kind": kind,
            "site": SITE,
            "inputs": [{"lot_id": lot, "mass_g": g} for lot, g in inputs(world)],
            "outputs": outs,
            "loss_g": loss_g,
            "record_hash": digest("transformation"),
        }

    return body


def with_output_id(
    body: Callable[[World], dict[str, Any]], pick: Callable[[World], str]
) -> Callable[[World], Any]:
    def changed(world: World) -> dict[str, Any]:
        made = body(world)
        made["outputs"][0]["lot_id"] = pick(world)
        return made

    return changed


def attested(*lots: Callable[[World], dict[str, Any]]) -> Callable[[World], dict[str, Any]]:
    return lambda world: {"site": SITE, "lots": [lot(world) for lot in lots]}


def copied_signature(world: World) -> dict[str, Any]:
    """Two lots, the second carrying the first's (genuine) signature."""
    first = world.attested_lot(world.device)
    second = world.attested_lot(world.device)
    return {"site": SITE, "lots": [first, second | {"signature": first["signature"]}]}


def tampered_assay(world: World) -> dict[str, Any]:
    signed = world.signed_assay(world.stack.lab.key, grade_ppm=100)
    signed["assay"]["grade_ppm"] = 200
    return signed


def over_million(signed: dict[str, Any]) -> dict[str, Any]:
    signed["assay"]["grade_ppm"] = 1_000_001
    return signed


def chunks(total: int, size: int = 64 * 1024) -> Callable[[], Iterator[bytes]]:
    def generate() -> Iterator[bytes]:
        yield b'{"site": "SH2", "lots": ['
        sent = 0
        while sent < total:
            yield b" " * size
            sent += size
        yield b"]}"

    return generate


def chunked_upload(total: int) -> Send:
    def send(world: World) -> httpx.Response:
        boundary = "hostile-boundary"

        def body() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            for _ in range(total // 65536 + 1):
                yield b"x" * 65536
            yield f"\r\n--{boundary}--\r\n".encode()

        return world.stack.http.post(
            f"/v1/lots/{world.held}/documents",
            content=body(),
            headers={
                **world.stack.operator.auth,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )

    return send


def forged_key() -> LocalAccount:
    return EthAccount.create()


HIGH_S_SIGNATURE = "0x" + "11" * 32 + "ff" * 32 + "1b"
ZERO_ADDRESS = "0x" + "00" * 20
NESTED = b'{"site": "SH2", "lots": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"


CASES: list[Hostile] = [
    # ---------------------------------------------------------------- tokens
    Hostile("no-token", 401, "Authorization", post("/v1/lots", new_lot(), who=None)),
    Hostile(
        "basic-auth",
        401,
        "Authorization",
        post("/v1/lots", new_lot(), None, {"Authorization": "Basic b3A6cHc="}),
    ),
    Hostile(
        "unknown-token",
        401,
        "not valid",
        post("/v1/lots", new_lot(), None, {"Authorization": "Bearer prv_x"}),
    ),
    Hostile(
        "sql-token", 401, "not valid", post("/v1/lots", new_lot(), None, {"Authorization": f"Bearer {SQL}"})
    ),
    Hostile(
        "huge-token",
        401,
        "not valid",
        post("/v1/lots", new_lot(), None, {"Authorization": "Bearer " + "a" * 8000}),
    ),
    Hostile("revoked-token", 401, "revoked", post("/v1/lots", new_lot(), who="revoked")),
    Hostile("revoked-token-read", 401, "revoked", get("/v1/operations/x", who="revoked")),
    Hostile("token-in-query", 401, "Authorization", get("/v1/operations/x", token="prv_x")),
    Hostile("buyer-registers", 403, "registrar of site SH2", post("/v1/lots", new_lot(), who="buyer")),
    Hostile(
        "clerk-transforms",
        403,
        "PROCESSOR_ROLE",
        post("/v1/transformations", transformation(lambda w: [(w.held, 10)], [10], 0), who="clerk"),
    ),
    Hostile(
        "buyer-signs-assay",
        403,
        "LAB_ROLE",
        post("/v1/assays/sign", lambda w: w.signed_assay(w.stack.lab.key)["assay"], who="buyer"),
    ),
    Hostile(
        "buyer-attests",
        403,
        "registrar of site SH2",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(w.device)), who="buyer"),
    ),
    Hostile(
        "other-users-operation",
        404,
        "no operation",
        get(lambda w: f"/v1/operations/{w.operator_operation}", who="buyer"),
    ),
    # ---------------------------------------------------------------- masses, grades, times
    Hostile("negative-mass", 422, "mass_g", post("/v1/lots", new_lot(mass_g=-1))),
    Hostile("zero-mass", 422, "mass_g", post("/v1/lots", new_lot(mass_g=0))),
    Hostile("mass-over-int63", 422, "mass_g", post("/v1/lots", new_lot(mass_g=MAX_MASS_G + 1))),
    Hostile("mass-over-uint96", 422, "mass_g", post("/v1/lots", new_lot(mass_g=UINT96_OVER))),
    Hostile("mass-huge-int", 422, "mass_g", post("/v1/lots", new_lot(mass_g=10**400))),
    Hostile("mass-float", 422, "mass_g", post("/v1/lots", new_lot(mass_g=1.5))),
    Hostile("mass-string", 422, "mass_g", post("/v1/lots", new_lot(mass_g="100"))),
    Hostile("mass-bool", 422, "mass_g", post("/v1/lots", new_lot(mass_g=True))),
    Hostile(
        "mass-nan",
        422,
        "mass_g",
        raw(
            "/v1/lots",
            b'{"site":"SH2","lot_id":"NAN-1","face":"F","commodity":"C","mass_g":NaN,"grade_ppm":1,"extracted_at":1,"record_hash":"0x'
            + b"ab" * 32
            + b'"}',
        ),
    ),
    Hostile("grade-over-million", 422, "grade_ppm", post("/v1/lots", new_lot(grade_ppm=1_000_001))),
    Hostile("grade-negative", 422, "grade_ppm", post("/v1/lots", new_lot(grade_ppm=-1))),
    Hostile("time-negative", 422, "extracted_at", post("/v1/lots", new_lot(extracted_at=-1))),
    Hostile("time-over-uint64", 422, "extracted_at", post("/v1/lots", new_lot(extracted_at=2**64))),
    Hostile(
        "batch-mass-over-uint96",
        422,
        "lots[1].mass_g",
        post("/v1/lots/batch", batch({}, {"mass_g": UINT96_OVER})),
    ),
    Hostile(
        "batch-grade-over-million",
        422,
        "lots[0].grade_ppm",
        post("/v1/lots/batch", batch({"grade_ppm": 2_000_000})),
    ),
    Hostile(
        "transform-input-mass-zero",
        422,
        "inputs[0].mass_g",
        post("/v1/transformations", transformation(lambda w: [(w.held, 0)], [1], 0)),
    ),
    Hostile(
        "transform-loss-negative",
        422,
        "loss_g",
        post("/v1/transformations", transformation(lambda w: [(w.held, 10)], [11], -1)),
    ),
    # ---------------------------------------------------------------- transformations the domain refuses
    Hostile(
        "transform-creates-mass",
        422,
        "loss_g",
        post("/v1/transformations", transformation(lambda w: [(w.held, 1_000)], [1_001], 0)),
    ),
    Hostile(
        "transform-hides-loss",
        422,
        "loss_g",
        post("/v1/transformations", transformation(lambda w: [(w.held, 1_000)], [900], 0)),
    ),
    Hostile(
        "transform-phantom-loss",
        422,
        "loss_g",
        post("/v1/transformations", transformation(lambda w: [(w.held, 1_000)], [1_000], 5)),
    ),
    Hostile(
        "transform-duplicate-input",
        422,
        "inputs[1].lot_id",
        post("/v1/transformations", transformation(lambda w: [(w.held, 10), (w.held, 10)], [20], 0, "merge")),
    ),
    Hostile(
        "transform-output-is-input",
        422,
        "outputs[0].lot_id",
        post(
            "/v1/transformations",
            with_output_id(transformation(lambda w: [(w.held, 10)], [10], 0), lambda w: w.held),
        ),
    ),
    Hostile(
        "transform-unknown-kind",
        422,
        "kind",
        post(
            "/v1/transformations",
            lambda w: transformation(lambda w: [(w.held, 10)], [10], 0)(w) | {"kind": "smelt"},
        ),
    ),
    # ---------------------------------------------------------------- batches
    Hostile(
        "batch-duplicate-ids",
        422,
        "lots[1].lot_id",
        post("/v1/lots/batch", lambda w: batch({"lot_id": "DUP-1"}, {"lot_id": "DUP-1"})(w)),
    ),
    Hostile("batch-over-1000", 422, "lots", post("/v1/lots/batch", batch(count=1_001))),
    Hostile("batch-empty", 422, "lots", post("/v1/lots/batch", {"site": SITE, "lots": []})),
    Hostile(
        "handover-duplicate-ids",
        422,
        "lot_ids",
        post("/v1/handovers", lambda w: {"lot_ids": [w.held, w.held], "to": w.stack.buyer.address}),
    ),
    Hostile(
        "accept-over-1000",
        422,
        "lot_ids",
        post("/v1/handovers/accept", {"lot_ids": [f"L{i}" for i in range(1_001)]}),
    ),
    # ---------------------------------------------------------------- hex and addresses
    Hostile("hash-short", 422, "record_hash", post("/v1/lots", new_lot(record_hash="0x1234"))),
    Hostile("hash-not-hex", 422, "record_hash", post("/v1/lots", new_lot(record_hash="0x" + "zz" * 32))),
    Hostile("hash-no-prefix", 422, "record_hash", post("/v1/lots", new_lot(record_hash="ab" * 32))),
    Hostile(
        "address-short", 422, "to", post("/v1/handovers", lambda w: {"lot_ids": [w.held], "to": "0x1234"})
    ),
    Hostile(
        "address-not-hex",
        422,
        "to",
        post("/v1/handovers", lambda w: {"lot_ids": [w.held], "to": "0x" + "g" * 40}),
    ),
    Hostile(
        "address-zero", 422, "to", post("/v1/handovers", lambda w: {"lot_ids": [w.held], "to": ZERO_ADDRESS})
    ),
    Hostile(
        "device-address-sql",
        422,
        "device",
        post("/v1/devices", {"device": SQL, "site": SITE, "kind": "scale"}),
    ),
    Hostile("device-path-not-address", 422, "address", get("/v1/devices/0xZZ")),
    Hostile(
        "signature-short",
        422,
        "signature",
        post("/v1/assays", lambda w: w.signed_assay(w.stack.lab.key) | {"signature": "0x1b"}),
    ),
    # ---------------------------------------------------------------- EIP-712 assays
    Hostile(
        "assay-forged",
        422,
        "signature",
        post("/v1/assays", lambda w: w.signed_assay(forged_key()), who="buyer"),
    ),
    Hostile("assay-tampered", 422, "signature", post("/v1/assays", tampered_assay, who="buyer")),
    Hostile(
        "assay-wrong-chain",
        422,
        "signature",
        post("/v1/assays", lambda w: w.signed_assay(w.stack.lab.key, chain_id=w.chain_id + 1), who="buyer"),
    ),
    Hostile(
        "assay-wrong-registry",
        422,
        "signature",
        post("/v1/assays", lambda w: w.signed_assay(w.stack.lab.key, registry=ZERO_ADDRESS), who="buyer"),
    ),
    Hostile("assay-replayed", 422, "signature", post("/v1/assays", lambda w: w.recorded_assay, who="buyer")),
    Hostile(
        "assay-high-s",
        422,
        "signature",
        post("/v1/assays", lambda w: w.signed_assay(w.stack.lab.key) | {"signature": HIGH_S_SIGNATURE}),
    ),
    Hostile(
        "assay-grade-over-million",
        422,
        "assay.grade_ppm",
        post("/v1/assays", lambda w: over_million(w.signed_assay(w.stack.lab.key))),
    ),
    # ---------------------------------------------------------------- device attestations
    Hostile(
        "load-forged",
        422,
        "lots[0].signature",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(forged_key()))),
    ),
    Hostile(
        "load-revoked-device",
        422,
        "lots[0].signature",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(w.revoked_device))),
    ),
    Hostile("load-signature-copied", 422, "lots[1].signature", post("/v1/lots/attested", copied_signature)),
    Hostile(
        "load-wrong-chain",
        422,
        "lots[0].signature",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(w.device, chain_id=w.chain_id + 1))),
    ),
    Hostile(
        "load-tampered-mass",
        422,
        "lots[0].signature",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(w.device) | {"mass_g": 1})),
    ),
    Hostile(
        "load-signature-malformed",
        422,
        "lots[0].signature",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(w.device) | {"signature": "0xnothex"})),
    ),
    # ---------------------------------------------------------------- bodies
    Hostile("body-not-utf8", 400, "parsing the body", raw("/v1/lots", b'{"site": "\xff\xfe\xfd"}')),
    Hostile("body-deeply-nested", 422, "nested deeper", raw("/v1/lots/batch", NESTED)),
    Hostile(
        "body-nested-objects",
        422,
        "nested deeper",
        raw("/v1/lots/batch", b'{"site": "SH2", "lots": [' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"]}"),
    ),
    Hostile(
        "body-nested-within-limit",
        422,
        "lots[0]",
        raw("/v1/lots/batch", b'{"site": "SH2", "lots": [' + b'{"a":' * 8 + b"1" + b"}" * 8 + b"]}"),
    ),
    Hostile("body-array", 422, "", raw("/v1/lots", b"[1, 2, 3]")),
    Hostile("body-null", 422, "", raw("/v1/lots", b"null")),
    Hostile("body-truncated", 422, "", raw("/v1/lots", b'{"site": "SH2", "lots": [')),
    Hostile("body-extra-field", 422, "is_admin", post("/v1/lots", new_lot(is_admin=True))),
    Hostile("body-over-limit", 413, "limit", raw("/v1/lots/batch", b" " * (MAX_REQUEST_BYTES + 1))),
    Hostile("body-chunked-over-limit", 413, "limit", raw("/v1/lots/batch", chunks(MAX_REQUEST_BYTES + 1))),
    Hostile("upload-over-limit", 413, "", upload(lambda w: w.held, MAX_DOCUMENT_BYTES + 1)),
    Hostile("upload-chunked-over-limit", 413, "limit", chunked_upload(MAX_DOCUMENT_BYTES + 128 * 1024)),
    Hostile(
        "idempotency-key-too-long",
        422,
        "Idempotency-Key",
        post("/v1/lots", new_lot(), headers={"Idempotency-Key": "k" * 201}),
    ),
    Hostile(
        "wait-timeout-too-long",
        422,
        "timeout",
        lambda w: w.stack.http.post(
            "/v1/lots",
            json=lot_body(w.stack.lot_id()),
            params={"wait": "true", "timeout": 61},
            headers=w.stack.operator.auth,
        ),
    ),
    # ---------------------------------------------------------------- injection and traversal in strings
    Hostile("sql-lot-id", 422, "lot_id", post("/v1/lots", new_lot(lot_id=SQL))),
    Hostile("sql-site", 422, "site", post("/v1/lots", new_lot(site=DROP))),
    Hostile("sql-face", 422, "face", post("/v1/lots", new_lot(face=SQL))),
    Hostile("sql-commodity", 422, "commodity", post("/v1/lots", new_lot(commodity="COAL' --"))),
    Hostile("traversal-face", 422, "face", post("/v1/lots", new_lot(face=TRAVERSAL))),
    Hostile("nul-in-lot-id", 422, "lot_id", post("/v1/lots", new_lot(lot_id="A\x00B"))),
    Hostile("unicode-lot-id", 422, "lot_id", post("/v1/lots", new_lot(lot_id="LOT-\u202e1"))),
    Hostile("sql-handover-lot", 422, "lot_ids[0]", post("/v1/handovers/cancel", {"lot_ids": [SQL]})),
    Hostile(
        "sql-assay-method",
        422,
        "method",
        post(
            "/v1/assays/sign", lambda w: w.signed_assay(w.stack.lab.key)["assay"] | {"method": SQL}, who="lab"
        ),
    ),
    Hostile("sql-document-lot", 422, "lot_id", upload("A'%20OR%201=1", 10)),
    Hostile("traversal-document-lot", 404, "Not Found", upload(ENCODED_TRAVERSAL, 10)),  # no route
    Hostile("traversal-document-kind", 422, "kind", upload(lambda w: w.held, 10, kind=TRAVERSAL)),
    Hostile(
        "traversal-document-download",
        404,
        "Not Found",
        get(f"/v1/documents/{ENCODED_TRAVERSAL}", who="operator"),
    ),
    Hostile("sql-document-download", 422, "sha256", get("/v1/documents/x' OR '1'='1", who="operator")),
    Hostile("sql-operation-id", 404, "no operation", get(f"/v1/operations/{SQL}", who="operator")),
    Hostile(
        "traversal-operation-id",
        404,
        "Not Found",
        get(f"/v1/operations/{ENCODED_TRAVERSAL}", who="operator"),
    ),
    Hostile("sql-lot-read", 404, "", get(f"/v1/lots/{SQL}")),
    Hostile("traversal-lot-read", 404, "", get(f"/v1/lots/{ENCODED_TRAVERSAL}")),
    Hostile("sql-lot-provenance", 404, "", get(f"/v1/lots/{SQL}/provenance")),
    Hostile("sql-site-timeline", 200, '"events":[]', get(f"/v1/sites/{SQL}/timeline")),
    Hostile("sql-site-devices", 200, '"devices":[]', get(f"/v1/sites/{DROP}/devices")),
    Hostile("sql-lot-timeline", 404, "no lot", get(f"/v1/lots/{SQL}/timeline")),
    Hostile("sql-lot-custody", 404, "no lot", get(f"/v1/lots/{SQL}/custody")),
    Hostile("sql-lot-descendants", 404, "no lot", get(f"/v1/lots/{SQL}/descendants")),
    Hostile("sql-epcis-lot", 200, '"eventList":[]', get("/v1/epcis/events", lot=SQL)),
    Hostile("sql-timeline-cursor", 422, "cursor", get(lambda w: f"/v1/lots/{w.held}/timeline", cursor=SQL)),
    Hostile(
        "sql-idempotency-key",
        422,
        "mass_g",
        post("/v1/lots", new_lot(mass_g=0), headers={"Idempotency-Key": SQL}),
    ),
    Hostile(
        "sql-trip-id",
        422,
        "lots[0].trip_id",
        post("/v1/lots/attested", attested(lambda w: w.attested_lot(w.device) | {"trip_id": SQL})),
    ),
    Hostile(
        "sql-device-kind",
        422,
        "kind",
        post("/v1/devices", lambda w: {"device": w.device.address, "site": SITE, "kind": SQL}),
    ),
    Hostile("sql-site-filter", 200, '"lots":[]', get("/v1/lots", site=SQL)),
    Hostile("sql-commodity-filter", 200, '"lots":[]', get("/v1/lots", commodity=DROP)),
    Hostile("sql-custodian-filter", 422, "custodian", get("/v1/lots", custodian=SQL)),
    Hostile("sql-status-filter", 422, "status", get("/v1/lots", status=SQL)),
    Hostile("sql-cursor", 422, "cursor", get("/v1/lots", cursor=SQL)),
    Hostile("sql-extracted-from", 422, "extracted_from", get("/v1/lots", extracted_from=SQL)),
    Hostile("negative-limit", 422, "limit", get("/v1/lots", limit=-1)),
    Hostile("sql-period", 422, "period", get(f"/v1/sites/{SITE}/mass-balance", period=SQL)),
    Hostile("traversal-period", 422, "period", get(f"/v1/sites/{SITE}/mass-balance", period=TRAVERSAL)),
    Hostile("sql-tolerance", 422, "tolerance", get(f"/v1/sites/{SITE}/mass-balance", tolerance=SQL)),
    Hostile("sql-epcis-from", 422, "from", get("/v1/epcis/events", **{"from": SQL})),
    # ---------------------------------------------------------------- corrections and stock counts
    Hostile(
        "correction-sql-lot",
        422,
        "lot_id",
        post(
            "/v1/corrections",
            {"lot_id": SQL, "reason": "incorrect_data", "adjustment_g": -1, "record_hash": digest("c")},
        ),
    ),
    Hostile(
        "correction-reason-unknown",
        422,
        "reason",
        post(
            "/v1/corrections",
            lambda w: {"lot_id": w.held, "reason": DROP, "adjustment_g": -1, "record_hash": digest("c")},
        ),
    ),
    Hostile(
        "correction-overflow",
        422,
        "adjustment_g",
        post(
            "/v1/corrections",
            lambda w: {
                "lot_id": w.held,
                "reason": "incorrect_data",
                "adjustment_g": -(2**255),
                "record_hash": digest("c"),
            },
        ),
    ),
    Hostile(
        "correction-float",
        422,
        "adjustment_g",
        post(
            "/v1/corrections",
            lambda w: {
                "lot_id": w.held,
                "reason": "incorrect_data",
                "adjustment_g": -1.5,
                "record_hash": digest("c"),
            },
        ),
    ),
    Hostile(
        "correction-extra-field",
        422,
        "custodian",
        post(
            "/v1/corrections",
            lambda w: {
                "lot_id": w.held,
                "reason": "incorrect_data",
                "adjustment_g": -1,
                "record_hash": digest("c"),
                "custodian": SQL,
            },
        ),
    ),
    Hostile(
        "correction-no-token",
        401,
        "",
        post(
            "/v1/corrections",
            lambda w: {
                "lot_id": w.held,
                "reason": "incorrect_data",
                "adjustment_g": -1,
                "record_hash": digest("c"),
            },
            who=None,
        ),
    ),
    Hostile(
        "stock-count-traversal-site",
        422,
        "site",
        post(
            "/v1/stock-counts",
            {"site": TRAVERSAL, "counted_g": 1, "counted_at": EXTRACTED_AT, "record_hash": digest("s")},
        ),
    ),
    Hostile(
        "stock-count-over-uint96",
        422,
        "counted_g",
        post(
            "/v1/stock-counts",
            {"site": SITE, "counted_g": UINT96_OVER, "counted_at": EXTRACTED_AT, "record_hash": digest("s")},
        ),
    ),
    Hostile(
        "stock-count-time-overflow",
        422,
        "counted_at",
        post(
            "/v1/stock-counts",
            {"site": SITE, "counted_g": 1, "counted_at": 2**64, "record_hash": digest("s")},
        ),
    ),
    Hostile(
        "stock-count-sql-hash",
        422,
        "record_hash",
        post(
            "/v1/stock-counts", {"site": SITE, "counted_g": 1, "counted_at": EXTRACTED_AT, "record_hash": SQL}
        ),
    ),
    Hostile(
        "stock-count-not-registrar",
        403,
        "registrar of site",
        post(
            "/v1/stock-counts",
            {"site": SITE, "counted_g": 1, "counted_at": EXTRACTED_AT, "record_hash": digest("s")},
            who="buyer",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_request_is_refused_and_writes_nothing(world: World, case: Hostile) -> None:
    before = world.footprint()

    response = case.send(world)

    assert response.status_code == case.status, response.text
    if case.status >= 400:
        error = error_of(response)
        assert case.fragment in f"{error['field']} {error['message']}", error
        assert "Traceback" not in error["message"]
    else:
        assert case.fragment in response.text.replace(" ", "")
    assert world.footprint() == before, "the request wrote something"
    world.assert_no_secret(response)


def test_there_are_at_least_fifty_distinct_cases() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 50


# ------------------------------------------------------------------ what only the chain can refuse


@dataclass(frozen=True)
class ChainRefused:
    id: str
    error: str
    """The registry's custom error the operation fails with."""
    path: str
    body: Callable[[World], dict[str, Any]]
    lots: Callable[[World], list[str]]
    """Lots whose state on chain must not change."""
    who: str = "operator"


CHAIN_REFUSED = [
    ChainRefused(
        "handover-unknown-lot",
        "UnknownLot",
        "/v1/handovers",
        lambda w: {"lot_ids": ["NO-SUCH-LOT"], "to": w.stack.buyer.address},
        lambda w: ["NO-SUCH-LOT"],
    ),
    ChainRefused(
        "handover-foreign-lot",
        "NotCustodian",
        "/v1/handovers",
        lambda w: {"lot_ids": [w.foreign], "to": w.stack.buyer.address},
        lambda w: [w.foreign],
    ),
    ChainRefused(
        "cancel-foreign-lot",
        "NotCustodian",
        "/v1/handovers/cancel",
        lambda w: {"lot_ids": [w.foreign]},
        lambda w: [w.foreign],
    ),
    ChainRefused(
        "accept-not-offered",
        "NoPendingHandover",
        "/v1/handovers/accept",
        lambda w: {"lot_ids": [w.held]},
        lambda w: [w.held],
        who="buyer",
    ),
    ChainRefused(
        "transform-foreign-lot",
        "NotCustodian",
        "/v1/transformations",
        lambda w: transformation(lambda w: [(w.foreign, 10)], [10], 0)(w),
        lambda w: [w.foreign],
    ),
    ChainRefused(
        "transform-consumed-lot",
        "LotConsumed",
        "/v1/transformations",
        lambda w: transformation(lambda w: [(w.consumed, 10)], [10], 0)(w),
        lambda w: [w.consumed],
    ),
    ChainRefused(
        "transform-unknown-lot",
        "UnknownLot",
        "/v1/transformations",
        lambda w: transformation(lambda w: [("NO-SUCH-LOT", 10)], [10], 0)(w),
        lambda w: [],
    ),
    ChainRefused(
        "transform-more-than-held",
        "InsufficientMass",
        "/v1/transformations",
        lambda w: transformation(lambda w: [(w.held, 10**12)], [10**12], 0)(w),
        lambda w: [w.held],
    ),
    ChainRefused(
        "register-existing-lot", "LotExists", "/v1/lots", lambda w: lot_body(w.held), lambda w: [w.held]
    ),
]


@pytest.mark.parametrize("case", CHAIN_REFUSED, ids=[case.id for case in CHAIN_REFUSED])
def test_what_only_the_chain_knows_fails_on_chain_and_changes_nothing(
    world: World, case: ChainRefused
) -> None:
    stack = world.stack
    client = stack.runtime.client
    lots = case.lots(world)
    states = [client.lot(lot) for lot in lots]
    account: Account = getattr(stack, case.who)

    response = stack.post(case.path, account, case.body(world), params={"wait": "true", "timeout": 30})

    assert response.status_code == 200, response.text
    operation = response.json()
    assert (operation["status"], operation["error"]["name"]) == ("failed", case.error), operation
    assert [client.lot(lot) for lot in lots] == states
    world.assert_no_secret(response)


def test_a_retry_of_a_recorded_assay_returns_its_operation_not_a_replay_error(world: World) -> None:
    """The replay check reads the chain; a retry under the same Idempotency-Key skips it."""
    stack = world.stack
    body = world.signed_assay(stack.lab.key, method="FA-AAS")
    key = {"Idempotency-Key": "assay-retry-1"}
    first = stack.post("/v1/assays", stack.buyer, body, headers=key, params={"wait": "true", "timeout": 30})
    assert first.json()["status"] == "confirmed", first.text

    retried = stack.post("/v1/assays", stack.buyer, body, headers=key)
    replayed = stack.post("/v1/assays", stack.buyer, body, headers={"Idempotency-Key": "assay-retry-2"})

    assert (retried.status_code, retried.json()["id"]) == (200, first.json()["id"])
    assert replayed.status_code == 422
    assert "recorded on chain already" in error_of(replayed)["message"]


def test_a_retry_of_an_attested_batch_after_its_device_was_revoked_returns_its_operation(
    world: World,
) -> None:
    stack = world.stack
    scale = EthAccount.create()
    stack.runtime.client.add_device(stack.admin, scale.address, SITE, "truck-scale")
    body = {"site": SITE, "lots": [world.attested_lot(scale)]}
    key = {"Idempotency-Key": "attested-retry-1"}
    first = stack.post(
        "/v1/lots/attested", stack.operator, body, headers=key, params={"wait": "true", "timeout": 30}
    )
    assert first.json()["status"] == "confirmed", first.text
    stack.runtime.client.revoke_device(stack.admin, scale.address)

    retried = stack.post("/v1/lots/attested", stack.operator, body, headers=key)
    fresh = stack.post(
        "/v1/lots/attested", stack.operator, {"site": SITE, "lots": [world.attested_lot(scale)]}
    )

    assert (retried.status_code, retried.json()["id"]) == (200, first.json()["id"])
    assert (fresh.status_code, error_of(fresh)["field"]) == (422, "lots[0].signature")


# ------------------------------------------------------------------ logs (runs last in this module)


def test_the_log_capture_sees_errors_of_the_app(world: World) -> None:
    """A sanity check of the previous test: a 5xx of the app is logged and lands in the capture."""
    logging.getLogger("api.errors").error("probe %s", "hostile")
    assert any("probe hostile" in line for line in world.log_lines)


def test_no_key_or_token_appears_in_any_log_line_of_this_module(world: World) -> None:
    """The whole module logged at DEBUG (the app, the outbox worker, web3, the test client)."""
    lines = world.log_lines
    assert lines, "nothing was logged: the capture is not working"
    secrets = world.secrets()
    leaks = [line[:200] for line in lines for secret in secrets if secret.lower() in line.lower()]
    assert leaks == []

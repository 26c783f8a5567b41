"""Verification over HTTP: GET /v1/lots/{id}/verify and POST /v1/verify/document, no token needed.

The history is written straight to the chain (the keys of the stack's accounts), indexed into the
API's own database, then checked through the API; one test tampers with that database in SQL
and puts it back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from provenance.chain.logsource import RpcLogSource
from provenance.domain.records import Assay, LotRegistration, Transformation, TransformInput, TransformOutput
from provenance.domain.values import TransformKind
from provenance.index.indexer import Indexer
from tests.e2e.conftest import EXTRACTED_AT, SITE, Stack, error_of

TICKET = b"weighbridge ticket: 4,900 kg gross, truck 7, 2024-05-03 06:12"


@dataclass(frozen=True)
class History:
    l1: str
    l2: str
    s1: str
    b1: str
    ticket_block: int


def _hash(text_: str) -> bytes:
    return hashlib.sha256(text_.encode()).digest()


@pytest.fixture(scope="module")
def history(stack: Stack) -> History:
    """L1 split into S1 + S2; S1 and part of L2 blended into B1; B1 assayed, a ticket anchored, B1
    sold to the buyer; everything indexed."""
    client = stack.runtime.client
    operator, buyer = stack.operator.key, stack.buyer.key
    l1, l2, s1, s2, b1 = (stack.lot_id() for _ in range(5))
    client.register_lots(
        operator,
        [
            LotRegistration(lot_id, SITE, "F3", "COAL", mass, 12_345, EXTRACTED_AT, _hash(lot_id))
            for lot_id, mass in ((l1, 5_000), (l2, 3_000))
        ],
    )
    client.transform(
        operator,
        Transformation(
            TransformKind.SPLIT,
            SITE,
            (TransformInput(l1, 5_000),),
            (
                TransformOutput(s1, "COAL", 3_000, 12_000, _hash(s1)),
                TransformOutput(s2, "COAL", 2_000, 12_000, _hash(s2)),
            ),
            0,
            _hash("split"),
        ),
    )
    client.transform(
        operator,
        Transformation(
            TransformKind.BLEND,
            SITE,
            (TransformInput(s1, 3_000), TransformInput(l2, 2_000)),
            (TransformOutput(b1, "COAL", 4_900, 12_100, _hash(b1)),),
            100,
            _hash("blend"),
        ),
    )
    assay = Assay(b1, 12_050, "XRF", _hash("certificate"), EXTRACTED_AT + 3_600)
    client.submit_assay(buyer, assay, client.sign_assay(stack.lab.key, assay))
    anchored = client.anchor_document(operator, b1, "weighbridge", hashlib.sha256(TICKET).digest())
    client.hand_over(operator, [b1], stack.buyer.address)
    client.accept_handover(buyer, [b1])
    runtime = stack.runtime
    Indexer(runtime.engine, RpcLogSource(runtime.w3, runtime.deployment.registry), runtime.deployment).sync()
    return History(l1, l2, s1, b1, anchored["blockNumber"])


def test_a_lot_and_its_lineage_verify_without_a_token(stack: Stack, history: History) -> None:
    response = stack.http.get(f"/v1/lots/{history.b1}/verify")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "verified", body["differences"]
    assert set(body["lots_checked"]) == {history.b1, history.s1, history.l2, history.l1}
    assert body["bound_hit"] is False
    assert body["differences"] == []
    assay = next(check for check in body["checks"] if check["name"] == "assay_signature")
    assert assay["status"] == "pass"
    assert assay["on_chain"]["signer"] == stack.lab.address
    assert assay["where"]["tx_hash"].startswith("0x")
    assert assay["where"]["block_number"] > 0


def test_the_lineage_walk_is_bounded(stack: Stack, history: History) -> None:
    body = stack.http.get(f"/v1/lots/{history.b1}/verify", params={"max_lots": 2}).json()

    assert body["bound_hit"] is True
    assert len(body["lots_checked"]) == 2


def test_a_tampered_index_fails_and_names_the_fact(stack: Stack, history: History) -> None:
    def execute(statement: str, **values: object) -> None:
        with stack.runtime.engine.begin() as connection:
            assert connection.execute(text(statement), values).rowcount == 1

    execute("UPDATE lots SET mass_g = 3500 WHERE lot_id = :lot", lot=history.l2)
    try:
        body = stack.http.get(f"/v1/lots/{history.b1}/verify").json()
    finally:
        execute("UPDATE lots SET mass_g = 3000 WHERE lot_id = :lot", lot=history.l2)

    assert body["verdict"] == "failed"
    [difference] = body["differences"]
    assert difference["lot_id"] == history.l2
    assert difference["event"] == "LotRegistered"
    assert difference["field"] == "massG"
    assert (difference["index_value"], difference["chain_value"]) == (3_500, 3_000)
    assert difference["where"]["block_number"] > 0
    assert stack.http.get(f"/v1/lots/{history.b1}/verify").json()["verdict"] == "verified"


def test_an_unknown_lot_is_404(stack: Stack, history: History) -> None:
    response = stack.http.get("/v1/lots/NO-SUCH-LOT/verify")

    assert response.status_code == 404
    assert error_of(response)["type"] == "NotFound"


def test_an_anchored_document_is_found_with_lot_account_and_block(stack: Stack, history: History) -> None:
    response = stack.http.post("/v1/verify/document", files={"file": ("ticket.txt", TICKET, "text/plain")})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["anchored"] is True
    assert body["sha256"] == hashlib.sha256(TICKET).hexdigest()
    [anchor] = body["anchors"]
    assert anchor["lot_id"] == history.b1
    assert anchor["anchored_by"] == stack.operator.address
    assert anchor["block_number"] == history.ticket_block
    assert anchor["in_index"] is True
    assert body["unconfirmed"] == []


def test_an_unknown_document_is_not_anchored(stack: Stack, history: History) -> None:
    response = stack.http.post(
        "/v1/verify/document", files={"file": ("other.txt", b"never anchored", "text/plain")}
    )

    assert response.status_code == 200, response.text
    assert response.json()["anchored"] is False
    assert response.json()["anchors"] == []


def test_a_document_over_the_limit_is_refused(stack: Stack) -> None:
    big = b"x" * (stack.settings.max_document_bytes + 1)

    response = stack.http.post(
        "/v1/verify/document", files={"file": ("big.bin", big, "application/octet-stream")}
    )

    assert response.status_code == 413

"""Documents over HTTP: upload, stored by SHA-256, hash anchored on chain, downloaded back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from web3.logs import DISCARD

from tests.e2e.conftest import MAX_DOCUMENT_BYTES, Stack, error_of


def upload(stack: Stack, lot_id: str, content: bytes, *, kind: str = "weighbridge-ticket", wait: bool = True):  # type: ignore[no-untyped-def]
    return stack.http.post(
        f"/v1/lots/{lot_id}/documents",
        files={"file": ("ticket.pdf", content, "application/pdf")},
        data={"kind": kind},
        params={"wait": "true", "timeout": 30} if wait else {},
        headers=stack.operator.auth,
    )


def test_an_uploaded_document_is_stored_by_its_hash_anchored_and_downloadable(stack: Stack) -> None:
    lot = stack.register()
    content = b"%PDF-1.7 weighbridge ticket " + lot.encode()
    sha256 = hashlib.sha256(content).hexdigest()

    response = upload(stack, lot, content)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["document"] == {
        "sha256": sha256,
        "document_hash": "0x" + sha256,
        "size_bytes": len(content),
        "lot_id": lot,
        "kind": "weighbridge-ticket",
        "url": f"/v1/documents/{sha256}",
    }
    operation = answer["operation"]
    assert operation["kind"] == "anchor_document"
    assert operation["status"] == "confirmed"
    assert operation["links"]["document"] == f"/v1/documents/{sha256}"
    receipt = stack.w3.eth.get_transaction_receipt(operation["transactions"][0]["tx_hash"])
    [anchored] = stack.runtime.client.contract.events.DocumentAnchored().process_receipt(
        receipt, errors=DISCARD
    )
    assert anchored["args"]["documentHash"] == bytes.fromhex(sha256)

    download = stack.http.get(f"/v1/documents/{sha256}", headers=stack.buyer.auth)

    assert download.status_code == 200
    assert download.content == content
    assert hashlib.sha256(download.content).hexdigest() == sha256
    assert download.headers["content-type"] == "application/octet-stream"


def test_the_same_bytes_uploaded_twice_are_one_file(stack: Stack) -> None:
    lot = stack.register()
    content = b"photo of " + lot.encode()

    first = upload(stack, lot, content, kind="photo").json()
    second = upload(stack, lot, content, kind="photo").json()

    assert first["document"]["sha256"] == second["document"]["sha256"]
    stored = list((stack.settings.data_dir / "documents").rglob(first["document"]["sha256"]))
    assert len(stored) == 1


def test_only_the_custodian_can_anchor_a_document(stack: Stack) -> None:
    lot = stack.register()

    response = stack.http.post(
        f"/v1/lots/{lot}/documents",
        files={"file": ("x.txt", b"not mine")},
        params={"wait": "true", "timeout": 30},
        headers=stack.buyer.auth,
    )

    assert response.status_code == 200
    assert response.json()["operation"]["status"] == "failed"
    assert response.json()["operation"]["error"]["name"] == "NotCustodian"


def test_a_document_of_exactly_the_limit_is_accepted_and_one_byte_more_is_413(stack: Stack) -> None:
    lot = stack.register()

    at_limit = upload(stack, lot, b"a" * MAX_DOCUMENT_BYTES, wait=False)
    over = upload(stack, lot, b"b" * (MAX_DOCUMENT_BYTES + 1), wait=False)

    assert at_limit.status_code == 202
    assert over.status_code == 413
    assert error_of(over)["type"] == "DocumentTooLarge"
    assert str(MAX_DOCUMENT_BYTES) in error_of(over)["message"]
    assert (
        stack.http.get(
            f"/v1/documents/{hashlib.sha256(b'b' * (MAX_DOCUMENT_BYTES + 1)).hexdigest()}",
            headers=stack.buyer.auth,
        ).status_code
        == 404
    )


def test_an_upload_far_over_the_limit_is_refused_before_it_is_read(stack: Stack) -> None:
    response = upload(stack, "A", b"c" * (MAX_DOCUMENT_BYTES + 100_000), wait=False)

    assert response.status_code == 413
    assert error_of(response)["type"] == "BodyTooLarge"


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(stack.settings.max_request_bytes // 1024 + 2):
            yield b"d" * 1024

    response = stack.http.post(
        "/v1/lots/batch",
        content=chunks(),
        headers={**stack.operator.auth, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert error_of(response)["type"] == "BodyTooLarge"


def test_an_unknown_document_is_404_and_a_malformed_hash_422(stack: Stack) -> None:
    assert stack.http.get("/v1/documents/" + "0" * 64, headers=stack.buyer.auth).status_code == 404
    assert stack.http.get("/v1/documents/not-a-hash", headers=stack.buyer.auth).status_code == 422


def test_a_bad_document_kind_is_422(stack: Stack) -> None:
    response = upload(stack, "A", b"x", kind="has space", wait=False)

    assert response.status_code == 422
    assert error_of(response)["field"] == "kind"


def test_downloading_needs_a_token(stack: Stack) -> None:
    assert stack.http.get("/v1/documents/" + "0" * 64).status_code == 401

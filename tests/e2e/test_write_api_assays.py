"""Lab assays over HTTP: a lab signs (with the helper or on its own), anyone submits."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from provenance.chain.client import assay_tuple
from provenance.domain.records import Assay
from tests.e2e.conftest import EXTRACTED_AT, Stack, digest, error_of


def assay_body(lot_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lot_id": lot_id,
        "grade_ppm": 11_800,
        "method": "XRF",
        "certificate_hash": digest(f"certificate of {lot_id}"),
        "assayed_at": EXTRACTED_AT + 3600,
    }
    body.update(changes)
    return body


def recorded(stack: Stack, body: dict[str, Any]) -> bool:
    assay = Assay(
        body["lot_id"],
        body["grade_ppm"],
        body["method"],
        bytes.fromhex(body["certificate_hash"][2:]),
        body["assayed_at"],
    )
    functions = stack.runtime.client.contract.functions
    return bool(functions.assayRecorded(functions.assayDigest(assay_tuple(assay)).call()).call())


def test_a_lab_signs_with_the_helper_and_anyone_submits(stack: Stack) -> None:
    lot = stack.register()
    signing = stack.post("/v1/assays/sign", stack.lab, assay_body(lot))
    assert signing.status_code == 200, signing.text
    signed = signing.json()
    assert signed["lab"] == stack.lab.address
    assert len(signed["signature"]) == 132

    operation = stack.write(
        "/v1/assays", stack.buyer, {"assay": signed["assay"], "signature": signed["signature"]}
    )

    assert operation["kind"] == "submit_assay"
    assert operation["status"] == "confirmed"
    assert operation["sender"] == stack.buyer.address
    assert recorded(stack, signed["assay"])


def test_an_assay_signed_off_line_by_the_lab_key_is_accepted(stack: Stack) -> None:
    lot = stack.register()
    body = assay_body(lot, grade_ppm=9_000)
    assay = Assay(lot, 9_000, "XRF", bytes.fromhex(body["certificate_hash"][2:]), body["assayed_at"])
    signature = stack.runtime.client.sign_assay(stack.lab.key, assay)

    operation = stack.write(
        "/v1/assays", stack.operator, {"assay": body, "signature": "0x" + signature.hex()}
    )

    assert operation["status"] == "confirmed"
    assert recorded(stack, body)


def test_an_assay_not_signed_by_a_lab_is_refused_up_front_naming_the_signature(stack: Stack) -> None:
    lot = stack.register()
    body = assay_body(lot)
    forger = Account.create()
    assay = Assay(
        lot, body["grade_ppm"], "XRF", bytes.fromhex(body["certificate_hash"][2:]), body["assayed_at"]
    )
    signature = stack.runtime.client.sign_assay(forger, assay)

    response = stack.post("/v1/assays", stack.operator, {"assay": body, "signature": "0x" + signature.hex()})

    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "signature"
    assert forger.address in error["message"]
    assert "LAB_ROLE" in error["message"]
    assert not recorded(stack, body)


def test_a_signature_that_is_not_one_is_422(stack: Stack) -> None:
    response = stack.post(
        "/v1/assays", stack.operator, {"assay": assay_body("A"), "signature": "0x" + "00" * 65}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "signature"


def test_a_signature_of_the_wrong_length_is_422(stack: Stack) -> None:
    response = stack.post("/v1/assays", stack.operator, {"assay": assay_body("A"), "signature": "0x1234"})

    assert response.status_code == 422
    assert error_of(response)["field"] == "signature"


def test_an_assay_with_a_grade_over_a_million_ppm_is_422(stack: Stack) -> None:
    response = stack.post("/v1/assays/sign", stack.lab, assay_body("A", grade_ppm=1_000_001))

    assert response.status_code == 422
    assert error_of(response)["field"] == "grade_ppm"


def test_a_lab_whose_role_is_revoked_after_the_check_sees_its_operation_fail_on_chain(stack: Stack) -> None:
    """The role check is an early answer, not the guard: the chain refuses what slips past it."""
    lab = stack.lab.key
    lot = stack.register()
    body = assay_body(lot, grade_ppm=7_000)
    signed = stack.post("/v1/assays/sign", stack.lab, body).json()  # the role is now cached as held
    client = stack.runtime.client
    client.transact(stack.admin, "revokeRole", client.role("LAB_ROLE"), lab.address)
    try:
        operation = stack.write(
            "/v1/assays", stack.buyer, {"assay": signed["assay"], "signature": signed["signature"]}
        )
    finally:
        client.grant_role(stack.admin, client.role("LAB_ROLE"), lab.address)

    assert operation["status"] == "failed"
    assert operation["error"]["name"] == "InvalidLabSignature"


def test_the_sign_helper_is_only_for_a_credential_holding_lab_role(stack: Stack) -> None:
    response = stack.post("/v1/assays/sign", stack.operator, assay_body("A"))

    assert response.status_code == 403
    assert "LAB_ROLE" in error_of(response)["message"]

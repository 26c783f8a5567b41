"""Corrections and stock counts over HTTP: the custodian corrects its lot (the chain decides who
may), a registrar of the site records a count (403 for anyone else), retries keep one operation,
and a malformed body is a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import EXTRACTED_AT, SITE, Stack, digest, error_of


def correction(lot_id: str, adjustment_g: int, reason: str = "incorrect_data") -> dict[str, Any]:
    return {"lot_id": lot_id, "reason": reason, "adjustment_g": adjustment_g, "record_hash": digest(lot_id)}


def count(counted_g: int) -> dict[str, Any]:
    return {"site": SITE, "counted_g": counted_g, "counted_at": EXTRACTED_AT, "record_hash": digest("sheet")}


def test_the_custodian_corrects_its_lot_and_the_chain_keeps_the_adjustment(stack: Stack) -> None:
    lot = stack.register()
    before = stack.runtime.client.lot(lot)
    assert before is not None

    corrected = stack.write("/v1/corrections", stack.operator, correction(lot, -250))

    assert (corrected["kind"], corrected["status"]) == ("correct_lot", "confirmed")
    after = stack.runtime.client.lot(lot)
    assert after is not None
    assert after.remaining_g == before.remaining_g - 250


def test_a_lot_that_did_not_occur_is_voided(stack: Stack) -> None:
    lot = stack.register()
    state = stack.runtime.client.lot(lot)
    assert state is not None

    voided = stack.write(
        "/v1/corrections", stack.operator, correction(lot, -state.remaining_g, "did_not_occur")
    )

    assert voided["status"] == "confirmed"
    assert stack.runtime.client.lot(lot).remaining_g == 0  # type: ignore[union-attr]


def test_only_the_custodian_or_an_admin_may_correct_and_the_chain_refuses_below_zero(stack: Stack) -> None:
    lot = stack.register()

    by_buyer = stack.write("/v1/corrections", stack.buyer, correction(lot, -1))
    too_much = stack.write("/v1/corrections", stack.operator, correction(lot, -(10**12)))

    assert (by_buyer["status"], by_buyer["error"]["name"]) == ("failed", "NotCustodian")
    assert (too_much["status"], too_much["error"]["name"]) == ("failed", "InvalidCorrection")


def test_a_registrar_records_a_stock_count_and_a_retry_is_the_same_operation(stack: Stack) -> None:
    key = {"Idempotency-Key": f"count-{stack.lot_id()}"}
    first = stack.post("/v1/stock-counts", stack.clerk, count(2_990), headers=key)
    again = stack.post("/v1/stock-counts", stack.clerk, count(2_990), headers=key)
    other_body = stack.post("/v1/stock-counts", stack.clerk, count(2_991), headers=key)

    assert first.status_code == 202, first.text
    assert again.json()["id"] == first.json()["id"]
    assert other_body.status_code == 409
    waited = stack.http.get(
        f"/v1/operations/{first.json()['id']}",
        params={"wait": "true", "timeout": 30},
        headers=stack.clerk.auth,
    )
    assert waited.json()["status"] == "confirmed", waited.text


def test_a_stock_count_by_someone_who_is_not_a_registrar_of_the_site_is_403(stack: Stack) -> None:
    response = stack.post("/v1/stock-counts", stack.buyer, count(1))

    assert response.status_code == 403
    assert "registrar of site" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/corrections",
            {"lot_id": "A", "reason": "lost", "adjustment_g": -1, "record_hash": digest("x")},
            "reason",
        ),
        (
            "/v1/corrections",
            {"lot_id": "A", "reason": "incorrect_data", "adjustment_g": 0, "record_hash": digest("x")},
            "adjustment_g",
        ),
        (
            "/v1/corrections",
            {"lot_id": "A", "reason": "did_not_occur", "adjustment_g": 5, "record_hash": digest("x")},
            "adjustment_g",
        ),
        (
            "/v1/corrections",
            {"lot_id": "A", "reason": "incorrect_data", "adjustment_g": "-1", "record_hash": digest("x")},
            "adjustment_g",
        ),
        (
            "/v1/corrections",
            {"lot_id": "A", "reason": "incorrect_data", "adjustment_g": -1, "record_hash": "0x" + "00" * 32},
            "record_hash",
        ),
        ("/v1/corrections", {"lot_id": "A", "reason": "incorrect_data", "adjustment_g": -1}, "record_hash"),
        (
            "/v1/stock-counts",
            {"site": SITE, "counted_g": -1, "counted_at": EXTRACTED_AT, "record_hash": digest("x")},
            "counted_g",
        ),
        (
            "/v1/stock-counts",
            {"site": SITE, "counted_g": 2**96, "counted_at": EXTRACTED_AT, "record_hash": digest("x")},
            "counted_g",
        ),
        (
            "/v1/stock-counts",
            {"site": "bad site", "counted_g": 1, "counted_at": EXTRACTED_AT, "record_hash": digest("x")},
            "site",
        ),
        (
            "/v1/stock-counts",
            {"site": SITE, "counted_g": 1, "counted_at": -5, "record_hash": digest("x")},
            "counted_at",
        ),
    ],
)
def test_a_malformed_body_is_422_naming_the_field(
    stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    response = stack.post(path, stack.operator, body)

    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field

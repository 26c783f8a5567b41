"""Registering lots and transforming them over HTTP, through the outbox, onto the chain."""

from __future__ import annotations

import time

import pytest
from web3.logs import DISCARD

from tests.e2e.conftest import SITE, Stack, digest, error_of, lot_body

pytestmark = pytest.mark.clock


def test_registering_a_lot_answers_202_with_an_operation_that_the_chain_then_confirms(stack: Stack) -> None:
    body = lot_body(stack.lot_id())

    response = stack.post("/v1/lots", stack.operator, body)

    assert response.status_code == 202, response.text
    operation = response.json()
    assert operation["kind"] == "register_lots"
    assert operation["status"] in ("pending", "sent", "confirmed")
    assert operation["sender"] == stack.operator.address
    assert operation["links"]["self"] == f"/v1/operations/{operation['id']}"
    assert response.headers["Location"] == operation["links"]["self"]

    final = stack.http.get(
        operation["links"]["self"], params={"wait": "true", "timeout": 30}, headers=stack.operator.auth
    )
    assert final.status_code == 200
    assert final.json()["status"] == "confirmed"
    assert stack.custodian(body["lot_id"]) == stack.operator.address


def test_wait_true_answers_200_with_the_confirmed_transaction_hash_and_block(stack: Stack) -> None:
    body = lot_body(stack.lot_id())

    response = stack.post("/v1/lots", stack.operator, body, params={"wait": "true", "timeout": 30})

    assert response.status_code == 200, response.text
    operation = response.json()
    assert operation["status"] == "confirmed"
    assert operation["final"] is True
    [tx] = operation["transactions"]
    receipt = stack.w3.eth.get_transaction_receipt(tx["tx_hash"])
    assert receipt["blockNumber"] == tx["block_number"]
    assert receipt["blockHash"].to_0x_hex() == tx["block_hash"]
    assert tx["status"] == "confirmed"
    assert tx["gas_used"] == receipt["gasUsed"]


@pytest.mark.slow  # about 15 s: py-evm simulates, then runs, three transactions of up to 400 lots
def test_a_batch_of_1000_lots_is_sent_as_several_transactions_all_confirmed(stack: Stack) -> None:
    lots = [lot_body(stack.lot_id()) for _ in range(1000)]
    for item in lots:
        del item["site"]

    response = stack.post(
        "/v1/lots/batch", stack.operator, {"site": SITE, "lots": lots}, params={"wait": "true", "timeout": 60}
    )

    assert response.status_code == 200, response.text
    operation = response.json()
    assert operation["status"] == "confirmed"
    assert len(operation["transactions"]) > 1
    assert all(tx["status"] == "confirmed" and tx["block_number"] for tx in operation["transactions"])
    assert len({tx["tx_hash"] for tx in operation["transactions"]}) == len(operation["transactions"])
    for index in (0, 399, 400, 777, 999):
        assert stack.custodian(lots[index]["lot_id"]) == stack.operator.address


def test_more_than_1000_lots_in_a_batch_are_refused_naming_the_field(stack: Stack) -> None:
    lots = [{k: v for k, v in lot_body(f"X{i}").items() if k != "site"} for i in range(1001)]

    response = stack.post("/v1/lots/batch", stack.operator, {"site": SITE, "lots": lots})

    assert response.status_code == 422
    assert error_of(response)["field"] == "lots"


def test_a_transformation_consumes_its_inputs_and_creates_its_outputs(stack: Stack) -> None:
    source = stack.register(mass_g=1_000_000)
    left, right = stack.lot_id(), stack.lot_id()
    body = {
        "kind": "split",
        "site": SITE,
        "inputs": [{"lot_id": source, "mass_g": 1_000_000}],
        "outputs": [
            {
                "lot_id": left,
                "commodity": "COAL",
                "mass_g": 600_000,
                "grade_ppm": 12_000,
                "record_hash": digest(left),
            },
            {
                "lot_id": right,
                "commodity": "COAL",
                "mass_g": 399_000,
                "grade_ppm": 12_000,
                "record_hash": digest(right),
            },
        ],
        "loss_g": 1_000,
        "record_hash": digest(f"split {source}"),
    }

    operation = stack.write("/v1/transformations", stack.operator, body)

    assert operation["status"] == "confirmed", operation
    client = stack.runtime.client
    assert client.lot(source) is not None
    assert client.lot(source).remaining_g == 0  # type: ignore[union-attr]
    assert client.lot(left).remaining_g == 600_000  # type: ignore[union-attr]
    assert stack.custodian(right) == stack.operator.address


def test_a_transformation_the_chain_refuses_fails_with_the_decoded_error(stack: Stack) -> None:
    source = stack.register(mass_g=1_000_000)
    out = stack.lot_id()
    body = {
        "kind": "process",
        "site": SITE,
        "inputs": [{"lot_id": source, "mass_g": 1_000_001}],  # more than the lot holds
        "outputs": [
            {
                "lot_id": out,
                "commodity": "COKE",
                "mass_g": 1_000_001,
                "grade_ppm": 0,
                "record_hash": digest(out),
            }
        ],
        "loss_g": 0,
        "record_hash": digest(f"process {source}"),
    }

    operation = stack.write("/v1/transformations", stack.operator, body)

    assert operation["status"] == "failed"
    assert operation["error"]["name"] == "InsufficientMass"


# ------------------------------------------------------------------ roles


def test_registering_without_the_sites_registrar_role_is_403_naming_the_role(stack: Stack) -> None:
    response = stack.post("/v1/lots", stack.buyer, lot_body(stack.lot_id()))

    assert response.status_code == 403
    error = error_of(response)
    assert error["type"] == "MissingRole"
    assert "registrar of site SH2" in error["message"]
    assert stack.buyer.address in error["message"]


def test_a_registrar_of_one_site_cannot_register_for_another(stack: Stack) -> None:
    response = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id(), site="PIT9"))

    assert response.status_code == 403
    assert "registrar of site PIT9" in error_of(response)["message"]


def test_a_batch_without_the_registrar_role_is_403(stack: Stack) -> None:
    lots = [{k: v for k, v in lot_body(stack.lot_id()).items() if k != "site"}]

    response = stack.post("/v1/lots/batch", stack.lab, {"site": SITE, "lots": lots})

    assert response.status_code == 403
    assert "registrar of site SH2" in error_of(response)["message"]


def test_transforming_without_processor_role_is_403_naming_it(stack: Stack) -> None:
    source = stack.register(stack.clerk)
    out = stack.lot_id()
    body = {
        "kind": "process",
        "site": SITE,
        "inputs": [{"lot_id": source, "mass_g": 100}],
        "outputs": [
            {"lot_id": out, "commodity": "COKE", "mass_g": 100, "grade_ppm": 0, "record_hash": digest(out)}
        ],
        "loss_g": 0,
        "record_hash": digest(out),
    }

    response = stack.post("/v1/transformations", stack.clerk, body)

    assert response.status_code == 403
    assert "PROCESSOR_ROLE" in error_of(response)["message"]


def test_a_freshly_granted_role_works_at_once(stack: Stack) -> None:
    assert stack.post("/v1/lots", stack.buyer, lot_body(stack.lot_id(), site="NEW1")).status_code == 403
    client = stack.runtime.client
    client.grant_role(stack.admin, client.registrar_role("NEW1"), stack.buyer.address)

    operation = stack.write("/v1/lots", stack.buyer, lot_body(stack.lot_id(), site="NEW1"))

    assert operation["status"] == "confirmed"


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mass_g": -5}, "mass_g"),
        ({"mass_g": 0}, "mass_g"),
        ({"mass_g": 1.5}, "mass_g"),
        ({"mass_g": "100"}, "mass_g"),
        ({"grade_ppm": 1_000_001}, "grade_ppm"),
        ({"lot_id": "has space"}, "lot_id"),
        ({"lot_id": "-leading-dash"}, "lot_id"),
        ({"face": "x" * 33}, "face"),
        ({"site": "S H"}, "site"),
        ({"record_hash": "0x1234"}, "record_hash"),
        ({"record_hash": "0x" + "zz" * 32}, "record_hash"),
        ({"extracted_at": -1}, "extracted_at"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_a_malformed_lot_is_422_naming_the_field(
    stack: Stack, changes: dict[str, object], field: str
) -> None:
    response = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id(), **changes))

    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["field"] == field
    assert error["message"]


def test_a_missing_field_in_a_batch_names_its_path(stack: Stack) -> None:
    good = {k: v for k, v in lot_body(stack.lot_id()).items() if k != "site"}
    bad = {k: v for k, v in lot_body(stack.lot_id()).items() if k not in ("site", "commodity")}

    response = stack.post("/v1/lots/batch", stack.operator, {"site": SITE, "lots": [good, bad]})

    assert response.status_code == 422
    assert error_of(response)["field"] == "lots[1].commodity"


def test_a_bad_label_deep_in_a_batch_names_its_path(stack: Stack) -> None:
    lots = [{k: v for k, v in lot_body(stack.lot_id()).items() if k != "site"} for _ in range(3)]
    lots[2]["face"] = "bad face"

    response = stack.post("/v1/lots/batch", stack.operator, {"site": SITE, "lots": lots})

    assert response.status_code == 422
    assert error_of(response)["field"] == "lots[2].face"


def test_a_lot_twice_in_one_batch_is_422(stack: Stack) -> None:
    lot = {k: v for k, v in lot_body(stack.lot_id()).items() if k != "site"}

    response = stack.post("/v1/lots/batch", stack.operator, {"site": SITE, "lots": [lot, lot]})

    assert response.status_code == 422
    assert error_of(response)["field"] == "lots[1].lot_id"


def test_a_body_that_is_not_json_is_422(stack: Stack) -> None:
    response = stack.http.post(
        "/v1/lots", content=b"{not json", headers={**stack.operator.auth, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert error_of(response)["type"] == "ValidationError"


def test_a_body_over_the_request_limit_is_413(stack: Stack) -> None:
    oversized = b'{"site": "' + b"x" * (stack.settings.max_request_bytes + 1) + b'"}'

    response = stack.http.post(
        "/v1/lots/batch",
        content=oversized,
        headers={**stack.operator.auth, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert error_of(response)["type"] == "BodyTooLarge"


def test_wait_longer_than_60_seconds_is_refused(stack: Stack) -> None:
    response = stack.post(
        "/v1/lots", stack.operator, lot_body(stack.lot_id()), params={"wait": "true", "timeout": 61}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "timeout"


# ------------------------------------------------------------------ idempotency


def test_a_retry_with_the_same_idempotency_key_returns_the_first_operation_and_registers_once(
    stack: Stack,
) -> None:
    body = lot_body(stack.lot_id())
    headers = {"Idempotency-Key": f"retry-{body['lot_id']}"}

    first = stack.post("/v1/lots", stack.operator, body, headers=headers)
    second = stack.post(
        "/v1/lots", stack.operator, body, headers=headers, params={"wait": "true", "timeout": 30}
    )
    third = stack.post("/v1/lots", stack.operator, body, headers=headers)

    assert first.status_code == 202
    assert second.json()["id"] == first.json()["id"] == third.json()["id"]
    assert second.json()["status"] == "confirmed"
    assert third.status_code == 200  # final already: nothing is waiting
    [tx] = second.json()["transactions"]
    logs = stack.runtime.client.contract.events.LotRegistered().process_receipt(
        stack.w3.eth.get_transaction_receipt(tx["tx_hash"]), errors=DISCARD
    )
    assert len(logs) == 1


def test_the_same_idempotency_key_with_another_body_is_409(stack: Stack) -> None:
    headers = {"Idempotency-Key": f"conflict-{stack.prefix}"}
    first = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id()), headers=headers)

    second = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id()), headers=headers)

    assert first.status_code == 202
    assert second.status_code == 409
    error = error_of(second)
    assert error["type"] == "IdempotencyConflict"
    assert first.json()["id"] in error["message"]


def test_idempotency_keys_belong_to_one_credential(stack: Stack) -> None:
    headers = {"Idempotency-Key": f"shared-{stack.prefix}"}
    mine = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id()), headers=headers)

    theirs = stack.post("/v1/lots", stack.clerk, lot_body(stack.lot_id()), headers=headers)

    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]


# ------------------------------------------------------------------ operations


def test_an_unknown_operation_is_404(stack: Stack) -> None:
    response = stack.http.get(
        "/v1/operations/00000000-0000-0000-0000-000000000000", headers=stack.operator.auth
    )

    assert response.status_code == 404
    assert error_of(response)["type"] == "NotFound"


def test_another_accounts_operation_is_404(stack: Stack) -> None:
    operation = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id())).json()

    response = stack.http.get(f"/v1/operations/{operation['id']}", headers=stack.buyer.auth)

    assert response.status_code == 404


def test_a_duplicate_lot_fails_with_the_chains_error(stack: Stack) -> None:
    lot_id = stack.register()

    operation = stack.write("/v1/lots", stack.operator, lot_body(lot_id))

    assert operation["status"] == "failed"
    assert operation["error"]["name"] == "LotExists"


def test_writes_in_quick_succession_all_land(stack: Stack) -> None:
    started = time.monotonic()
    ids = [stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id())).json()["id"] for _ in range(5)]

    finals = [
        stack.http.get(f"/v1/operations/{i}", params={"wait": "true"}, headers=stack.operator.auth).json()
        for i in ids
    ]

    assert [final["status"] for final in finals] == ["confirmed"] * 5
    assert time.monotonic() - started < 30

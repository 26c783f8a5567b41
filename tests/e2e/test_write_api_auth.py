"""Who is calling: every write needs a valid bearer token; the health check needs none."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import text

from provenance.chain.logsource import RpcLogSource
from provenance.index import Indexer
from tests.e2e.conftest import Stack, error_of, lot_body

WRITES = [
    "/v1/lots",
    "/v1/lots/batch",
    "/v1/transformations",
    "/v1/handovers",
    "/v1/handovers/accept",
    "/v1/handovers/cancel",
    "/v1/assays",
    "/v1/assays/sign",
    "/v1/lots/A/documents",
]


@pytest.mark.parametrize("path", WRITES)
def test_every_write_without_a_token_is_401(stack: Stack, path: str) -> None:
    response = stack.http.post(path, json={})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["type"] == "NotAuthenticated"


@pytest.mark.parametrize(
    "authorization", ["Bearer prv_not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "prv_no-scheme"]
)
def test_a_bad_token_is_401(stack: Stack, authorization: str) -> None:
    response = stack.http.post(
        "/v1/lots", json=lot_body(stack.lot_id()), headers={"Authorization": authorization}
    )

    assert response.status_code == 401
    assert "prv_" not in response.text


def test_a_bad_token_is_refused_before_the_body_is_looked_at(stack: Stack) -> None:
    response = stack.http.post("/v1/lots", json={"mass_g": -1}, headers={"Authorization": "Bearer nope"})

    assert response.status_code == 401


def test_a_revoked_token_stops_working_at_once(stack: Stack) -> None:
    key = stack.runtime.keys("dev:operator")
    _, token = stack.runtime.credentials.create("short-lived", key.address, "dev:operator")
    headers = {"Authorization": f"Bearer {token}"}
    assert stack.http.get("/v1/operations/none", headers=headers).status_code == 404

    assert stack.runtime.credentials.revoke("short-lived")

    response = stack.http.get("/v1/operations/none", headers=headers)
    assert response.status_code == 401
    assert token not in response.text


def test_a_revoked_token_writes_nothing_though_the_api_knew_it_a_moment_ago(stack: Stack) -> None:
    key = stack.runtime.keys("dev:operator")
    credential_id, token = stack.runtime.credentials.create("writer-for-a-while", key.address, "dev:operator")
    headers = {"Authorization": f"Bearer {token}"}
    first = stack.http.post("/v1/lots", json=lot_body(f"{stack.prefix}-REV-1"), headers=headers)
    assert first.status_code == 202, first.text  # the API now knows the token (api.known_tokens)

    assert stack.runtime.credentials.revoke("writer-for-a-while")

    for attempt in range(2):  # refused as the write is stored, then at the door
        response = stack.http.post(
            "/v1/lots", json=lot_body(f"{stack.prefix}-REV-2"), headers={**headers, "Idempotency-Key": "k"}
        )
        assert response.status_code == 401, (attempt, response.text)
        assert "revoked" in error_of(response)["message"]
        assert token not in response.text
    assert not stack.runtime.outbox.holds_key(
        credential_id, "k"
    )  # nothing stored under the refused writes' key


def test_reading_an_operation_needs_a_token(stack: Stack) -> None:
    assert stack.http.get("/v1/operations/anything").status_code == 401


def test_health_reports_the_node_the_index_and_the_outbox_backlog(stack: Stack) -> None:
    stack.register()

    response = stack.http.get("/health")

    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["node"]["reachable"] is True
    assert health["node"]["chain_id"] == stack.w3.eth.chain_id
    assert health["node"]["block_number"] == stack.w3.eth.block_number
    assert health["outbox"]["backlog"] == 0
    assert health["index"] == {"cursor_block": None, "lag_blocks": None, "error": None}  # never indexed

    runtime = stack.runtime
    Indexer(runtime.engine, RpcLogSource(stack.w3, runtime.deployment.registry), runtime.deployment).sync()
    stack.register()  # one block the index has not seen

    index = stack.http.get("/health").json()["index"]
    assert index["cursor_block"] == stack.w3.eth.block_number - 1
    assert index["lag_blocks"] == 1


def test_health_says_when_the_index_holds_blocks_the_node_no_longer_has(stack: Stack) -> None:
    runtime = stack.runtime
    Indexer(runtime.engine, RpcLogSource(stack.w3, runtime.deployment.registry), runtime.deployment).sync()
    head = stack.w3.eth.block_number
    move = text("UPDATE index_cursor SET block_number = :number")
    with runtime.engine.begin() as connection:  # as after the node was restored from an older save
        connection.execute(move, {"number": head + 3})
    try:
        health = stack.http.get("/health").json()
    finally:
        with runtime.engine.begin() as connection:
            connection.execute(move, {"number": head})

    assert health["status"] == "degraded"
    assert any("3 block(s) ahead of the node's head" in reason for reason in health["reasons"]), health


def test_health_counts_operations_the_outbox_cannot_send_yet(stack: Stack) -> None:
    stranger = Account.create()  # a credential whose key this service does not have
    _, token = stack.runtime.credentials.create("keyless", stranger.address, "dev:keyless")
    response = stack.http.post(
        "/v1/handovers/cancel", json={"lot_ids": ["A"]}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202

    assert stack.http.get("/health").json()["outbox"]["backlog"] == 1


def test_an_unknown_route_answers_in_the_error_shape(stack: Stack) -> None:
    response = stack.http.get("/v1/nothing-here")

    assert response.status_code == 404
    assert error_of(response)["message"] == "Not Found"


def test_the_openapi_document_has_an_example_for_every_request_body(stack: Stack) -> None:
    spec = stack.http.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    bodies = [
        operation["requestBody"]
        for path in spec["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    ]

    assert len(bodies) >= 10, "9 write bodies and the document check"
    for body in bodies:
        [content] = body["content"].values()
        reference = content["schema"]["$ref"].rsplit("/", 1)[-1]
        schema = schemas[reference]
        assert schema.get("examples") or content.get("example"), reference
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

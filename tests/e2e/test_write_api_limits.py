"""Write rate limits per credential (429 with Retry-After), and body limits that hold for chunked
bodies without a Content-Length."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from api.ratelimit import WriteRateLimiter
from tests.e2e.conftest import MAX_DOCUMENT_BYTES, MAX_REQUEST_BYTES, Stack, error_of, lot_body

BURST = 3
RATE_PER_S = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(stack: Stack) -> Iterator[Clock]:
    """A small limit on a clock the test moves; the stack's own limiter is put back afterwards."""
    state = stack.http.app.state  # type: ignore[attr-defined]
    original = state.write_limiter
    clock = Clock()
    state.write_limiter = WriteRateLimiter(RATE_PER_S, BURST, clock=clock)
    yield clock
    state.write_limiter = original


def operations(stack: Stack) -> int:
    with stack.runtime.engine.connect() as connection:
        count: int = connection.execute(text("SELECT count(*) FROM operations")).scalar_one()
    return count


def test_writes_over_the_burst_are_429_with_retry_after_and_then_recover(stack: Stack, clock: Clock) -> None:
    # an invalid body still spends a write: a flood of bad requests is limited like any other
    for _ in range(BURST):
        assert stack.post("/v1/handovers/cancel", stack.operator, {}).status_code == 422

    refused = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id()))

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    error = error_of(refused)
    assert error["type"] == "RateLimited"
    assert "2 writes/s per credential, bursts of 3" in error["message"]
    assert stack.operator.token not in refused.text

    clock.now += 1 / RATE_PER_S
    assert stack.post("/v1/handovers/cancel", stack.operator, {}).status_code == 422
    assert stack.post("/v1/handovers/cancel", stack.operator, {}).status_code == 429


def test_the_limit_is_per_credential(stack: Stack, clock: Clock) -> None:
    for _ in range(BURST):
        stack.post("/v1/handovers/cancel", stack.clerk, {})
    assert stack.post("/v1/handovers/cancel", stack.clerk, {}).status_code == 429

    assert stack.post("/v1/handovers/cancel", stack.buyer, {}).status_code == 422
    operation = stack.post("/v1/lots", stack.operator, lot_body(stack.lot_id()))
    assert operation.status_code == 202, operation.text


def test_a_refused_write_stores_nothing(stack: Stack, clock: Clock) -> None:
    for _ in range(BURST):
        stack.post("/v1/handovers/cancel", stack.lab, {})
    before = operations(stack)

    responses = [stack.post("/v1/assays/sign", stack.lab, {}) for _ in range(3)]
    responses.append(stack.post("/v1/handovers/cancel", stack.lab, {"lot_ids": ["A"]}))

    assert [r.status_code for r in responses] == [429] * 4
    assert operations(stack) == before


def test_reads_and_bad_tokens_do_not_spend_writes(stack: Stack, clock: Clock) -> None:
    for _ in range(10):
        assert stack.http.get("/v1/lots").status_code == 200
        assert stack.http.get("/v1/operations/none", headers=stack.operator.auth).status_code == 404
        assert (
            stack.http.post("/v1/lots", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
        )

    assert stack.post("/v1/handovers/cancel", stack.operator, {}).status_code == 422


def test_the_default_limit_is_generous(stack: Stack) -> None:
    limiter = stack.http.app.state.write_limiter  # type: ignore[attr-defined]
    assert (limiter.rate_per_s, limiter.burst) == (500.0, 1_000)


# ------------------------------------------------------------------ body limits


def _chunked(total: int, prefix: bytes = b"", suffix: bytes = b"") -> Iterator[bytes]:
    yield prefix
    for _ in range(total // 65_536 + 1):
        yield b" " * 65_536
    yield suffix


def test_a_chunked_json_body_over_the_limit_is_413_without_a_content_length(stack: Stack) -> None:
    response = stack.http.post(
        "/v1/lots/batch",
        content=_chunked(MAX_REQUEST_BYTES, b'{"site": "SH2", "lots": [', b"]}"),
        headers={**stack.operator.auth, "Content-Type": "application/json"},
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert error_of(response)["type"] == "BodyTooLarge"
    assert str(MAX_REQUEST_BYTES) in error_of(response)["message"]


def test_a_chunked_upload_over_the_limit_is_413_and_stores_nothing(stack: Stack) -> None:
    lot_id = stack.register()
    documents = stack.settings.data_dir / "documents"
    before = sorted(documents.rglob("*")) if documents.exists() else []
    boundary = "limit-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    response = stack.http.post(
        f"/v1/lots/{lot_id}/documents",
        content=_chunked(MAX_DOCUMENT_BYTES * 20, head, f"\r\n--{boundary}--\r\n".encode()),
        headers={**stack.operator.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert (sorted(documents.rglob("*")) if documents.exists() else []) == before


def test_a_body_nested_too_deep_is_422_before_the_token_is_looked_at(stack: Stack) -> None:
    """py_ecc raises the recursion limit to 100,000 at import, so json.loads of this would crash the
    process (a C stack overflow), for anyone, before authentication."""
    response = stack.http.post(
        "/v1/lots", content=b"[" * 200_000, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "body"
    assert stack.http.get("/health").status_code == 200

"""Request body limits, answered in the API's error shape.

A body is refused before it is read when its Content-Length is over the limit, and while it is
read otherwise (chunked uploads), so a client cannot make the API buffer more than the limit.
JSON writes get `max_request_bytes` (a batch of 1,000 lots is about 300 KB); document uploads get
`max_document_bytes` plus room for the multipart framing; the document store then enforces the
exact document limit as it writes.
"""

from __future__ import annotations

import json
import re

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, error_response
from provenance.epcis.capture import (
    CAPTURE_FILE_SIZE_LIMIT,
    CaptureLimitExceededException,
    capture_limit_headers,
)
from provenance.epcis.query import response_headers

MULTIPART_SLACK_BYTES = 64 * 1024
"""What a multipart body may carry beyond the document itself: boundaries, part headers, `kind`."""
_UPLOAD = re.compile(r"^/v1/(lots/[^/]+/documents|verify/document)$")
_CAPTURE = re.compile(r"^/epcis/(capture|events)/?$")
"""EPCIS capture: its own limit, answered in GS1's shape (`api.routers.epcis_capture`)."""


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_document_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_document_bytes + MULTIPART_SLACK_BYTES

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] == "POST" and _UPLOAD.match(scope["path"]):
            return self.max_upload_bytes
        if scope["method"] == "POST" and _CAPTURE.match(scope["path"]):
            return CAPTURE_FILE_SIZE_LIMIT
        return self.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await too_large(scope, limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(_message(limit))
            return message

        await self.app(scope, limited, send)


def too_large(scope: Scope, limit: int) -> Response:
    """413 in the API's error shape, or GS1's (`CaptureLimitExceededException`) for a capture."""
    if _CAPTURE.match(scope["path"]):
        error = CaptureLimitExceededException(
            f"the document is larger than {limit} bytes (GS1-EPCIS-Capture-File-Size-Limit)"
        )
        headers = response_headers() | capture_limit_headers()
        return Response(json.dumps(error.problem()), 413, headers, "application/problem+json")
    return error_response(413, "BodyTooLarge", _message(limit))


def _message(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a request body may have; the API's own bodies need 4."""
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENING = frozenset(b"[{")
_PAIR_PASSES = 8


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True for every body that opens more than `limit` arrays or objects inside each other (so a
    JSON parser would recurse deeper), and possibly for one deeper than `limit - 16`; never for
    the API's own bodies, which need 4 levels.

    The bytes outside strings are reduced to their brackets; a few passes of removing adjacent pairs
    (in C) shrink a long flat body, each pass lowering the depth by at most 2; then one scan counts,
    stopping as soon as it is too deep. 4 MiB take about 0.2 s.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET)
    for _ in range(_PAIR_PASSES):
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if shorter == brackets:
            break
        brackets = shorter
    depth, allowed = 0, limit - 2 * _PAIR_PASSES
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            if depth > allowed:
                return True
        else:
            depth -= 1
    return False


class JsonDepthLimit:
    """Refuses request bodies nested deeper than MAX_JSON_DEPTH before anything parses them.

    Python's `json` decoder recurses once per level, and a dependency of web3 (py_ecc) raises the
    interpreter's recursion limit to 100,000 at import: a ~100 KB body of `[[[[...` then overflows
    the C stack of the thread parsing it and kills the whole process (a segfault, not an
    exception), before authentication runs. Multipart uploads are not JSON and pass untouched;
    BodyLimit, outside this middleware, bounds what is buffered here.
    """

    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or _is_form(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            try:
                message = await receive()
            except BodyTooLarge as error:  # BodyLimit, outside, stopped an over-long chunked body
                if _CAPTURE.match(scope["path"]):
                    await too_large(scope, CAPTURE_FILE_SIZE_LIMIT)(scope, receive, send)
                else:
                    await error_response(error.status_code, "BodyTooLarge", str(error.detail))(
                        scope, receive, send
                    )
                return
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_too_deep(body, self.max_depth):
            response = error_response(
                422, "ValidationError", f"the body is nested deeper than {self.max_depth} levels", "body"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay([body], None, receive), send)


def _replay(bodies: list[bytes], first: Message | None, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    if first is not None:
        pending.append(first)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _is_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind in (b"multipart/form-data", b"application/x-www-form-urlencoded")
    return False

"""Request body limits, answered in the API's error shape.

A body is refused before it is read when its Content-Length is over the limit, and while it is
read otherwise (chunked uploads), so a client cannot make the API buffer more than the limit.
JSON writes get `max_request_bytes` (a batch of 1,000 lots is about 300 KB); document uploads get
`max_document_bytes` plus room for the multipart framing; the document store then enforces the
exact document limit as it writes.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, error_response

MULTIPART_SLACK_BYTES = 64 * 1024
"""What a multipart body may carry beyond the document itself: boundaries, part headers, `kind`."""
_UPLOAD = re.compile(r"^/v1/(lots/[^/]+/documents|verify/document)$")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_document_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_document_bytes + MULTIPART_SLACK_BYTES

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] == "POST" and _UPLOAD.match(scope["path"]):
            return self.max_upload_bytes
        return self.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = error_response(413, "BodyTooLarge", _message(limit))
            await response(scope, receive, send)
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

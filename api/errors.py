"""The one place where errors become HTTP statuses.

Every error answer has the same shape, `{"error": {"type", "field", "message"}}`, whether the
error came from the domain (a field that breaks a rule), from pydantic (a body of the wrong
shape), from the access check or from Starlette itself (an unknown route, a body too large).
Statuses are looked up along the error's class hierarchy, so a new subclass of a mapped error
gets its parent's status without an edit here.

Messages never carry a token or a key: the errors raised on purpose are built from field names,
role names and addresses only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.ratelimit import RateLimited
from provenance.documents import DocumentTooLarge
from provenance.errors import (
    ChainError,
    ConfigurationError,
    CredentialInactive,
    DomainError,
    IdempotencyConflict,
    IndexStateError,
    ProvenanceError,
)
from provenance.services.access import MissingRole

log = logging.getLogger(__name__)


class NotAuthenticated(ProvenanceError):
    """No bearer token, or one that no active credential has."""


class NotFound(ProvenanceError, LookupError):
    """An operation or document this service does not know."""


class BodyTooLarge(StarletteHTTPException):
    """A request body over its limit, found while reading it. An HTTPException, because FastAPI
    turns any other exception raised while it reads a body into a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


STATUS_BY_ERROR: dict[type[Exception], int] = {
    NotAuthenticated: 401,
    CredentialInactive: 401,
    MissingRole: 403,
    NotFound: 404,
    IdempotencyConflict: 409,
    RateLimited: 429,
    DocumentTooLarge: 413,
    DomainError: 422,
    ChainError: 503,
    IndexStateError: 503,
    ConfigurationError: 500,
    ProvenanceError: 500,
}


def status_of(error: Exception) -> int:
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def error_response(
    status: int, kind: str, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "field": field, "message": message}}, status_code=status, headers=headers
    )


def field_path(location: Sequence[int | str]) -> str:
    """pydantic's ("body", "lots", 3, "mass_g") as the domain writes it: lots[3].mass_g."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "header", "path", "cookie"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


async def _provenance_error(request: Request, error: Exception) -> JSONResponse:
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after_s)}
    answer_headers: Mapping[str, str] | None = getattr(error, "answer_headers", None)
    if answer_headers is not None:  # a read's freshness (api.routers.reads.Reading)
        headers = {**answer_headers, **(headers or {})}
    if status >= 500:
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(error).__name__, error)
    return error_response(
        status, type(error).__name__, _message(error), getattr(error, "field", None), headers=headers
    )


def _message(error: Exception) -> str:
    if isinstance(error, DomainError):
        return error.message
    return str(error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first: dict[str, Any] = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    return error_response(422, "ValidationError", str(first.get("msg")), field_path(first.get("loc", ())))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    kind = "HTTPError" if type(error) is StarletteHTTPException else type(error).__name__
    return error_response(error.status_code, kind, str(error.detail), headers=error.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProvenanceError, _provenance_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

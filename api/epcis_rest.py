"""The EPCIS 2.0 REST query binding as a sub-application mounted at `/epcis` (GS1's OpenAPI paths
relative to it): its own error shape (GS1's RFC 7807 exceptions, `application/problem+json`) for
everything under the base path, the GS1 headers on every answer, content negotiation, and the
`OPTIONS` discovery of every resource. The routes are in `api.routers.epcis_query`; the query
language in `provenance.epcis.query`; the SQL in `provenance.index.epcis_queries`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.chain_head import ChainHead
from api.errors import status_of
from api.routers.reads import Reading, freshness_headers
from provenance.bootstrap import Runtime
from provenance.epcis.capture import CaptureConflict, capture_limit_headers, job_document
from provenance.epcis.export import site_uri
from provenance.epcis.ids import IdentifierScheme, translated
from provenance.epcis.query import (
    QUERY_NAME,
    EpcisException,
    EventQuery,
    ListPage,
    Negotiated,
    NoSuchNameException,
    QueryParameterException,
    SecurityException,
    collection,
    collection_after,
    collection_token,
    encode_token,
    negotiate,
    next_link,
    query_document,
    query_document_text,
    response_headers,
)
from provenance.errors import DomainError, IdempotencyConflict, ProvenanceError
from provenance.index.capture_store import CaptureRecord, CaptureStore
from provenance.index.epcis_queries import EpcisQueries, EventPage, NamedQueries, StoredQuery

PROBLEM = "application/problem+json"
BASE_PATH = "/epcis"


class EpcisRequest:
    """What every answer of the binding needs from its request: the media type and versions
    negotiated (406 otherwise), the query parameters in order, and the URL the Link header repeats."""

    def __init__(self, request: Request) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.negotiated: Negotiated = negotiate(headers.get("accept"), headers.get("gs1-epc-format"), headers)
        self.parameters: list[tuple[str, str]] = list(request.query_params.multi_items())
        self.url = str(request.url.replace(query=""))
        self.base: str = request.scope.get("root_path", "")
        self.scheme: IdentifierScheme = request.app.state.identifiers
        self.form, answered = self.scheme.translated_form(headers.get("gs1-epc-format"))
        self.negotiated = replace(self.negotiated, epc_format=answered)

    def headers(self, reads: Reading | None = None) -> dict[str, str]:
        found = gs1_headers(self.negotiated)
        if reads is not None:
            found |= freshness_headers(reads.block_seen, reads.head, reads.source)
        return found

    def answer(self, body: Any, headers: dict[str, str], status: int = 200) -> Response:
        return self.answer_text(json.dumps(body, separators=(",", ":")), headers, status)

    def answer_text(self, text: str, headers: dict[str, str], status: int = 200) -> Response:
        return Response(
            text,
            status_code=status,
            media_type=self.negotiated.media_type,
            headers=headers,
        )

    def events(self, reads: Reading, query: EventQuery, name: str = QUERY_NAME) -> Response:
        """A page of events as an EPCISQueryDocument, with `Link` to the next page if any."""
        with reads, read_connection(reads) as connection:
            page = EpcisQueries(connection, self.scheme).page(query)
        headers = self.headers(reads)
        if page.next_key is not None:
            headers["Link"] = next_link(
                self.url, self.parameters, encode_token(page.next_key, query.fingerprint)
            )
        return self.answer_text(self.document(page, name), headers)

    def event(self, reads: Reading, query: EventQuery) -> Response:
        """The one event of an eventID, with its error declarations; 404 if there is none."""
        with reads, read_connection(reads) as connection:
            page = EpcisQueries(connection, self.scheme).page(query, per_page=1_000)
        if not page.texts:
            raise NoSuchNameException("no event with this eventID in this repository", "eventID")
        return self.answer_text(self.document(page), self.headers(reads))

    def document(self, page: EventPage, name: str = QUERY_NAME) -> str:
        """The page's EPCISQueryDocument: its events as they were read, or with our GS1 keys in the
        form `GS1-EPC-Format` asked for (the eventIDs stay: the hash reads either form as the same
        canonical Digital Link)."""
        if self.form is None or self.form == self.scheme.form:
            return query_document_text(page.texts, int(time.time()), name)
        events = [translated(event, self.scheme, self.form) for event in page.events]
        return json.dumps(query_document(events, int(time.time()), name), separators=(",", ":"))

    def locations(self, reads: Reading, per_page: int, token: str | None) -> Response:
        """The sites of our events as business-location URIs, a page at a time."""
        with reads, read_connection(reads) as connection:
            sites = EpcisQueries(connection, self.scheme).sites(
                collection_after(token, "bizLocations"), per_page + 1
            )
        more = len(sites) > per_page
        next_token = collection_token(sites[per_page - 1], "bizLocations") if more else None
        return self.members([site_uri(site, self.scheme) for site in sites[:per_page]], next_token)

    def accepted(self, location: str, behaviour: str) -> Response:
        """A capture's answer: 202, `Location` the job, its error behaviour echoed."""
        headers = {**self.headers(), "Location": location, "GS1-Capture-Error-Behaviour": behaviour}
        return Response(status_code=202, headers=headers)

    def job(self, store: CaptureStore, record: CaptureRecord) -> dict[str, Any]:
        return job_document(record, store.operations(record))

    def capture_jobs(
        self, store: CaptureStore, credential_id: str, per_page: int, token: str | None
    ) -> Response:
        """A token's capture jobs (GS1's array of CaptureJob), oldest first, with `Link` to the next page."""
        found = store.page(credential_id, collection_after(token, "capture"), per_page + 1)
        more = len(found) > per_page
        next_token = collection_token(found[per_page - 1].id, "capture") if more else None
        return self.members([self.job(store, record) for record in found[:per_page]], next_token, plain=True)

    def created(self, location: str) -> Response:
        return Response(status_code=201, headers={**self.headers(), "Location": location})

    def queries(self, store: NamedQueries, per_page: int, token: str | None) -> Response:
        found = store.page(collection_after(token, "queries"), per_page + 1)
        more = len(found) > per_page
        next_token = collection_token(found[per_page - 1].name, "queries") if more else None
        members = [{"name": stored.name, "query": stored.query} for stored in found[:per_page]]
        return self.members(members, next_token, plain=True)

    def stored(self, store: NamedQueries, name: str) -> StoredQuery:
        found = store.get(name)
        if found is None:
            raise NoSuchNameException(f"no query named {name!r}", "queryName")
        return found

    def query(self, store: NamedQueries, name: str) -> Response:
        """GS1's schema of this answer is an array (of the one definition)."""
        found = self.stored(store, name)
        return self.answer([{"name": found.name, "query": found.query}], self.headers())

    def delete(self, store: NamedQueries, name: str, account: str) -> Response:
        """Only the account whose token created a query may delete it."""
        found = self.stored(store, name)
        if found.created_by.lower() != account.lower():
            raise SecurityException(f"the query {name!r} was created with another account's token")
        store.delete(name)
        return Response(status_code=204, headers=self.headers())

    def listing(self, page: ListPage) -> Response:
        return self.members(page.members, page.next_token)

    def members(self, members: Sequence[Any], next_token: str | None, *, plain: bool = False) -> Response:
        """A collection (or, `plain`, a JSON array) with `Link` to its next page if any."""
        headers = self.headers()
        if next_token is not None:
            headers["Link"] = next_link(self.url, self.parameters, next_token)
        return self.answer(list(members) if plain else collection(members), headers)


def read_connection(reads: Reading) -> AbstractContextManager[Any]:
    """The read's own connection (`with reads:` opened it): one pool checkout per request."""
    return reads._connect()


async def epcis_request(request: Request) -> EpcisRequest:
    return EpcisRequest(request)


Epcis = Annotated[EpcisRequest, Depends(epcis_request)]


def gs1_headers(negotiated: Negotiated | None = None) -> dict[str, str]:
    """The query binding's GS1 headers and the capture interface's limits (on every answer)."""
    return response_headers(negotiated) | capture_limit_headers()


def problem(error: EpcisException, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(error.problem()),
        status_code=error.status,
        media_type=PROBLEM,
        headers={**gs1_headers(), **(headers or {})},
    )


async def _provenance_error(_request: Request, error: Exception) -> Response:
    freshness: dict[str, str] = dict(getattr(error, "answer_headers", None) or {})
    if isinstance(error, EpcisException):
        return problem(error, freshness)
    status = status_of(error)
    if status in (401, 403):
        denied = SecurityException(str(error))
        denied.status = status
        return problem(denied, {**freshness, **({"WWW-Authenticate": "Bearer"} if status == 401 else {})})
    if isinstance(error, DomainError):
        return problem(QueryParameterException(error.field, error.message), freshness)
    if isinstance(error, IdempotencyConflict):
        return problem(CaptureConflict(str(error), "Idempotency-Key"), freshness)
    failed = EpcisException("the repository cannot answer now: " + type(error).__name__)
    failed.status = status if status >= 500 else 500
    return problem(failed, freshness)


async def _http_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return problem(NoSuchNameException("no such resource in this EPCIS repository"))
    return Response(
        json.dumps({"type": "about:blank", "title": str(error.detail), "status": error.status_code}),
        status_code=error.status_code,
        media_type=PROBLEM,
        headers={**gs1_headers(), **(error.headers or {})},
    )


async def _validation_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": ("query",), "msg": "invalid"}
    name = str(first.get("loc", ("", "request"))[-1])
    return problem(QueryParameterException(name, str(first.get("msg"))))


def discovery(request: Request) -> Response:
    """`OPTIONS` on any resource: 204 with `Allow` (the methods its routes take) and the GS1
    headers (GS1's DefaultDiscoveryResponse and its writable and removable variants)."""
    methods = {"OPTIONS"}
    scope = dict(request.scope)
    from api.routers.epcis_capture import router as capture_router
    from api.routers.epcis_query import router

    for route in [*router.routes, *capture_router.routes]:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    methods.discard("HEAD")
    if methods == {"OPTIONS"}:
        raise NoSuchNameException("no such resource in this EPCIS repository")
    order = ["OPTIONS", "GET", "POST", "DELETE"]
    allow = ", ".join(sorted(methods, key=lambda method: order.index(method) if method in order else 9))
    return Response(status_code=204, headers={"Allow": allow, **gs1_headers()})


def create(runtime: Runtime, chain_head: ChainHead | None, write_limiter: Any = None) -> FastAPI:
    """The binding's app; the parent mounts it at `BASE_PATH` and shares its runtime and its
    write rate limiter (a capture is a write)."""
    from api.routers import epcis_capture, epcis_query

    app = FastAPI(
        title="EPCIS 2.0 query and capture interface",
        version="2.0.0",
        summary="GS1 EPCIS 2.0 REST query binding over the chain's facts (reads need no token) and its "
        "capture binding (writes through the outbox, with the JSON API's tokens and roles).",
    )
    app.state.runtime = runtime
    app.state.chain_head = chain_head
    app.state.identifiers = runtime.settings.epcis_identifiers()
    app.state.write_limiter = write_limiter
    app.add_exception_handler(ProvenanceError, _provenance_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(epcis_query.router)
    app.include_router(epcis_capture.router)

    app.add_middleware(OptionsDiscovery)
    return app


class OptionsDiscovery:
    """`OPTIONS` on any path answered by `discovery`; every other request passes straight through
    (plain ASGI: `@app.middleware("http")` streams every answer through a task and a memory
    stream, which a 100-event page paid for on every request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            answer = discovery(request)
        except EpcisException as error:
            answer = problem(error)
        await answer(scope, receive, send)

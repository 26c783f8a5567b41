"""EPCIS 2.0 REST capture binding (GS1's OpenAPI, under `/epcis` beside the query binding):
`POST /capture` and `POST /events` take events and answer with a capture job; `GET /capture` and
`GET /capture/{captureID}` report jobs from the outbox's operations. The same API tokens, roles and
write rate limit as the JSON write API; the mapping is `provenance.epcis.capture`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import Caller, RuntimeDep, WritingCaller
from api.epcis_rest import Epcis
from provenance.bootstrap import Runtime
from provenance.epcis.capture import (
    CAPTURE_FILE_SIZE_LIMIT,
    CaptureLimitExceededException,
    CaptureService,
    error_behaviour,
    readers_of,
)
from provenance.epcis.ids import IdentifierScheme
from provenance.epcis.query import NoSuchNameException, UnsupportedMediaTypeException, page_parameters
from provenance.index.capture_store import CaptureStore

router = APIRouter()

MEDIA_TYPES = ("application/json", "application/ld+json")


def _service(runtime: Runtime, scheme: IdentifierScheme) -> CaptureService:
    """Reading identifiers with the deployment's scheme: what it exports, it can capture."""
    store = CaptureStore(runtime.engine, runtime.outbox)
    client = runtime.client
    return CaptureService(store, runtime.roles, client, client.chain_id, client.address, readers_of(scheme))


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it is over the file size limit."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaTypeException(
            f"send EPCIS 2.0 JSON or JSON-LD ({' or '.join(MEDIA_TYPES)}), not {media or 'nothing'}",
            "Content-Type",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > CAPTURE_FILE_SIZE_LIMIT:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > CAPTURE_FILE_SIZE_LIMIT:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> CaptureLimitExceededException:
    return CaptureLimitExceededException(
        f"the document is larger than {CAPTURE_FILE_SIZE_LIMIT} bytes (GS1-EPCIS-Capture-File-Size-Limit)"
    )


async def _capture(
    request: Request, epcis: Epcis, caller: WritingCaller, runtime: RuntimeDep, *, single_event: bool
) -> Response:
    behaviour = error_behaviour(request.headers.get("gs1-capture-error-behaviour"))
    key = request.headers.get("idempotency-key")
    body = await _body(request)
    job = await run_in_threadpool(
        _service(runtime, epcis.scheme).capture, caller, body, behaviour, key, single_event=single_event
    )
    return epcis.accepted(f"{epcis.base}/capture/{job.id}", behaviour)


@router.post("/capture", status_code=202, summary="Capture an EPCIS document (needs an API token)")
async def capture(request: Request, epcis: Epcis, caller: WritingCaller, runtime: RuntimeDep) -> Response:
    return await _capture(request, epcis, caller, runtime, single_event=False)


@router.post("/events", status_code=202, summary="Capture one EPCIS event (needs an API token)")
async def capture_event(
    request: Request, epcis: Epcis, caller: WritingCaller, runtime: RuntimeDep
) -> Response:
    return await _capture(request, epcis, caller, runtime, single_event=True)


@router.get("/capture", summary="This token's capture jobs, a page at a time")
def capture_jobs(epcis: Epcis, caller: Caller, runtime: RuntimeDep) -> Response:
    per_page, token = page_parameters(epcis.parameters, "capture")
    store = CaptureStore(runtime.engine, runtime.outbox)
    return epcis.capture_jobs(store, caller.id, per_page, token)


@router.get("/capture/{captureID}", summary="A capture job, from its operations")
def capture_job(captureID: str, epcis: Epcis, caller: Caller, runtime: RuntimeDep) -> Response:  # noqa: N803
    store = CaptureStore(runtime.engine, runtime.outbox)
    record = store.get(captureID)
    if record is None or record.credential_id != caller.id:  # another token's jobs are not its business
        raise NoSuchNameException(f"no capture job {captureID}", "captureID")
    return epcis.answer(epcis.job(store, record), epcis.headers())

"""Documents of a lot (certificates, weighbridge tickets, photos): stored by SHA-256, hash anchored on chain.

The upload is stored before its anchoring is queued, and content addressing makes both steps safe
to repeat: the same bytes are one file, and the anchoring operation follows the Idempotency-Key
like every write. A document whose anchoring then fails (the caller does not hold the lot) stays
stored but unanchored: the chain, not the file store, says which documents belong to a lot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from fastapi.responses import FileResponse

from api.deps import Caller, RuntimeDep, WritesDep, operation_response_within
from api.errors import NotFound
from api.schemas import DocumentOut, DocumentUploadOut, ErrorOut, Label
from provenance.domain.commands import AnchorDocument
from provenance.domain.values import encode_label

CHUNK_BYTES = 1024 * 1024

router = APIRouter(
    tags=["documents"], responses={status: {"model": ErrorOut} for status in (401, 404, 413, 422, 429)}
)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


@router.post(
    "/lots/{lot_id}/documents",
    status_code=202,
    response_model=DocumentUploadOut,
    summary="Upload a document of a lot and anchor its hash",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "example": {"file": "(the document's bytes)", "kind": "weighbridge-ticket"}
                }
            }
        }
    },
)
def upload_document(
    lot_id: Annotated[str, Path(max_length=32, examples=["SH2-2024-000417"])],
    file: Annotated[UploadFile, File(description="The document; at most PROVENANCE_MAX_DOCUMENT_BYTES.")],
    writes: WritesDep,
    response: Response,
    kind: Annotated[
        Label, Form(description="What the document is, as a label.", examples=["weighbridge-ticket"])
    ] = "document",
) -> DocumentUploadOut:
    """Only the lot's custodian can anchor; the chain refuses anyone else (the operation fails)."""
    encode_label(lot_id, "lot_id")
    encode_label(kind, "kind")
    stored = writes.runtime.documents.put(_chunks(file.file))
    url = f"/v1/documents/{stored.sha256}"
    command = AnchorDocument.from_payload(
        {"lot_id": lot_id, "kind": kind, "document_hash": stored.anchor_hash}
    )
    view = writes.submit_blocking(command)
    return DocumentUploadOut(
        document=DocumentOut(
            sha256=stored.sha256,
            document_hash=stored.anchor_hash,
            size_bytes=stored.size_bytes,
            lot_id=lot_id,
            kind=kind,
            url=url,
        ),
        operation=operation_response_within(response, view, document=url),
    )


@router.get(
    "/documents/{sha256}",
    response_class=FileResponse,
    summary="Download a document by its SHA-256",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_document(
    sha256: Annotated[str, Path(pattern=r"^(0x)?[0-9a-fA-F]{64}$")], runtime: RuntimeDep, _caller: Caller
) -> FileResponse:
    """Re-hash what you download: it must equal the name, and the hash the chain anchored."""
    path = runtime.documents.find(sha256)
    if path is None:
        raise NotFound(f"no document {sha256}")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=path.name,
        headers={"ETag": f'"{path.name}"', "Cache-Control": "private, max-age=31536000, immutable"},
    )

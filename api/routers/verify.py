"""Verification a buyer can trust without trusting our database.

`GET /v1/lots/{lot_id}/verify` checks the index's claims about a lot and its whole lineage against
the chain (state by eth_call, events re-read from receipts, lineage recomputed, lab signatures
recovered). `POST /v1/verify/document` hashes an uploaded file and says whether, where and by
whom that hash is anchored on chain.

No token is needed for either: they answer only with what anyone can read from the public chain,
and a buyer or auditor must be able to check a claim without an account with us. Their cost is
bounded: a lineage walk stops at `max_lots` lots, an upload at the document size limit.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile

from api.deps import RuntimeDep
from api.errors import NotFound
from api.schemas import (
    CertifyingAssayOut,
    DocumentAnchorOut,
    DocumentVerificationOut,
    ErrorOut,
    VerificationOut,
)
from provenance.documents import DocumentTooLarge
from provenance.verification.model import DEFAULT_MAX_LOTS, verification_dict

CHUNK_BYTES = 1024 * 1024

router = APIRouter(
    tags=["verification"], responses={status: {"model": ErrorOut} for status in (404, 413, 503)}
)


@router.get(
    "/lots/{lot_id}/verify",
    response_model=VerificationOut,
    summary="Check the index's claims about a lot and its lineage against the chain",
)
def verify_lot(
    lot_id: Annotated[str, Path(max_length=66, examples=["SH2-2024-000417"])],
    runtime: RuntimeDep,
    max_lots: Annotated[
        int, Query(ge=1, le=DEFAULT_MAX_LOTS, description="Stop the lineage walk after this many lots.")
    ] = DEFAULT_MAX_LOTS,
) -> VerificationOut:
    """`verdict` is `failed` as soon as one fact differs; `differences` names each (lot, event, field,
    index value, chain value, coordinates). The chain is read at the index's cursor block."""
    verification = runtime.verifier.lot(lot_id, max_lots)
    if verification is None:
        raise NotFound(f"neither the index nor the chain knows lot {lot_id!r}")
    return VerificationOut.model_validate(verification_dict(verification))


@router.post(
    "/verify/document",
    response_model=DocumentVerificationOut,
    summary="Is this file's hash anchored on chain? On which lot, by whom, in which block",
    openapi_extra={
        "requestBody": {"content": {"multipart/form-data": {"example": {"file": "(the document's bytes)"}}}}
    },
)
def verify_uploaded_document(
    file: Annotated[UploadFile, File(description="The document; at most PROVENANCE_MAX_DOCUMENT_BYTES.")],
    runtime: RuntimeDep,
) -> DocumentVerificationOut:
    """The file is hashed (SHA-256, as the document store and `DocumentAnchored` use), never stored."""
    limit = runtime.settings.max_document_bytes
    digest = hashlib.sha256()
    size = 0
    while chunk := file.file.read(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise DocumentTooLarge(limit)
        digest.update(chunk)
    document_hash = "0x" + digest.hexdigest()
    found = runtime.verifier.document(document_hash)
    return DocumentVerificationOut(
        sha256=digest.hexdigest(),
        document_hash=document_hash,
        size_bytes=size,
        anchored=found.anchored,
        anchors=[
            DocumentAnchorOut(
                lot_id=anchor.lot_id,
                kind=anchor.kind,
                anchored_by=anchor.anchored_by,
                tx_hash=anchor.where.tx_hash,
                block_number=anchor.where.block_number,
                log_index=anchor.where.log_index,
                in_index=anchor.in_index,
            )
            for anchor in found.anchors
        ],
        unconfirmed=[
            DocumentAnchorOut(
                lot_id=str(claim.fields["lotId"]),
                kind=str(claim.fields["kind"]),
                anchored_by=str(claim.fields["by"]),
                tx_hash=claim.where.tx_hash,
                block_number=claim.where.block_number,
                log_index=claim.where.log_index,
                in_index=True,
            )
            for claim in found.unconfirmed
        ],
        checked_at_block=found.block_number,
        assays=[
            CertifyingAssayOut(
                lot_id=assay.lot_id,
                lab=assay.lab,
                tx_hash=assay.where.tx_hash,
                block_number=assay.where.block_number,
                log_index=assay.where.log_index,
                confirmed=assay.confirmed,
            )
            for assay in found.assays
        ],
    )

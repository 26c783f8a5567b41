"""Corrections of lots and physical stock counts: what the registry records (`correctLot`,
`recordStockCount`) and a person must be able to declare. Writes go through the outbox like every
other: role, validation, idempotency key, `?wait=true`.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import WritesDep, operation_response
from api.schemas import CorrectionIn, ErrorOut, OperationOut, StockCountIn

router = APIRouter(
    tags=["corrections"],
    responses={status: {"model": ErrorOut} for status in (401, 403, 409, 413, 422, 429)},
)


@router.post(
    "/corrections", status_code=202, response_model=OperationOut, summary="Correct a lot's recorded mass"
)
def correct_lot(body: CorrectionIn, writes: WritesDep) -> Response:
    """The lot's custodian or an admin may: the chain decides (`NotCustodian`), as for handovers.
    A correction that would leave a negative mass, or a `did_not_occur` that would not leave zero,
    fails on chain (`InvalidCorrection`)."""
    return operation_response(writes.submit_blocking(body.command()))


@router.post(
    "/stock-counts", status_code=202, response_model=OperationOut, summary="Record a physical stock count"
)
def record_stock_count(body: StockCountIn, writes: WritesDep) -> Response:
    """A registrar of the site (403 "registrar of site S" otherwise, checked before storing)."""
    return operation_response(writes.submit_blocking(body.command()))

"""Lots and their custody: register one or a batch, transform, hand over, accept, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import WritesDep, operation_response
from api.schemas import (
    ErrorOut,
    HandoverIn,
    LotBatchIn,
    LotIdsIn,
    LotRegistrationIn,
    OperationOut,
    TransformationIn,
)

ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (401, 403, 409, 413, 422, 429)
}
router = APIRouter(tags=["lots"], responses=ERRORS)


@router.post("/lots", status_code=202, response_model=OperationOut, summary="Register one lot")
async def register_lot(body: LotRegistrationIn, writes: WritesDep) -> Response:
    return operation_response(await writes.submit(body.command()))


@router.post(
    "/lots/batch",
    status_code=202,
    response_model=OperationOut,
    summary="Register up to 1,000 lots of one site",
)
async def register_lots(body: LotBatchIn, writes: WritesDep) -> Response:
    """One operation; the outbox sends it as as many transactions as the per-transaction gas cap needs."""
    return operation_response(await writes.submit(body.command()))


@router.post(
    "/transformations",
    status_code=202,
    response_model=OperationOut,
    summary="Split, merge, blend or process lots",
)
async def transform(body: TransformationIn, writes: WritesDep) -> Response:
    return operation_response(await writes.submit(body.command()))


@router.post("/handovers", status_code=202, response_model=OperationOut, summary="Offer lots to an account")
async def hand_over(body: HandoverIn, writes: WritesDep) -> Response:
    """No role: the chain lets only the custodian offer a lot."""
    return operation_response(await writes.submit(body.command()))


@router.post(
    "/handovers/accept", status_code=202, response_model=OperationOut, summary="Accept lots offered to you"
)
async def accept_handover(body: LotIdsIn, writes: WritesDep) -> Response:
    return operation_response(await writes.submit(body.accepting()))


@router.post(
    "/handovers/cancel",
    status_code=202,
    response_model=OperationOut,
    summary="Withdraw offers of lots you hold",
)
async def cancel_handover(body: LotIdsIn, writes: WritesDep) -> Response:
    return operation_response(await writes.submit(body.cancelling()))

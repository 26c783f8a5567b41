"""Operations: what became of a write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import Caller, RuntimeDep, WaitOptions, until_final, wait_options
from api.errors import NotFound
from api.schemas import ErrorOut, OperationOut
from api.waiting import FinalWaits

router = APIRouter(tags=["operations"], responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}})


@router.get("/operations/{operation_id}", response_model=OperationOut, summary="An operation's status")
async def get_operation(
    operation_id: Annotated[str, Path(max_length=100)],
    runtime: RuntimeDep,
    caller: Caller,
    request: Request,
    response: Response,
    waiting: Annotated[WaitOptions, Depends(wait_options)],
) -> OperationOut:
    """An operation of the caller's own account; `?wait=true` waits for it to become final."""
    waits: FinalWaits = request.app.state.final_waits
    future = waits.expect(operation_id) if waiting.wait else None  # before the read: no notice is missed
    try:
        view = await run_in_threadpool(runtime.outbox.get, operation_id)
        # another account's operations are not the caller's business, nor is whether they exist
        if view is None or view.sender.lower() != caller.account.lower():
            raise NotFound(f"no operation {operation_id}")
    except BaseException:
        if future is not None:
            waits.forget(operation_id, future)
        raise
    if future is not None:
        view = await until_final(waits, view, future, waiting.timeout_s)
    response.headers["Location"] = f"/v1/operations/{view.id}"
    return OperationOut.of(view)

"""GET /health: is the node answering, how far behind is the index, how much is waiting to be sent."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from api.deps import ServicesDep
from api.schemas import HealthOut, IndexHealth, NodeHealth, OutboxHealth

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(services: ServicesDep, response: Response) -> HealthOut:
    """200 while the node answers (ok, or degraded if the index or outbox cannot be read); 503 if not.

    No authentication: it says nothing a load balancer should not know.
    """
    probe = services.health()
    status: Literal["ok", "degraded", "down"]
    if not probe.node_reachable:
        status = "down"
    elif probe.index_error or probe.outbox_error:
        status = "degraded"
    else:
        status = "ok"
    response.status_code = 503 if status == "down" else 200
    return HealthOut(
        status=status,
        node=NodeHealth(
            reachable=probe.node_reachable,
            chain_id=probe.chain_id,
            block_number=probe.block_number,
            error=probe.node_error,
        ),
        index=IndexHealth(
            cursor_block=probe.index_cursor, lag_blocks=probe.index_lag, error=probe.index_error
        ),
        outbox=OutboxHealth(backlog=probe.outbox_backlog, error=probe.outbox_error),
    )

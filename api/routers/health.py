"""GET /health: is the node answering, how far behind is the index, how much is waiting to be sent."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request, Response

from api.chain_head import ChainHead
from api.deps import RuntimeDep
from api.schemas import (
    ChainConflictOut,
    EmbeddedNodeHealth,
    HealthOut,
    IndexHealth,
    LeaderOut,
    NodeHealth,
    OutboxHealth,
    ReplicaHealth,
    StuckOperationOut,
)
from api.schemas.subscriptions import DeliveryLagOut
from provenance.bootstrap import NodeSample

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(runtime: RuntimeDep, request: Request, response: Response) -> HealthOut:
    """ok; degraded (200) with its `reasons` while the node, the index or the outbox cannot be
    read; down (503) only when the database can be read neither for the index nor for the outbox,
    so nothing can be answered.

    In the server the node is never asked here: the head watcher's last sample stands for it, and
    the node counts as unreachable once it has been silent for 3 s.

    A node that does not answer leaves the API useful: reads answer from the index (with how far
    behind they are) and writes wait in the outbox until the node is back. A load balancer should
    keep sending traffic, so that is 200, not 503.

    No authentication: it says nothing a load balancer should not know.
    """
    chain_head: ChainHead | None = getattr(request.app.state, "chain_head", None)
    seen = chain_head.seen() if chain_head is not None else None
    sample = None
    if seen is not None and chain_head is not None and chain_head.watched:
        sample = NodeSample(seen.block, seen.error, seen.index_cursor)
    probe = runtime.health(sample)
    last_seen = seen.block if seen is not None else None
    reasons: list[str] = []
    if not probe.node_reachable:
        behind = f"index at block {probe.index_cursor}, node last seen at block {last_seen}"
        reasons.append(
            f"node unreachable ({probe.node_error}): reads answer from the index ({behind}); "
            "writes wait in the outbox"
        )
    embedded = probe.embedded_node
    if embedded is not None and embedded.halted:
        reasons.append(f"the embedded node is not started again: {embedded.halted}")
    if probe.conflicts:
        reasons.append(
            f"writes stopped: {len(probe.conflicts)} chain conflict(s), first: "
            f"{probe.conflicts[0].describe()}; resolve with `provenance outbox resume`"
        )
    if probe.stuck_count:
        first_id, first_reason = probe.stuck[0]
        reasons.append(
            f"outbox stuck: {probe.stuck_count} operation(s) the node will not take; the oldest, "
            f"{first_id}: {first_reason}"
        )
    if probe.index_ahead:
        reasons.append(
            f"the index is {probe.index_ahead} block(s) ahead of the node's head {probe.block_number}: the "
            "node lost blocks (restored from an older save, or a reorg) or lags; until the indexer rolls "
            "back, reads may show facts the node no longer holds"
        )
    replica = probe.replica
    if replica is not None and replica.error is not None:
        reasons.append(f"read replica unreadable ({replica.error}): reads go to the primary")
    if probe.deliveries_error:
        reasons.append(f"deliveries unreadable ({probe.deliveries_error})")
    if probe.index_error:
        reasons.append(f"index unreadable ({probe.index_error})")
    if probe.outbox_error:
        reasons.append(f"outbox unreadable ({probe.outbox_error})")
    status: Literal["ok", "degraded", "down"]
    if probe.index_error and probe.outbox_error:
        status = "down"
    elif reasons:
        status = "degraded"
    else:
        status = "ok"
    response.status_code = 503 if status == "down" else 200
    lag = probe.index_lag
    if lag is None and last_seen is not None and probe.index_cursor is not None:
        lag = max(0, last_seen - probe.index_cursor)
    return HealthOut(
        status=status,
        reasons=reasons,
        node=NodeHealth(
            reachable=probe.node_reachable,
            chain_id=probe.chain_id,
            block_number=probe.block_number,
            last_seen_block=last_seen,
            error=probe.node_error,
            embedded=None if embedded is None else EmbeddedNodeHealth.of(embedded),
        ),
        index=IndexHealth(cursor_block=probe.index_cursor, lag_blocks=lag, error=probe.index_error),
        outbox=OutboxHealth(
            backlog=probe.outbox_backlog,
            error=probe.outbox_error,
            sending=not probe.conflicts,
            stuck=probe.stuck_count,
            stuck_operations=[
                StuckOperationOut(operation_id=operation_id, reason=reason)
                for operation_id, reason in probe.stuck
            ],
            conflicts=[
                ChainConflictOut(
                    operation_id=conflict.operation_id,
                    lost_block=conflict.lost_block,
                    error_name=conflict.error_name,
                    detected_at=conflict.detected_at,
                    description=conflict.describe(),
                )
                for conflict in probe.conflicts
            ],
        ),
        leaders=[
            LeaderOut(
                role=leader.role,
                holder=leader.holder,
                token=leader.token,
                leading=leader.remaining_s > 0,
                remaining_s=round(leader.remaining_s, 2),
            )
            for leader in probe.leaders
        ],
        read_replica=None
        if replica is None
        else ReplicaHealth(
            cursor_block=replica.cursor,
            behind_primary_blocks=None
            if replica.cursor is None or probe.index_cursor is None
            else max(0, probe.index_cursor - replica.cursor),
            error=replica.error,
        ),
        deliveries=[DeliveryLagOut.of(lag, time.time()) for lag in probe.deliveries],
    )

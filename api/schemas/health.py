"""Errors and health."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import FromDomain
from api.schemas.subscriptions import DeliveryLagOut


class ErrorBody(BaseModel):
    type: str = Field(description="The error's class, e.g. DomainError, MissingRole.")
    field: str | None = Field(default=None, description="The offending input, as a path like lots[3].mass_g.")
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class EmbeddedNodeHealth(FromDomain):
    """The embedded node as `provenance serve` keeps it: restarted when it dies, saved when it moves."""

    running: bool
    restarts: int = Field(description="How often serve started the node again since serve started.")
    last_exit: str | None = Field(default=None, description="How the node last died, and when.")
    saved_block: int | None = Field(default=None, description="The head of the last saved chain.")
    saved_at: float | None = Field(default=None, description="Unix time of the last save.")
    save_error: str | None = Field(default=None, description="Why the last save failed.")
    halted: str | None = Field(
        default=None, description="Why the node is not started again (its saved chain is inconsistent)."
    )


class NodeHealth(BaseModel):
    reachable: bool
    chain_id: int | None = None
    block_number: int | None = None
    last_seen_block: int | None = Field(
        default=None, description="The head the API last heard from the node (while it is unreachable)."
    )
    error: str | None = None
    embedded: EmbeddedNodeHealth | None = Field(
        default=None, description="Present when this process runs the embedded node."
    )


class StuckOperationOut(BaseModel):
    operation_id: str
    reason: str


class ChainConflictOut(BaseModel):
    operation_id: str
    lost_block: int
    error_name: str
    detected_at: str
    description: str


class IndexHealth(BaseModel):
    cursor_block: int | None = None
    lag_blocks: int | None = None
    error: str | None = None


class ReplicaHealth(BaseModel):
    cursor_block: int | None = Field(default=None, description="The last block the replica's index holds.")
    behind_primary_blocks: int | None = Field(
        default=None, description="How many blocks the replica's index is behind the primary's."
    )
    error: str | None = Field(default=None, description="Why it cannot be read; reads go to the primary.")


class OutboxHealth(BaseModel):
    backlog: int | None = Field(default=None, description="Operations not yet final (pending or sent).")
    error: str | None = None
    sending: bool = Field(
        default=True, description="False while a chain conflict holds the outbox: nothing is sent."
    )
    stuck: int = Field(default=0, description="Unfinished operations the node will not take just now.")
    stuck_operations: list[StuckOperationOut] = Field(
        default_factory=list, description="The oldest of them, with what the node answered."
    )
    conflicts: list[ChainConflictOut] = Field(
        default_factory=list,
        description="Operations the chain accepted, lost and then refused; held until a person "
        "resolves them (`provenance outbox resume`).",
    )


class LeaderOut(BaseModel):
    """Who runs a role that has one holder across replicas (docs/deploy.md)."""

    role: str = Field(description="`indexer` or `outbox-worker`.")
    holder: str = Field(description="host:pid:role of the process holding the lease.")
    token: int = Field(description="The fencing token: one more with every new holder.")
    leading: bool = Field(description="Whether the lease is running now.")
    remaining_s: float = Field(
        description="Seconds until the lease ends if not renewed; negative once ended."
    )


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    reasons: list[str] = Field(default_factory=list, description="Why the status is not ok.")
    node: NodeHealth
    index: IndexHealth
    outbox: OutboxHealth
    leaders: list[LeaderOut] = Field(
        default_factory=list,
        description="The indexer's and the outbox worker's leases; empty until either first ran.",
    )
    read_replica: ReplicaHealth | None = Field(
        default=None, description="The read replica of the index (`PROVENANCE_READ_DATABASE_URL`), if any."
    )
    deliveries: list[DeliveryLagOut] = Field(
        default_factory=list,
        description="Each active delivery destination's lag behind the index (docs/deliveries.md).",
    )

"""Operations: what a write became, and how far it got."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import FromDomain
from provenance.domain.operations import OperationView


class TransactionOut(FromDomain):
    sequence: int = Field(description="Position of this transaction within the operation, from 0.")
    nonce: int | None
    tx_hash: str | None
    status: str
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: dict[str, Any] | None = None


class OperationError(BaseModel):
    name: str = Field(description="The registry's custom error without its prefix, e.g. NotCustodian.")
    args: dict[str, Any] = Field(default_factory=dict)


class OperationLinks(BaseModel):
    self: str
    document: str | None = None


class OperationOut(BaseModel):
    """A write as the outbox tracks it: pending → sent → confirmed, or failed with the chain's error."""

    id: str
    kind: str
    status: Literal["pending", "sent", "confirmed", "failed"]
    final: bool = Field(description="True once the status is confirmed or failed; it never changes again.")
    sender: str = Field(description="The account that signs the operation's transactions.")
    created_at: str
    updated_at: str
    transactions: list[TransactionOut]
    error: OperationError | None = None
    stuck_reason: str | None = Field(
        default=None,
        description="Why the outbox cannot send it just now, in the node's words (a sender without "
        "ether, a request the node refuses); it stays pending and is tried again.",
    )
    links: OperationLinks

    @classmethod
    def of(cls, view: OperationView, *, document: str | None = None) -> OperationOut:
        return cls(
            id=view.id,
            kind=str(view.kind),
            status=view.status.value,
            final=view.status.is_final,
            sender=view.sender,
            created_at=view.created_at,
            updated_at=view.updated_at,
            transactions=[TransactionOut.of(tx) for tx in view.transactions],
            error=(
                OperationError(name=view.error_name, args=dict(view.error_args or {}))
                if view.error_name
                else None
            ),
            stuck_reason=view.stuck_reason,
            links=OperationLinks(self=f"/v1/operations/{view.id}", document=document),
        )

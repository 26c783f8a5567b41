"""Write operations as the outbox stores them: a kind, a JSON payload, a status.

An operator's request becomes a command (`provenance.domain.commands`, parsed and validated
once), then an operation: stored durably, then signed and sent by the outbox worker, possibly as
several transactions (a batch of 1,000 lots does not fit one). The payload is the command as plain
JSON, so it survives restarts and is readable in the database.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def new_operation_id() -> str:
    """A new operation's id: random, so a caller can name (and wait for) it before it is stored."""
    return str(uuid.uuid4())


class OperationKind(enum.StrEnum):
    REGISTER_LOTS = "register_lots"
    TRANSFORM = "transform"
    HAND_OVER = "hand_over"
    ACCEPT_HANDOVER = "accept_handover"
    CANCEL_HANDOVER = "cancel_handover"
    SUBMIT_ASSAY = "submit_assay"
    ANCHOR_DOCUMENT = "anchor_document"
    REGISTER_ATTESTED_LOTS = "register_attested_lots"
    ADD_DEVICE = "add_device"
    CORRECT_LOT = "correct_lot"
    RECORD_STOCK_COUNT = "record_stock_count"


class OperationStatus(enum.StrEnum):
    """pending: stored, not yet sent · sent: on its way (some transactions may be mined) ·
    confirmed: every transaction mined under the configured confirmations · failed: refused
    (by validation at send time or by the chain), with the decoded error."""

    PENDING = "pending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (OperationStatus.CONFIRMED, OperationStatus.FAILED)


@dataclass(frozen=True)
class TransactionView:
    sequence: int
    nonce: int | None
    tx_hash: str | None
    status: OperationStatus
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class OperationView:
    id: str
    kind: OperationKind
    status: OperationStatus
    sender: str
    created_at: str
    updated_at: str
    transactions: tuple[TransactionView, ...] = ()
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    stuck_reason: str | None = None
    """Why the worker cannot send it just now, in the node's words (None: nothing holds it)."""


def fingerprint(kind: OperationKind, payload: Mapping[str, Any]) -> str:
    """A stable hash of a request: the same Idempotency-Key with another body is a client error."""
    canonical = json.dumps({"kind": str(kind), "payload": payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

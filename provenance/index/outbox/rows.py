"""The outbox's tables, its prepared statements and its rows as domain records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, select

from provenance.domain.operations import (
    OperationKind,
    OperationStatus,
    OperationView,
    TransactionView,
)
from provenance.domain.outbox import OutboxTransaction
from provenance.errors import DomainError
from provenance.index.models import Base
from provenance.index.write_models import AccountNonce, ApiCredential, Operation
from provenance.index.write_models import ChainConflict as ConflictRow
from provenance.index.write_models import OutboxTransaction as OutboxRow

OPERATIONS = Base.metadata.tables[Operation.__tablename__]
TRANSACTIONS = Base.metadata.tables[OutboxRow.__tablename__]
NONCES = Base.metadata.tables[AccountNonce.__tablename__]
CREDENTIALS = Base.metadata.tables[ApiCredential.__tablename__]
CONFLICTS = Base.metadata.tables[ConflictRow.__tablename__]

# Statements of every API write, built once: building one per call (`.values(...)`, `.where(...)`)
# and computing its cache key again showed in the API's profile (docs/benchmarks.md).
INSERT_OPERATION = OPERATIONS.insert()
INSERT_TRANSACTION = TRANSACTIONS.insert()
ACTIVE_CREDENTIAL = select(CREDENTIALS.c.id).where(
    CREDENTIALS.c.id == bindparam("credential_id"), CREDENTIALS.c.revoked_at.is_(None)
)
BY_KEY = select(OPERATIONS.c.id, OPERATIONS.c.request_fingerprint).where(
    OPERATIONS.c.credential_id == bindparam("credential_id"),
    OPERATIONS.c.idempotency_key == bindparam("idempotency_key"),
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC (SQLite hands timestamps back without their zone)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_sender(sender: str) -> None:
    hex_digits = sender[2:] if sender.startswith("0x") else ""
    if len(sender) != 42 or not all(c in "0123456789abcdefABCDEF" for c in hex_digits):
        raise DomainError("sender", "must be a 0x-prefixed 20-byte address")


def transaction_of(row: Row[Any], kind: OperationKind) -> OutboxTransaction:
    return OutboxTransaction(
        operation_id=row.operation_id,
        sequence=row.sequence,
        kind=kind,
        sender=row.sender,
        status=OperationStatus(row.status),
        item_start=row.item_start,
        item_end=row.item_end,
        nonce=row.nonce,
        raw_tx=row.raw_tx,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_hash=row.block_hash,
        attempts=row.attempts,
        share=row.share,
        solo=row.solo,
        sent_at=row.sent_at,
        lost_block=row.lost_block,
    )


def transaction_view_of(row: Row[Any]) -> TransactionView:
    return TransactionView(
        sequence=row.sequence,
        nonce=row.nonce,
        tx_hash=row.tx_hash,
        status=OperationStatus(row.status),
        block_number=row.block_number,
        block_hash=row.block_hash,
        gas_used=row.gas_used,
        error_name=row.error_name,
        error_args=row.error_args,
    )


def operation_view_of(row: Row[Any], transactions: Iterable[Row[Any]]) -> OperationView:
    return OperationView(
        id=row.id,
        kind=OperationKind(row.kind),
        status=OperationStatus(row.status),
        sender=row.sender,
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        transactions=tuple(transaction_view_of(tx) for tx in transactions),
        error_name=row.error_name,
        error_args=row.error_args,
        payload=row.payload,
        stuck_reason=row.stuck_reason,
    )

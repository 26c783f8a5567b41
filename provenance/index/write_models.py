"""The write path's tables, beside the index's on the same `Base`: API credentials, operations
(what a client asked for, with its idempotency record), the transaction outbox and the next nonce
of every account the outbox signs for.

An operation and its planned transactions are written in one database transaction, before
anything is sent; a transaction's nonce, signed bytes and hash are written (and committed) before
it is sent, so a crash at any instant leaves a row the worker can finish: re-send the same bytes,
or find them mined. `UNIQUE(sender, nonce)` makes two writes with one nonce impossible even if
the worker were wrong: rows that share a nonce are the *same* transaction carrying several
operations (coalesced single-lot registrations), told apart by `share`, written together with the
same bytes and hash. `sender` in the outbox and nonce tables is the address in lower case (the
key of the nonce sequence); `operations.sender` keeps the address as the credential gives it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from provenance.index.models import ADDRESS, HASH, Base, JsonArgs

UUID_TEXT = 36
STATUSES = "status IN ('pending', 'sent', 'confirmed', 'failed')"


class ApiCredential(Base):
    """A bearer token (only its SHA-256 is kept) mapped to one chain account and the key that signs for it."""

    __tablename__ = "api_credentials"

    id: Mapped[str] = mapped_column(String(UUID_TEXT), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    account: Mapped[str] = mapped_column(String(ADDRESS))
    key_ref: Mapped[str] = mapped_column(Text)
    """A development key's name or a keystore file's path; never key material."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Operation(Base):
    """A write a client asked for: validated, stored, then sent by the outbox worker."""

    __tablename__ = "operations"
    __table_args__ = (
        UniqueConstraint("credential_id", "idempotency_key"),
        CheckConstraint(STATUSES, name="status"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(UUID_TEXT), primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(UUID_TEXT), ForeignKey("api_credentials.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonArgs)
    sender: Mapped[str] = mapped_column(String(ADDRESS))
    status: Mapped[str] = mapped_column(String(16))
    error_name: Mapped[str | None] = mapped_column(String(64))
    error_args: Mapped[dict[str, Any] | None] = mapped_column(JsonArgs)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stuck_reason: Mapped[str | None] = mapped_column(Text)
    """Why the worker cannot send it just now (the node refused it, and says why); None once sent."""
    stuck_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class OutboxTransaction(Base):
    """One transaction of an operation: planned, then signed with a nonce, sent, mined, confirmed.

    Several operations' rows may share one chain transaction (the worker coalesces small
    registrations of one sender and site into one `registerLots`): they then hold the same nonce,
    bytes and hash, with `share` 0, 1, 2, ... ; `solo` marks a row that must go alone (its
    coalesced transaction failed on chain, so each operation is tried by itself)."""

    __tablename__ = "outbox_transactions"
    __table_args__ = (
        UniqueConstraint("sender", "nonce", "share"),
        CheckConstraint(STATUSES, name="status"),
    )

    operation_id: Mapped[str] = mapped_column(
        String(UUID_TEXT), ForeignKey("operations.id"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sender: Mapped[str] = mapped_column(String(ADDRESS))
    item_start: Mapped[int | None] = mapped_column(Integer)
    item_end: Mapped[int | None] = mapped_column(Integer)
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    raw_tx: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(HASH), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str | None] = mapped_column(String(HASH))
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    error_name: Mapped[str | None] = mapped_column(String(64))
    error_args: Mapped[dict[str, Any] | None] = mapped_column(JsonArgs)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    share: Mapped[int] = mapped_column(Integer, server_default="0")
    solo: Mapped[bool] = mapped_column(Boolean, server_default=false())
    lost_block: Mapped[int | None] = mapped_column(BigInteger)
    """The block this transaction was once mined in, with success, before the chain lost that
    block: if the chain then refuses it, the chain changed under an acknowledged write."""


class ChainConflict(Base):
    """An acknowledged operation that the chain accepted, then lost, then refused: the worker holds
    it (never fails it) and stops sending until a person resolves it (`provenance outbox resume`)."""

    __tablename__ = "chain_conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(String(UUID_TEXT), ForeignKey("operations.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str | None] = mapped_column(String(HASH))
    lost_block: Mapped[int] = mapped_column(BigInteger)
    error_name: Mapped[str] = mapped_column(String(64))
    error_args: Mapped[dict[str, Any] | None] = mapped_column(JsonArgs)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    resolution: Mapped[str | None] = mapped_column(String(16))


class AccountNonce(Base):
    """The next nonce the outbox gives an account (lower-case address)."""

    __tablename__ = "account_nonces"

    sender: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)


class Lease(Base):
    """Who leads a role that must have exactly one holder (the indexer, the outbox worker) across
    replicas. `token` grows by one with every new holder: it is the fencing token that each of the
    leader's commits checks, with `expires_at`, in the commit's own transaction
    (`provenance.index.leases`). Times are the database's clock in seconds since the epoch, so
    replicas with clocks that disagree still agree on who leads."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger)
    acquired_at: Mapped[float] = mapped_column(Float(precision=53))
    expires_at: Mapped[float] = mapped_column(Float(precision=53))


class CaptureJob(Base):
    """An EPCIS capture (`POST /epcis/capture`): the operations its events became, stored in the
    same database transaction as they were, and the events it refused. Its state is read from the
    operations' (`provenance.index.capture_store`)."""

    __tablename__ = "capture_jobs"
    __table_args__ = (
        UniqueConstraint("credential_id", "retry_key"),
        CheckConstraint("error_behaviour IN ('rollback', 'proceed')", name="error_behaviour"),
        Index(None, "credential_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(UUID_TEXT), primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(UUID_TEXT), ForeignKey("api_credentials.id"))
    retry_key: Mapped[str] = mapped_column(String(255))
    """The client's `Idempotency-Key`, else `document:` and the plan's fingerprint: a retry finds
    the job under it."""
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    error_behaviour: Mapped[str] = mapped_column(String(16))
    event_count: Mapped[int] = mapped_column(Integer)
    operations: Mapped[list[Any]] = mapped_column(JsonArgs)
    """[{"event": index, "eventID": ..., "operation": operation id}] in the document's order."""
    refused: Mapped[list[Any]] = mapped_column(JsonArgs)
    """GS1 problem bodies of the events refused before anything was stored (`proceed` only)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

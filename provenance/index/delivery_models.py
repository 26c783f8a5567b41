"""Outbound deliveries' tables, beside the index's on the same `Base` (migration 0010).

* `delivery_destinations`: where deliveries go (a buyer's webhook subscription; a data hub later),
  what each wants, and its durable cursor: the last event it passed, in chain order, moved in the
  transaction that records each delivery's outcome; its retry state; the last index rollback it
  has answered for.
* `delivery_log`: per destination, every event message it acknowledged, dead-lettered or had
  retracted, by message id: what a rollback is compared with to know what to retract, and what a
  rewound cursor checks so that nothing acknowledged is sent twice.
* `index_rollbacks`: one row per reorg the indexer rolled back (written in the rollback's own
  transaction by `provenance.index.store.rollback`): the common ancestor it rolled back to.

None of them is derived from the chain, so none is one of the `INDEX_TABLES` an audit compares.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from provenance.index.models import ADDRESS, HASH, LABEL, NAME, Base, JsonArgs

DESTINATION_ID = 40
MESSAGE_ID = 48
DELIVERY_STATES = ("delivered", "retracting", "retracted", "dead")


class DeliveryDestination(Base):
    __tablename__ = "delivery_destinations"
    __table_args__ = (Index(None, "owner", "active"),)

    id: Mapped[str] = mapped_column(String(DESTINATION_ID), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(ADDRESS))
    credential_id: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any]] = mapped_column(JsonArgs)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    created_at: Mapped[float] = mapped_column(Float(precision=53))
    deleted_at: Mapped[float | None] = mapped_column(Float(precision=53))
    start_block: Mapped[int] = mapped_column(BigInteger)
    cursor_block: Mapped[int] = mapped_column(BigInteger)
    cursor_tx_index: Mapped[int] = mapped_column(BigInteger)
    cursor_log_index: Mapped[int] = mapped_column(BigInteger)
    rollbacks_seen: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[float | None] = mapped_column(Float(precision=53))
    next_attempt_at: Mapped[float] = mapped_column(Float(precision=53))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_count: Mapped[int] = mapped_column(BigInteger)
    last_delivered_at: Mapped[float | None] = mapped_column(Float(precision=53))


class DeliveryLogEntry(Base):
    __tablename__ = "delivery_log"
    __table_args__ = (
        UniqueConstraint("destination_id", "message_id"),
        CheckConstraint(f"state IN {DELIVERY_STATES}", name="state"),
        Index(None, "state", "destination_id"),  # the few dead and retracting, found at once
        Index(None, "destination_id", "block_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination_id: Mapped[str] = mapped_column(
        String(DESTINATION_ID), ForeignKey("delivery_destinations.id")
    )
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID))
    state: Mapped[str] = mapped_column(String(16))
    event_name: Mapped[str] = mapped_column(String(NAME))
    lot_id: Mapped[str | None] = mapped_column(String(LABEL))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH))
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    tx_index: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[float] = mapped_column(Float(precision=53))
    error: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    """The message as last sent, kept for a dead letter."""


class IndexRollback(Base):
    __tablename__ = "index_rollbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ancestor_block: Mapped[int] = mapped_column(BigInteger)
    ancestor_hash: Mapped[str] = mapped_column(String(HASH))
    from_block: Mapped[int] = mapped_column(BigInteger)
    events_undone: Mapped[int] = mapped_column(Integer)

"""The wire shapes of buyers' webhook subscriptions and of the deliveries' operator views."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from provenance.domain.deliveries import LOT_EVENT_TYPES, Destination, DestinationLag, LogEntry


class SubscriptionIn(BaseModel):
    """What to be told about, and where."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "callback_url": "https://buyer.example.com/hooks/provenance",
                    "held": True,
                    "lot_ids": ["SH2-0007"],
                    "descendants": True,
                    "event_types": ["AssayRecorded", "LotCorrected", "CustodyOffered"],
                }
            ]
        },
    )

    callback_url: str = Field(
        max_length=2048,
        description="An http(s) URL reachable on the public internet: loopback, private, link-local "
        "and other non-public addresses are refused unless the operator allows them.",
        examples=["https://buyer.example.com/hooks/provenance"],
    )
    held: bool = Field(
        default=False,
        description="Watch the lots the caller's account holds or held (registered, received or accepted).",
    )
    lot_ids: list[str] = Field(default_factory=list, max_length=1000, description="Lots to watch by id.")
    descendants: bool = Field(
        default=True, description="Watch every lot made from a watched lot through transformations too."
    )
    event_types: list[str] = Field(
        default_factory=list,
        max_length=len(LOT_EVENT_TYPES),
        description=f"Event types to be sent (all lot events when empty): {', '.join(sorted(LOT_EVENT_TYPES))}.",
    )


class SubscriptionOut(BaseModel):
    id: str
    callback_url: str
    held: bool
    lot_ids: list[str]
    descendants: bool
    event_types: list[str]
    created_at: float = Field(description="Unix seconds.")
    from_block: int = Field(description="Events after this block's last one as indexed then are sent.")
    cursor_block: int = Field(description="The block of the last event this subscription passed.")
    delivered: int = Field(description="Messages acknowledged so far.")
    failures: int = Field(description="Consecutive failed attempts of the message now being sent.")
    last_error: str | None
    secret: str | None = Field(
        default=None,
        description="The signing secret: in the answer to the POST only. Verify each delivery's "
        "`Provenance-Signature` with it (docs/deliveries.md).",
    )

    @classmethod
    def of(cls, destination: Destination, secret: str | None = None) -> Self:
        return cls(
            id=destination.id,
            callback_url=destination.url,
            held=destination.filter.holder is not None,
            lot_ids=sorted(destination.filter.lot_ids),
            descendants=destination.filter.descendants,
            event_types=sorted(destination.filter.event_types),
            created_at=destination.created_at,
            from_block=destination.start_block,
            cursor_block=destination.cursor.block_number,
            delivered=destination.delivered_count,
            failures=destination.failures,
            last_error=destination.last_error,
            secret=secret,
        )


class DeadLetterOut(BaseModel):
    destination_id: str
    message_id: str
    event_name: str
    lot_id: str | None
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    attempts: int
    recorded_at: float
    error: str | None
    body: str | None = Field(description="The message as last sent.")

    @classmethod
    def of(cls, entry: LogEntry) -> Self:
        event = entry.event
        return cls(
            destination_id=entry.destination_id,
            message_id=entry.message_id,
            event_name=event.name,
            lot_id=event.lot_id,
            block_number=event.block_number,
            block_hash=event.block_hash,
            tx_hash=event.tx_hash,
            log_index=event.log_index,
            attempts=entry.attempts,
            recorded_at=entry.recorded_at,
            error=entry.error,
            body=entry.body,
        )


class DeliveryLagOut(BaseModel):
    """How far behind the index one destination is."""

    destination: str
    kind: str
    cursor_block: int
    pending_events: int = Field(description="Index events after its cursor (counted up to 1,000).")
    oldest_pending_age_s: float | None = Field(
        description="Seconds since the block of the oldest event after its cursor was made."
    )
    retractions_pending: int
    dead_letters: int
    failures: int
    last_error: str | None

    @classmethod
    def of(cls, lag: DestinationLag, now: float) -> Self:
        age = None if lag.oldest_pending_block_time is None else max(0.0, now - lag.oldest_pending_block_time)
        return cls(
            destination=lag.destination_id,
            kind=lag.kind,
            cursor_block=lag.cursor_block,
            pending_events=lag.pending_events,
            oldest_pending_age_s=None if age is None else round(age, 3),
            retractions_pending=lag.retractions_pending,
            dead_letters=lag.dead_letters,
            failures=lag.failures,
            last_error=lag.last_error,
        )

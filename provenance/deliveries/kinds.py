"""What a kind of destination must provide to the deliverer: which events it wants, the message for
an event and for its retraction, and sending one message. A webhook subscription is one kind
(`provenance.deliveries.webhook`); the NGSI-LD data hub publisher is another, which takes batches
(`BatchingKind`, `provenance.deliveries.hub`; docs/deliveries.md, docs/ngsi-ld.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from provenance.domain.deliveries import Destination, IndexedEvent, SubscriptionFilter

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: acknowledged (a 2xx), or not, and why."""

    acknowledged: bool
    error: str | None = None

    @classmethod
    def ok(cls) -> Outcome:
        return cls(True)

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls(False, error)


class LotLookup(Protocol):
    """What a kind may ask of the index to decide which events a destination wants."""

    def watched(self, filter: SubscriptionFilter, up_to_block: int) -> tuple[set[str], set[int]]: ...


class DestinationKind(Protocol):
    name: str

    def matcher(self, destination: Destination, lookup: LotLookup) -> Callable[[IndexedEvent], bool]:
        """A predicate for one pass over events in chain order (it may learn as they go by)."""
        ...

    def message(self, destination: Destination, event: IndexedEvent) -> Message: ...

    def retraction(self, destination: Destination, event: IndexedEvent) -> Message: ...

    def send(self, destination: Destination, message: Message) -> Outcome:
        """Sends one message; never raises for a failure of the destination (returns it)."""
        ...

    def close(self) -> None:
        """Lets go of what it keeps open (connections)."""
        ...


@runtime_checkable
class BatchingKind(DestinationKind, Protocol):
    """A kind whose destination takes several messages in one request (an NGSI-LD batch upsert).
    The deliverer gives it up to `batch_limit` messages at a time, never two of one lot in one
    batch (a lot's messages must land in order, and a batch is applied in no order the sender can
    rely on), and records each message's outcome on its own, as for one-at-a-time kinds."""

    def batch_limit(self, destination: Destination) -> int: ...

    def send_batch(self, destination: Destination, messages: Sequence[Message]) -> list[Outcome]:
        """One outcome per message, in order; never raises for the destination's failures."""
        ...


def held_back_by(kind: DestinationKind, event: IndexedEvent) -> str | None:
    """What a failed message holds back: its lot's later messages, or (a kind whose receivers
    need every message in chain order, `in_chain_order = True`) every later message."""
    return "" if getattr(kind, "in_chain_order", False) else event.lot_id


def batch_limit(kind: DestinationKind, destination: Destination) -> int:
    return max(1, kind.batch_limit(destination)) if isinstance(kind, BatchingKind) else 1


def send_all(kind: DestinationKind, destination: Destination, messages: Sequence[Message]) -> list[Outcome]:
    """Sends `messages` as one batch if the kind takes batches, else one after another."""
    if isinstance(kind, BatchingKind) and len(messages) > 1:
        outcomes = kind.send_batch(destination, messages)
        if len(outcomes) != len(messages):
            raise RuntimeError(f"{kind.name}: {len(outcomes)} outcomes for {len(messages)} messages")
        return outcomes
    return [kind.send(destination, message) for message in messages]

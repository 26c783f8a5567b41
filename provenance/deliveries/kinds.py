"""What a kind of destination must provide to the deliverer: which events it wants, the message for
an event and for its retraction, and sending one message. A webhook subscription is one kind
(`provenance.deliveries.webhook`); a data hub publisher is meant to be another (docs/deliveries.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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

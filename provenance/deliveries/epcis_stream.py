"""EPCIS 2.0 query subscriptions with `stream: true` as a kind of destination (`epcis-query`): each
index event that gives events of the subscribed named query is delivered as one
`EPCISQueryDocument` holding those events (one, or a correction's two), to the subscription's
`dest`, signed with its `signatureToken` in `GS1-Signature`, in chain order.

Which events match is not decided here: the subscription's query runs through the same query
engine as `GET /epcis/queries/{name}/events` (`EpcisQueries.page`), after the event the deliverer
is at, a window of up to `WINDOW` events at a time; the index events whose keys the page holds are
the ones delivered, with the very events the page answered. So a delivery is what the query
answers for those events, whatever its parameters. Sending (the SSRF check at every attempt,
pinned connections, timeouts) is the webhook kind's; the cursor, retries, dead letters, replays and
retractions are the delivery mechanism's (docs/deliveries.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from provenance.deliveries.kinds import LotLookup, Message
from provenance.deliveries.webhook import Resolver, WebhookKind, resolve
from provenance.domain.deliveries import (
    AllowList,
    Destination,
    IndexedEvent,
    Position,
    encode_body,
    event_message_id,
    retraction_id,
    signature_header,
)
from provenance.epcis.export import EXTENSION_PREFIX
from provenance.epcis.ids import IdentifierScheme, translated
from provenance.epcis.query import EventQuery, Key, parse_query, query_document
from provenance.index.delivery_store import DeliveryStore
from provenance.index.epcis_queries import EpcisQueries

KIND = "epcis-query"
SIGNATURE_HEADER = "GS1-Signature"
WINDOW = 500
"""EPCIS events read per query run: the index events they cover are decided at once."""
RETRACTION_TYPE = "urn:mineral-provenance:epcis:retraction"
_LAST = 2**31 - 1


def key_before(position: Position) -> Key:
    """The page key just before every EPCIS event at `position` (both parts of a correction)."""
    block, tx_index, log_index = position.block_number, position.tx_index, position.log_index
    if log_index > 0:
        return (block, tx_index, log_index - 1, _LAST)
    if tx_index > 0:
        return (block, tx_index - 1, _LAST, _LAST)
    return (block - 1, _LAST, _LAST, _LAST)


@dataclass
class _Window:
    """What one run of the query decided: the matching events at each index position in
    [`first`, `end`), and that no other position in it matches."""

    first: Position
    end: Position
    found: dict[Position, list[dict[str, Any]]] = field(default_factory=dict)

    def covers(self, position: Position) -> bool:
        return self.first <= position < self.end


class EpcisQueryKind(WebhookKind):
    """Streams a named query's new events to its subscribers; a failed delivery holds back every
    later one (`in_chain_order`): an EPCIS subscriber gets the events in the order the query has them."""

    name = KIND
    in_chain_order = True

    def __init__(
        self,
        *,
        engine: Any,
        scheme: IdentifierScheme,
        chain_id: int,
        registry: str,
        allowed: AllowList,
        timeout_s: float = 10.0,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            chain_id=chain_id,
            registry=registry,
            allowed=allowed,
            timeout_s=timeout_s,
            resolver=resolver,
            clock=clock,
        )
        self.engine = engine
        self.store = DeliveryStore(engine)
        self.scheme = scheme
        self._windows: dict[str, _Window] = {}

    def matcher(self, destination: Destination, lookup: LotLookup) -> Callable[[IndexedEvent], bool]:
        self._windows.pop(destination.id, None)  # a new pass start (a rollback, a replay): read anew

        def admits(event: IndexedEvent) -> bool:
            return event.position in self._window(destination, event.position).found

        return admits

    def _window(self, destination: Destination, position: Position) -> _Window:
        window = self._windows.get(destination.id)
        if window is None or not window.covers(position):
            window = self._windows[destination.id] = self._run(destination, position)
        return window

    def _run(self, destination: Destination, position: Position) -> _Window:
        """The subscription's query from `position` on, `WINDOW` events at most."""
        standing = destination.filter.query
        if standing is None:
            return _Window(
                position, Position(position.block_number, position.tx_index, position.log_index + 1)
            )
        query: EventQuery = replace(
            parse_query(list(standing.parameters)), after=key_before(position), per_page=WINDOW
        )
        newest, _ = self.store.marker()  # read first: the page sees at least this much
        with self.engine.connect() as connection:
            page = EpcisQueries(connection, self.scheme).page(query)
        head = max(position, newest or position)
        end = Position(head.block_number, head.tx_index, head.log_index + 1)
        found: dict[Position, list[dict[str, Any]]] = {}
        for key, event in zip(page.keys, page.events, strict=True):
            found.setdefault(Position(key[0], key[1], key[2]), []).append(event)
        if page.next_key is not None:
            # the page ends inside the last position's events, perhaps: that position starts the next run
            end = Position(*page.next_key[:3])
            found.pop(end, None)
        return _Window(position, end, found)

    def message(self, destination: Destination, event: IndexedEvent) -> Message:
        standing = destination.filter.query
        assert standing is not None
        events = self._window(destination, event.position).found.get(event.position, [])
        form, _ = self.scheme.translated_form(standing.epc_format)
        if form is not None and form != self.scheme.form:
            events = [translated(item, self.scheme, form) for item in events]
        document = query_document(events, int(self.clock()), standing.name)
        document["epcisBody"]["queryResults"]["subscriptionID"] = destination.id
        return {
            "id": event_message_id(self.chain_id, event.block_hash, event.tx_hash, event.log_index),
            "document": document,
        }

    def retraction(self, destination: Destination, event: IndexedEvent) -> Message:
        """An RFC 7807 body (the callback takes one, GS1's OpenAPI says): the delivery whose events
        the chain undid (a reorg), by the id it was sent with, and where it was on the chain."""
        delivered = event_message_id(self.chain_id, event.block_hash, event.tx_hash, event.log_index)
        retracted = {
            "type": RETRACTION_TYPE,
            "title": "Events retracted: the chain reorganised and no longer holds them",
            "detail": f"the events delivered as {delivered} are not on the chain any more; "
            "forget them (events that come back are delivered again)",
            f"{EXTENSION_PREFIX}:retracts": delivered,
            f"{EXTENSION_PREFIX}:chain": {
                "chainId": self.chain_id,
                "blockNumber": event.block_number,
                "blockHash": event.block_hash,
                "transactionHash": event.tx_hash,
                "logIndex": event.log_index,
            },
            f"{EXTENSION_PREFIX}:subscriptionID": destination.id,
        }
        return {"id": retraction_id(delivered), "document": retracted}

    def body(self, message: Message) -> bytes:
        return encode_body(message["document"])

    def signed(self, destination: Destination, body: bytes) -> dict[str, str]:
        """`GS1-Signature: t=<unix seconds>,v1=<HMAC-SHA256 of "<t>.<body>">` under the subscriber's
        `signatureToken` (the webhooks' recipe); nothing when it gave none."""
        if not destination.secret:
            return {}
        return {SIGNATURE_HEADER: signature_header(destination.secret, int(self.clock()), body)}

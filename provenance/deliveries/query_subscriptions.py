"""EPCIS 2.0 query subscriptions (`/epcis/queries/{name}/subscriptions`): the request checked into a
typed command, and the use cases (subscribe, list, read, unsubscribe, and end a deleted query's).
A subscription is a destination of kind `epcis-query` on the delivery mechanism
(`provenance.deliveries.epcis_stream`); docs/epcis.md ("Query subscriptions").

Only `stream: true` subscriptions are taken: a `schedule` is refused (400
`SubscriptionControlsException` naming `schedule`), and so is `reportIfEmpty: true`, which only a
scheduled run can honour (a stream has nothing to report when nothing matched).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provenance.config import Settings
from provenance.deliveries.epcis_stream import KIND
from provenance.deliveries.webhook import Resolver, check_callback, resolve
from provenance.domain.deliveries import AllowList, Destination, StandingQuery, SubscriptionFilter
from provenance.epcis.export import utc_time
from provenance.epcis.query import (
    EPC_FORMATS,
    EpcisException,
    NoSuchNameException,
    SecurityException,
    UnsupportedMediaTypeException,
    query_of_definition,
)
from provenance.errors import DomainError
from provenance.index.delivery_store import DeliveryStore
from provenance.index.epcis_queries import NamedQueries

FIELDS = ("dest", "signatureToken", "stream", "schedule", "reportIfEmpty", "initialRecordTime")
MAX_TOKEN = 1_000
PREFIX = "qsub_"


class SubscriptionControlsException(EpcisException, ValueError):
    """400: a subscription request this repository cannot take, naming the field (GS1's
    `400SubscriptionIssues` answer)."""

    status, kind, title = 400, "SubscriptionControlsException", "Subscription error"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", field)


@dataclass(frozen=True)
class QuerySubscriptionRequest:
    """A `POST .../subscriptions` body, checked (but for the callback's addresses)."""

    dest: str
    signature_token: str
    initial_record_time: str | None
    recorded_from_ms: int | None


def subscription_request(content_type: str | None, body: bytes) -> QuerySubscriptionRequest:
    """GS1's `QuerySubscription` body: `dest`, `stream: true`, and optionally `signatureToken`,
    `initialRecordTime`, `reportIfEmpty: false`; anything else is refused naming the field."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeException(f"a query subscription is JSON, not {media or 'untyped'}")
    try:
        found = json.loads(body)
    except ValueError:
        raise SubscriptionControlsException("body", "not JSON") from None
    if not isinstance(found, dict):
        raise SubscriptionControlsException("body", "a query subscription is a JSON object")
    for name in found:
        if name not in FIELDS:
            raise SubscriptionControlsException(
                str(name)[:100], f"not a field of a query subscription ({', '.join(FIELDS)})"
            )
    if "schedule" in found:
        raise SubscriptionControlsException(
            "schedule",
            "scheduled query subscriptions are not supported by this repository; subscribe with stream: true",
        )
    if found.get("stream") is not True:
        raise SubscriptionControlsException(
            "stream", "must be true (this repository takes streaming subscriptions only)"
        )
    report = found.get("reportIfEmpty", False)
    if report is not False:
        raise SubscriptionControlsException(
            "reportIfEmpty", "only false: a stream delivers matching events, never an empty result"
        )
    dest = found.get("dest")
    if not isinstance(dest, str):
        raise SubscriptionControlsException("dest", "the callback URL is required (a string)")
    token = found.get("signatureToken", "")
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise SubscriptionControlsException("signatureToken", f"a string of at most {MAX_TOKEN} characters")
    initial = found.get("initialRecordTime")
    recorded_from_ms = None
    if initial is not None:
        recorded_from_ms = _record_time_ms(initial)
    return QuerySubscriptionRequest(dest, token, initial, recorded_from_ms)


def _record_time_ms(value: Any) -> int:
    text = value.strip() if isinstance(value, str) else ""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in text.upper():
        raise SubscriptionControlsException(
            "initialRecordTime",
            f"{str(value)[:100]!r} is not a date-time with an offset (e.g. 2026-11-03T08:00:00.000Z)",
        )
    return int(moment.timestamp() * 1000)


def subscription_document(destination: Destination) -> dict[str, Any]:
    """GS1's `AbstractQuerySubscriptionResponse` with `stream` (never the signature token)."""
    standing = destination.filter.query
    assert standing is not None
    found: dict[str, Any] = {
        "subscriptionID": destination.id,
        "queryName": standing.name,
        "dest": destination.url,
        "stream": True,
        "createdAt": utc_time(int(destination.created_at)),
    }
    if destination.last_delivered_at is not None:
        found["lastNotifiedAt"] = utc_time(int(destination.last_delivered_at))
    if standing.initial_record_time is not None:
        found["initialRecordTime"] = standing.initial_record_time
    if standing.epc_format in EPC_FORMATS:
        found["epcFormat"] = standing.epc_format
    return found


class QuerySubscriptions:
    """Subscribe a callback to a named query's new events; each account sees and ends its own."""

    def __init__(
        self,
        store: DeliveryStore,
        queries: NamedQueries,
        settings: Settings,
        *,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queries = queries
        self.settings = settings
        self.allowed = AllowList.parse(settings.delivery_allowed_hosts)
        self.resolver = resolver
        self.clock = clock

    def subscribe(
        self,
        query_name: str,
        request: QuerySubscriptionRequest,
        *,
        account: str,
        credential_id: str,
        epc_format: str | None,
    ) -> Destination:
        stored = self.queries.get(query_name)
        if stored is None:
            raise NoSuchNameException(f"no query named {query_name!r}", "queryName")
        try:
            check_callback(request.dest, self.allowed, self.resolver, field_name="dest")
        except DomainError as error:
            raise SubscriptionControlsException("dest", error.message) from None
        if self.store.count_active(account) >= self.settings.delivery_max_subscriptions:
            raise SubscriptionControlsException(
                "dest",
                f"this account holds {self.settings.delivery_max_subscriptions} active subscriptions, "
                "the most allowed; delete one first",
            )
        standing = StandingQuery(
            name=stored.name,
            parameters=tuple(query_of_definition(stored.query)),
            initial_record_time=request.initial_record_time,
            epc_format=epc_format if epc_format in EPC_FORMATS else None,
        )
        return self.store.create(
            kind=KIND,
            url=request.dest,
            secret=request.signature_token,
            filter=SubscriptionFilter(query=standing),
            owner=account,
            credential_id=credential_id,
            now=self.clock(),
            prefix=PREFIX,
            recorded_from_ms=request.recorded_from_ms,
        )

    def of(self, query_name: str, account: str, after: str | None, limit: int) -> list[Destination]:
        """The caller's active subscriptions to the query, by id, after `after`."""
        self._query(query_name)
        found = [
            destination
            for destination in self.store.destinations(owner=account)
            if _subscribes(destination, query_name) and (after is None or destination.id > after)
        ]
        return sorted(found, key=lambda destination: destination.id)[:limit]

    def get(self, query_name: str, subscription_id: str, account: str) -> Destination:
        """The caller's subscription; 404 for none, 403 for another account's."""
        self._query(query_name)
        destination = self.store.get(subscription_id)
        if destination is None or not destination.active or not _subscribes(destination, query_name):
            raise NoSuchNameException(
                f"no subscription {subscription_id!r} to {query_name!r}", "subscriptionID"
            )
        if (destination.owner or "").lower() != account.lower():
            raise SecurityException("the subscription was made with another account's token")
        return destination

    def unsubscribe(self, query_name: str, subscription_id: str, account: str) -> None:
        self.store.deactivate(self.get(query_name, subscription_id, account).id, self.clock())

    def end_all(self, query_name: str) -> int:
        """A deleted query's subscriptions end with it (GS1: deleting a named query "forcibly
        unsubscribes all active subscriptions")."""
        ended = 0
        for destination in self.store.destinations():
            if _subscribes(destination, query_name):
                ended += self.store.deactivate(destination.id, self.clock())
        return ended

    def _query(self, query_name: str) -> None:
        if self.queries.get(query_name) is None:
            raise NoSuchNameException(f"no query named {query_name!r}", "queryName")


def _subscribes(destination: Destination, query_name: str) -> bool:
    standing = destination.filter.query
    return destination.kind == KIND and standing is not None and standing.name == query_name

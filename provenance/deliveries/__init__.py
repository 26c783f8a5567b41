"""Outbound deliveries driven by the index's events: one mechanism (`Deliverer`), with kinds of
destination plugged in (`DestinationKind`; buyers' webhook subscriptions are `WebhookKind`), and
the subscriptions' use cases (`Subscriptions`). See docs/deliveries.md."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from provenance.config import Settings
from provenance.deliveries.deliverer import Deliverer, PassResult
from provenance.deliveries.epcis_stream import EpcisQueryKind
from provenance.deliveries.hub import HubKind, build_hub_kind
from provenance.deliveries.kinds import BatchingKind, DestinationKind, LotLookup, Message, Outcome
from provenance.deliveries.webhook import Resolver, WebhookKind, check_callback, resolve
from provenance.domain.deliveries import (
    AllowList,
    Destination,
    RetryPolicy,
    SubscriptionFilter,
    check_event_types,
)
from provenance.domain.values import encode_label
from provenance.errors import DomainError
from provenance.index.delivery_store import DeliveryStore

__all__ = [
    "BatchingKind",
    "Deliverer",
    "DeliveryStore",
    "DestinationKind",
    "EpcisQueryKind",
    "HubKind",
    "LotLookup",
    "Message",
    "Outcome",
    "PassResult",
    "SubscriptionRequest",
    "Subscriptions",
    "WebhookKind",
    "build_deliverer",
    "retry_policy",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - marks our webhook secrets, not a secret
MAX_LOT_IDS = 1_000


@dataclass(frozen=True)
class SubscriptionRequest:
    """What a caller asks for, as the API received it (checked by `Subscriptions.create`)."""

    callback_url: str
    lot_ids: Sequence[str] = ()
    held: bool = False
    event_types: Sequence[str] = ()
    descendants: bool = True


class Subscriptions:
    """Buyers' webhook subscriptions: create (the secret is returned once), list, read, delete."""

    def __init__(
        self,
        store: DeliveryStore,
        settings: Settings,
        *,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.allowed = AllowList.parse(settings.delivery_allowed_hosts)
        self.resolver = resolver
        self.clock = clock

    def create(
        self, request: SubscriptionRequest, *, account: str, credential_id: str
    ) -> tuple[Destination, str]:
        if len(request.lot_ids) > MAX_LOT_IDS:
            raise DomainError("lot_ids", f"at most {MAX_LOT_IDS} lots per subscription")
        for index, lot_id in enumerate(request.lot_ids):
            encode_label(lot_id, f"lot_ids[{index}]")
        if not request.held and not request.lot_ids:
            raise DomainError(
                "lot_ids", "name lots, or set held to true for the lots the account holds or held"
            )
        event_types = check_event_types(request.event_types)
        check_callback(request.callback_url, self.allowed, self.resolver)
        if self.store.count_active(account) >= self.settings.delivery_max_subscriptions:
            raise DomainError(
                "callback_url",
                f"this account holds {self.settings.delivery_max_subscriptions} active subscriptions, the "
                "most allowed; delete one first",
            )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        destination = self.store.create(
            kind=WebhookKind.name,
            url=request.callback_url,
            secret=secret,
            filter=SubscriptionFilter(
                holder=account if request.held else None,
                lot_ids=frozenset(request.lot_ids),
                event_types=event_types,
                descendants=request.descendants,
            ),
            owner=account,
            credential_id=credential_id,
            now=self.clock(),
        )
        return destination, secret

    def of(self, account: str) -> list[Destination]:
        return [
            destination
            for destination in self.store.destinations(owner=account)
            if destination.kind == WebhookKind.name
        ]

    def get(self, subscription_id: str, account: str) -> Destination | None:
        """The caller's own active subscription; None for another account's (as for none)."""
        destination = self.store.get(subscription_id)
        if destination is None or not destination.active or destination.kind != WebhookKind.name:
            return None
        if (destination.owner or "").lower() != account.lower():
            return None
        return destination

    def delete(self, subscription_id: str, account: str) -> bool:
        if self.get(subscription_id, account) is None:
            return False
        return self.store.deactivate(subscription_id, self.clock())


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_s=settings.delivery_retry_base_s,
        max_s=settings.delivery_retry_max_s,
        give_up_after_s=settings.delivery_give_up_after_s,
    )


def build_deliverer(engine: Any, settings: Settings, *, chain_id: int, registry: str) -> Deliverer:
    """The deliverer with every kind of destination this version knows (the hub's only when
    PROVENANCE_HUB_INGEST_URL is set; a hub destination otherwise waits, logged)."""
    webhook = WebhookKind(
        chain_id=chain_id,
        registry=registry,
        allowed=AllowList.parse(settings.delivery_allowed_hosts),
        timeout_s=settings.delivery_timeout_s,
    )
    stream = EpcisQueryKind(
        engine=engine,
        scheme=settings.epcis_identifiers(),
        chain_id=chain_id,
        registry=registry,
        allowed=webhook.allowed,
        timeout_s=settings.delivery_timeout_s,
    )
    kinds: dict[str, DestinationKind] = {webhook.name: webhook, stream.name: stream}
    hub = build_hub_kind(settings, engine, chain_id=chain_id, registry=registry)
    if hub is not None:
        kinds[hub.name] = hub
    return Deliverer(
        DeliveryStore(engine),
        kinds,
        chain_id=chain_id,
        policy=retry_policy(settings),
    )

"""The rules of outbound deliveries, in plain Python: message ids, message bodies, the retry
schedule, webhook signatures, which events a subscription wants, and which callback addresses are
refused (server-side request forgery).

Nothing here reads the database, the clock or the network: callers pass the time, the random
source and the resolved addresses in, so every rule is a function a unit test can call.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NewType
from urllib.parse import urlsplit

from provenance.errors import DomainError

MessageId = NewType("MessageId", str)
"""`evt_<40 hex>` for an event, `ret_<same 40 hex>` for its retraction."""

EVENT_PREFIX = "evt_"
RETRACTION_PREFIX = "ret_"

LOT_EVENT_TYPES = frozenset(
    {
        "LotRegistered",
        "LoadAttested",
        "LotConsumed",
        "LotCreated",
        "CustodyOffered",
        "CustodyOfferCancelled",
        "CustodyAccepted",
        "AssayRecorded",
        "DocumentAnchored",
        "LotCorrected",
    }
)
"""The registry's events about one lot: what a subscription may ask for."""

SIGNATURE_HEADER = "Provenance-Signature"
DELIVERY_ID_HEADER = "Provenance-Delivery-Id"
SIGNATURE_TOLERANCE_S = 300


# ---------------------------------------------------------------------- events and messages


@dataclass(frozen=True)
class IndexedEvent:
    """A registry event as the index stores it, with the time of its block."""

    name: str
    lot_id: str | None
    args: Mapping[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    block_time: int | None = None

    @property
    def position(self) -> Position:
        return Position(self.block_number, self.tx_index, self.log_index)


@dataclass(frozen=True, order=True)
class Position:
    """Where an event stands in chain order: a destination's cursor is the last one it passed."""

    block_number: int
    tx_index: int
    log_index: int

    @classmethod
    def after_block(cls, block_number: int) -> Position:
        """Past every event of `block_number` (a cursor rewound to a block keeps that block)."""
        return cls(block_number, 2**31 - 1, 2**31 - 1)


def event_message_id(chain_id: int, block_hash: str, tx_hash: str, log_index: int) -> MessageId:
    """A message's id from the event's chain coordinates: the same event on the same block gets
    the same id whoever sends it and however often; the same transaction mined again in another
    block (after a reorg) gets another."""
    coordinates = f"{chain_id}:{block_hash.lower()}:{tx_hash.lower()}:{log_index}"
    return MessageId(EVENT_PREFIX + hashlib.sha256(coordinates.encode("ascii")).hexdigest()[:40])


def retraction_id(event_id: str) -> MessageId:
    return MessageId(RETRACTION_PREFIX + event_id.removeprefix(EVENT_PREFIX))


def _coordinates(event: IndexedEvent, chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "registry": registry,
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "tx_hash": event.tx_hash,
        "tx_index": event.tx_index,
        "log_index": event.log_index,
    }


def event_message(
    event: IndexedEvent, *, chain_id: int, registry: str, destination_id: str
) -> dict[str, Any]:
    """What a webhook receives for an event."""
    return {
        "id": event_message_id(chain_id, event.block_hash, event.tx_hash, event.log_index),
        "type": "event",
        "destination": destination_id,
        "event": {"name": event.name, "lot_id": event.lot_id, "args": dict(event.args)},
        "block_time": event.block_time,
        "chain": _coordinates(event, chain_id, registry),
    }


def retraction_message(
    event: IndexedEvent, *, chain_id: int, registry: str, destination_id: str
) -> dict[str, Any]:
    """What a webhook receives when an event it was sent is no longer on the chain (a reorg)."""
    event_id = event_message_id(chain_id, event.block_hash, event.tx_hash, event.log_index)
    return {
        "id": retraction_id(event_id),
        "type": "retraction",
        "retracts": event_id,
        "destination": destination_id,
        "event": {"name": event.name, "lot_id": event.lot_id},
        "chain": _coordinates(event, chain_id, registry),
    }


def encode_body(message: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys."""
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter, and when to give a message up to the dead letters.

    The n-th consecutive failure waits between half and all of `min(max_s, base_s * 2**(n-1))`
    ("equal jitter": never less than half, so a receiver that is down is not hammered, and never
    in lock-step with other senders). A message is dead-lettered once it has failed for
    `give_up_after_s` since its first failure: a destination down for less than that loses nothing.
    """

    base_s: float = 1.0
    max_s: float = 300.0
    give_up_after_s: float = 86_400.0

    def delay_s(self, failures: int, rng: random.Random) -> float:
        ceiling = min(self.max_s, self.base_s * 2 ** max(0, min(failures - 1, 60)))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))

    def gives_up(self, first_failure_at: float, now: float) -> bool:
        return now - first_failure_at >= self.give_up_after_s


# ---------------------------------------------------------------------- signatures


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>` (Stripe's scheme)."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, now: float, tolerance_s: float = SIGNATURE_TOLERANCE_S
) -> bool:
    """A receiver's check: the header's time is within `tolerance_s` of `now` and one of its `v1`
    signatures is the body's under the secret."""
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value for key, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature_header(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


# ---------------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class SubscriptionFilter:
    """Which events a buyer's subscription wants: those about the lots `holder` holds or held
    (when set) and the lots named in `lot_ids`, and with `descendants` every lot made from them
    through transformations; of the types in `event_types` (every lot event when empty)."""

    holder: str | None = None
    lot_ids: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    descendants: bool = True
    query: StandingQuery | None = None
    """An EPCIS query subscription's named query (its kind `epcis-query`); None for the others."""

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "holder": self.holder,
            "lot_ids": sorted(self.lot_ids),
            "event_types": sorted(self.event_types),
            "descendants": self.descendants,
        }
        if self.query is not None:
            found["query"] = self.query.as_json()
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SubscriptionFilter:
        query = data.get("query")
        return cls(
            holder=data.get("holder"),
            lot_ids=frozenset(data.get("lot_ids") or ()),
            event_types=frozenset(data.get("event_types") or ()),
            descendants=bool(data.get("descendants", True)),
            query=StandingQuery.from_json(query) if isinstance(query, Mapping) else None,
        )


@dataclass(frozen=True)
class StandingQuery:
    """What an EPCIS query subscription runs: its named query's parameters as they were when it
    subscribed (request parameters, in order), and what the subscriber asked of the answers."""

    name: str
    parameters: tuple[tuple[str, str], ...]
    initial_record_time: str | None = None
    """As the subscriber wrote it (answered back as given); the cursor started from it."""
    epc_format: str | None = None
    """`GS1-EPC-Format` of the subscribing request: how identifiers are written in deliveries."""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameters": [list(pair) for pair in self.parameters],
            "initial_record_time": self.initial_record_time,
            "epc_format": self.epc_format,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StandingQuery:
        return cls(
            name=str(data["name"]),
            parameters=tuple((str(name), str(value)) for name, value in data.get("parameters") or ()),
            initial_record_time=data.get("initial_record_time"),
            epc_format=data.get("epc_format"),
        )


def check_event_types(names: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(names)
    unknown = sorted(chosen - LOT_EVENT_TYPES)
    if unknown:
        raise DomainError(
            "event_types",
            f"unknown event type {', '.join(unknown)}; known: {', '.join(sorted(LOT_EVENT_TYPES))}",
        )
    return chosen


@dataclass
class Watch:
    """The lots a subscription watches, grown as events go by in chain order: a lot the holder
    registers, receives or accepts, and (with descendants) every output of a transformation that
    consumed a watched lot. `lots` and `transforms` start from what the index knew before the first
    event (see `provenance.index.delivery_store`)."""

    filter: SubscriptionFilter
    lots: set[str] = field(default_factory=set)
    transforms: set[int] = field(default_factory=set)
    _registering: dict[str, bool] = field(default_factory=dict)
    """Per transaction: whether its LotsRegistered named the holder as custodian."""

    def admits(self, event: IndexedEvent) -> bool:
        """Whether `event` is one to deliver; learns the lots it brings into the watch."""
        self._learn(event)
        if event.lot_id is None or event.lot_id not in self.lots:
            return False
        return not self.filter.event_types or event.name in self.filter.event_types

    def _learn(self, event: IndexedEvent) -> None:
        holder = (self.filter.holder or "").lower()
        args = event.args
        if event.name == "LotsRegistered":
            self._registering[event.tx_hash] = (
                bool(holder) and str(args.get("custodian", "")).lower() == holder
            )
        elif event.name == "LotRegistered" and self._registering.get(event.tx_hash) and event.lot_id:
            self.lots.add(event.lot_id)
        elif event.name == "CustodyAccepted" and holder and str(args.get("to", "")).lower() == holder:
            self.lots.add(str(args["lotId"]))
        elif event.name == "LotConsumed" and self.filter.descendants and event.lot_id in self.lots:
            self.transforms.add(int(args["transformId"]))
        elif event.name == "LotCreated" and event.lot_id:
            made_from_watched = self.filter.descendants and int(args["transformId"]) in self.transforms
            held = bool(holder) and str(args.get("custodian", "")).lower() == holder
            if made_from_watched or held:
                self.lots.add(event.lot_id)


# ---------------------------------------------------------------------- callback addresses

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_REFUSED_V4 = (
    ("unspecified", "0.0.0.0/8"),
    ("private", "10.0.0.0/8"),
    ("shared (carrier-grade NAT)", "100.64.0.0/10"),
    ("loopback", "127.0.0.0/8"),
    ("link-local", "169.254.0.0/16"),
    ("private", "172.16.0.0/12"),
    ("reserved (IETF protocol assignments)", "192.0.0.0/24"),
    ("reserved (documentation)", "192.0.2.0/24"),
    ("reserved (6to4 relay)", "192.88.99.0/24"),
    ("private", "192.168.0.0/16"),
    ("reserved (benchmarking)", "198.18.0.0/15"),
    ("reserved (documentation)", "198.51.100.0/24"),
    ("reserved (documentation)", "203.0.113.0/24"),
    ("multicast", "224.0.0.0/4"),
    ("reserved", "240.0.0.0/4"),
)
_REFUSED_V6 = (
    ("unspecified", "::/128"),
    ("loopback", "::1/128"),
    ("reserved (IPv4-compatible)", "::/96"),
    ("reserved (discard)", "100::/64"),
    ("reserved (IETF protocol assignments)", "2001::/23"),
    ("reserved (documentation)", "2001:db8::/32"),
    ("reserved (6to4)", "2002::/16"),
    ("unique-local", "fc00::/7"),
    ("link-local", "fe80::/10"),
    ("reserved (site-local)", "fec0::/10"),
    ("multicast", "ff00::/8"),
)
REFUSED_NETWORKS: tuple[tuple[str, Network], ...] = tuple(
    (kind, ipaddress.ip_network(cidr)) for kind, cidr in (*_REFUSED_V4, *_REFUSED_V6)
)


def refused_kind(address: IPAddress) -> str | None:
    """Why a callback may not reach `address` (loopback, private, ...), or None for a public one.
    An IPv6 address that carries an IPv4 one (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96) is judged
    by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refused_kind(address.ipv4_mapped)
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return refused_kind(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    for kind, network in REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return kind
    if not address.is_global:  # whatever else IANA marks not globally reachable
        return "reserved"
    return None


@dataclass(frozen=True)
class AllowList:
    """Hosts and ranges an operator lets callbacks reach although they are not public
    (`PROVENANCE_DELIVERY_ALLOWED_HOSTS`: names, addresses and CIDR ranges, comma-separated)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in (text or "").split(","):
            entry = item.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return any(
            (candidate.version == network.version and candidate in network)
            for network in self.networks
            for candidate in (address, *((mapped,) if mapped is not None else ()))
        )


@dataclass(frozen=True)
class CallbackUrl:
    url: str
    scheme: Literal["http", "https"]
    host: str
    """The host as written (an IPv6 literal without its brackets)."""
    port: int
    target: str
    """Path and query, what the request line names."""

    @property
    def literal_address(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


MAX_URL = 2048


def parse_callback_url(url: str, field_name: str = "callback_url") -> CallbackUrl:
    """An http(s) URL with a host, no credentials; raises DomainError naming `field_name`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise DomainError(field_name, f"must be an http or https URL of at most {MAX_URL} characters")
    if any(ord(character) < 33 or ord(character) == 127 for character in url):
        raise DomainError(field_name, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DomainError(field_name, f"is not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DomainError(field_name, f"must use http or https, not {scheme or 'no scheme'}")
    if parts.username is not None or parts.password is not None:
        raise DomainError(field_name, "must not carry credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DomainError(field_name, "must name a host")
    if parts.fragment:
        raise DomainError(field_name, "must not have a fragment (#...)")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return CallbackUrl(url, scheme, host, port or (443 if scheme == "https" else 80), target)  # type: ignore[arg-type]


def refusal(callback: CallbackUrl, addresses: Sequence[IPAddress], allowed: AllowList) -> str | None:
    """Why a callback must not be called when its host resolves to `addresses`, or None. Every
    address must be allowed: a name that resolves to one public and one private address is refused
    (which of them a connection would use is not ours to choose)."""
    if allowed.allows_host(callback.host):
        return None
    if not addresses:
        return f"host {callback.host} resolves to no address"
    for address in addresses:
        kind = refused_kind(address)
        if kind is not None and not allowed.allows_address(address):
            named = "" if str(address) == callback.host else f" (resolved from {callback.host})"
            return (
                f"{address}{named} is a {kind} address, which callbacks may not reach; an operator "
                "may allow it in PROVENANCE_DELIVERY_ALLOWED_HOSTS"
            )
    return None


# ---------------------------------------------------------------------- destinations and their log


@dataclass(frozen=True)
class Destination:
    """Where deliveries go, what it wants, and how far it got: its cursor is the last event it
    passed in chain order (delivered, dead-lettered or not wanted)."""

    id: str
    kind: str
    owner: str | None
    url: str
    secret: str
    filter: SubscriptionFilter
    active: bool
    created_at: float
    start_block: int
    cursor: Position
    rollbacks_seen: int
    failures: int = 0
    first_failure_at: float | None = None
    next_attempt_at: float = 0.0
    last_error: str | None = None
    delivered_count: int = 0
    last_delivered_at: float | None = None


DeliveryState = Literal["delivered", "retracting", "retracted", "dead"]


@dataclass(frozen=True)
class LogEntry:
    """What became of one event's message at one destination."""

    destination_id: str
    message_id: str
    state: DeliveryState
    event: IndexedEvent
    attempts: int
    recorded_at: float
    error: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class DestinationLag:
    """How far behind the index a destination is (what `/health` shows)."""

    destination_id: str
    kind: str
    cursor_block: int
    pending_events: int
    """Events of the index after its cursor (counted up to a bound), wanted or not."""
    oldest_pending_block_time: int | None
    retractions_pending: int
    dead_letters: int
    failures: int
    last_error: str | None

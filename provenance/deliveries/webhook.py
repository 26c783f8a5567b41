"""Buyers' webhook subscriptions as a kind of destination: signed JSON POSTs to a callback URL.

The callback's host is resolved at every delivery and each address it resolves to is checked
(`provenance.domain.deliveries.refusal`); the connection then goes to the address that was
checked, never to a second resolution of the name, so a name re-pointed at a private address
between the check and the connection (DNS rebinding) reaches nothing. Redirects are not followed.
HTTPS verifies the certificate against the host name.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence

from provenance.deliveries.kinds import LotLookup, Message, Outcome
from provenance.domain.deliveries import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    AllowList,
    CallbackUrl,
    Destination,
    IndexedEvent,
    IPAddress,
    Watch,
    encode_body,
    event_message,
    parse_callback_url,
    refusal,
    retraction_message,
    signature_header,
)
from provenance.errors import DomainError

Resolver = Callable[[str, int], Sequence[IPAddress]]
USER_AGENT = "mineral-provenance-deliveries/1"
STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
"""How a kept-alive connection that the receiver closed meanwhile fails (RemoteDisconnected is a
ConnectionResetError)."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def addresses_of(callback: CallbackUrl, resolver: Resolver) -> list[IPAddress]:
    literal = callback.literal_address
    return [literal] if literal is not None else list(resolver(callback.host, callback.port))


def check_callback(
    url: str, allowed: AllowList, resolver: Resolver = resolve, field_name: str = "callback_url"
) -> CallbackUrl:
    """At registration: a well-formed http(s) URL whose host resolves only to addresses callbacks
    may reach; DomainError naming `field_name` otherwise. (Checked again at every delivery.)"""
    callback = parse_callback_url(url, field_name)
    reason = refusal(callback, addresses_of(callback, resolver), allowed)
    if reason is not None:
        raise DomainError(field_name, reason)
    return callback


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int, address: IPAddress, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class WebhookKind:
    """Signed JSON POSTs (`Provenance-Signature: t=...,v1=...`, `Provenance-Delivery-Id`)."""

    name = "webhook"

    def __init__(
        self,
        *,
        chain_id: int,
        registry: str,
        allowed: AllowList,
        timeout_s: float = 10.0,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain_id = chain_id
        self.registry = registry
        self.allowed = allowed
        self.timeout_s = timeout_s
        self.resolver = resolver
        self.clock = clock
        self._tls = ssl.create_default_context()
        self._kept: dict[tuple[str, str, str, int, str], http.client.HTTPConnection] = {}
        """Keep-alive connections by destination and the address that was checked for it."""

    def matcher(self, destination: Destination, lookup: LotLookup) -> Callable[[IndexedEvent], bool]:
        lots, transforms = lookup.watched(destination.filter, destination.cursor.block_number)
        watch = Watch(destination.filter, lots, transforms)
        holder = (destination.filter.holder or "").lower()
        offers = {"CustodyOffered", "CustodyOfferCancelled"}
        wanted = destination.filter.event_types

        def admits(event: IndexedEvent) -> bool:
            if watch.admits(event):
                return True
            # an offer made to the holder, or withdrawn, before the lot is theirs
            return (
                bool(holder)
                and event.name in offers
                and str(event.args.get("to", "")).lower() == holder
                and (not wanted or event.name in wanted)
            )

        return admits

    def message(self, destination: Destination, event: IndexedEvent) -> Message:
        return event_message(
            event, chain_id=self.chain_id, registry=self.registry, destination_id=destination.id
        )

    def retraction(self, destination: Destination, event: IndexedEvent) -> Message:
        return retraction_message(
            event, chain_id=self.chain_id, registry=self.registry, destination_id=destination.id
        )

    def send(self, destination: Destination, message: Message) -> Outcome:
        try:
            callback = parse_callback_url(destination.url)
        except DomainError as error:
            return Outcome.failed(f"refused: {error.message}")
        addresses = addresses_of(callback, self.resolver)
        reason = refusal(callback, addresses, self.allowed)
        if reason is not None:
            return Outcome.failed(f"refused: {reason}")
        body = self.body(message)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **self.signed(destination, body),
            DELIVERY_ID_HEADER: str(message["id"]),
        }
        key = (destination.id, callback.scheme, callback.host, callback.port, str(addresses[0]))
        kept = self._kept.pop(key, None)
        if kept is not None:
            answer = self._post(kept, callback, body, headers)
            if not isinstance(answer, Exception):
                return self._outcome(key, kept, answer)
            kept.close()
            if not isinstance(answer, STALE):  # a timeout is the receiver's, not the connection's
                return Outcome.failed(f"{type(answer).__name__}: {answer}"[:500])
            # the receiver had closed the kept connection: once more, at once, on a new one
        connection = self._connect(callback, addresses[0])
        answer = self._post(connection, callback, body, headers)
        if isinstance(answer, Exception):
            connection.close()
            return Outcome.failed(f"{type(answer).__name__}: {answer}"[:500])
        return self._outcome(key, connection, answer)

    def body(self, message: Message) -> bytes:
        """The bytes sent for `message` (and signed)."""
        return encode_body(message)

    def signed(self, destination: Destination, body: bytes) -> dict[str, str]:
        """The signature header of `body` under the destination's secret."""
        return {SIGNATURE_HEADER: signature_header(destination.secret, int(self.clock()), body)}

    def _connect(self, callback: CallbackUrl, address: IPAddress) -> http.client.HTTPConnection:
        if callback.scheme == "https":
            return _PinnedHTTPSConnection(callback.host, callback.port, address, self.timeout_s, self._tls)
        return _PinnedHTTPConnection(callback.host, callback.port, address, self.timeout_s)

    @staticmethod
    def _post(
        connection: http.client.HTTPConnection, callback: CallbackUrl, body: bytes, headers: dict[str, str]
    ) -> http.client.HTTPResponse | Exception:
        try:
            connection.request("POST", callback.target, body=body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
        except (OSError, http.client.HTTPException) as error:
            return error
        return response

    def _outcome(
        self,
        key: tuple[str, str, str, int, str],
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
    ) -> Outcome:
        if response.will_close or not response.isclosed():
            connection.close()  # closing, or an answer longer than we read: not reused
        else:
            self._kept[key] = connection  # one pass of a destination at a time: one connection each
        if 200 <= response.status < 300:
            return Outcome.ok()
        return Outcome.failed(f"HTTP {response.status} {response.reason}"[:500])

    def close(self) -> None:
        while self._kept:
            _, connection = self._kept.popitem()
            connection.close()

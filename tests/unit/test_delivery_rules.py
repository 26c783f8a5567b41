"""The plain rules of outbound deliveries: message ids, signatures, back-off, which events a
subscription wants, and which callback addresses are refused (SSRF)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from typing import Any

import pytest

from provenance.deliveries.webhook import check_callback
from provenance.domain.deliveries import (
    AllowList,
    IndexedEvent,
    RetryPolicy,
    SubscriptionFilter,
    Watch,
    check_event_types,
    event_message_id,
    parse_callback_url,
    refused_kind,
    retraction_id,
    signature_header,
    verify_signature,
)
from provenance.errors import DomainError

BLOCK_A = "0x" + "aa" * 32
BLOCK_B = "0x" + "bb" * 32
TX = "0x" + "01" * 32
HOLDER = "0x" + "c0" * 20
OTHER = "0x" + "d0" * 20

# ---------------------------------------------------------------------- message ids


def test_a_message_id_is_the_same_for_the_same_coordinates_and_differs_for_any_other() -> None:
    first = event_message_id(31337, BLOCK_A, TX, 3)

    assert first == event_message_id(31337, BLOCK_A.upper().replace("0X", "0x"), TX, 3)
    others = {
        event_message_id(1, BLOCK_A, TX, 3),
        event_message_id(31337, BLOCK_B, TX, 3),
        event_message_id(31337, BLOCK_A, "0x" + "02" * 32, 3),
        event_message_id(31337, BLOCK_A, TX, 4),
    }
    assert first not in others
    assert len(others) == 4
    expected = hashlib.sha256(f"31337:{BLOCK_A}:{TX}:3".encode()).hexdigest()[:40]
    assert first == "evt_" + expected
    assert retraction_id(first) == "ret_" + expected


# ---------------------------------------------------------------------- signatures


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"id":"evt_1"}'
    header = signature_header("whsec_test", 1_900_000_000, body)

    digest = hmac.new(b"whsec_test", b"1900000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1900000000,v1={digest}"


@pytest.mark.parametrize(
    ("secret", "body", "now", "valid"),
    [
        ("whsec_test", b"{}", 1_000_000_100, True),
        ("whsec_other", b"{}", 1_000_000_100, False),
        ("whsec_test", b"{ }", 1_000_000_100, False),
        ("whsec_test", b"{}", 1_000_000_000 + 301, False),
        ("whsec_test", b"{}", 1_000_000_000 - 301, False),
    ],
    ids=["valid", "other-secret", "altered-body", "too-late", "from-the-future"],
)
def test_a_receiver_accepts_only_a_fresh_signature_of_the_same_body(
    secret: str, body: bytes, now: int, valid: bool
) -> None:
    header = signature_header("whsec_test", 1_000_000_000, b"{}")

    assert verify_signature(secret, header, body, now) is valid


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1000000000", "garbage"])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    assert verify_signature("whsec_test", header, b"{}", 1_000_000_000) is False


# ---------------------------------------------------------------------- back-off


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=1.0, max_s=60.0, give_up_after_s=3600.0)
    rng = random.Random(7)

    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60), (10_000, 60)]:
        delays = [policy.delay_s(failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert max(delays) - min(delays) > ceiling / 10, "no jitter"


def test_a_message_is_given_up_once_it_has_failed_for_the_whole_window() -> None:
    policy = RetryPolicy(give_up_after_s=3600.0)

    assert not policy.gives_up(first_failure_at=10_000.0, now=10_000.0 + 3599.0)
    assert policy.gives_up(first_failure_at=10_000.0, now=10_000.0 + 3600.0)


def test_a_destination_down_for_an_hour_is_not_given_up_by_default() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    elapsed, failures = 0.0, 0
    while elapsed < 3600:
        failures += 1
        elapsed += policy.delay_s(failures, rng)
        assert not policy.gives_up(0.0, elapsed)
    assert failures < 40, "an hour down costs a few dozen attempts, not thousands"


# ---------------------------------------------------------------------- callback addresses


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not bound
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved (documentation)"),
        ("2001:db8::1", "reserved (documentation)"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
    ],
)
def test_every_kind_of_non_public_address_is_refused(address: str, kind: str) -> None:
    assert refused_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_kind(ipaddress.ip_address(address)) is None


def _resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, _port: int) -> list[Any]:
        return [ipaddress.ip_address(address) for address in table.get(host, [])]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://240.0.0.1/hook",
        "http://rebinding.example/hook",
        "http://half-private.example/hook",
        "http://nowhere.example/hook",
    ],
)
def test_a_callback_that_reaches_a_non_public_address_is_refused_naming_the_field(url: str) -> None:
    resolver = _resolver(
        {
            "rebinding.example": ["127.0.0.1"],
            "half-private.example": ["93.184.216.34", "10.1.1.1"],
        }
    )

    with pytest.raises(DomainError) as refused:
        check_callback(url, AllowList(), resolver)

    assert refused.value.field == "callback_url"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/x",
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
        "http://user:pass@93.184.216.34/",
        "http:///nohost",
        "http://93.184.216.34:99999/",
        "http://93.184.216.34/a b",
        "not a url",
        "",
    ],
)
def test_only_plain_http_and_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_callback_url(url)

    assert refused.value.field == "callback_url"


def test_a_public_callback_is_accepted() -> None:
    resolver = _resolver({"buyer.example": ["93.184.216.34"]})

    callback = check_callback("https://buyer.example/hooks?x=1", AllowList(), resolver)

    assert (callback.scheme, callback.host, callback.port, callback.target) == (
        "https",
        "buyer.example",
        443,
        "/hooks?x=1",
    )


def test_an_operator_may_allow_hosts_and_ranges() -> None:
    allowed = AllowList.parse("127.0.0.1, 10.20.0.0/16 ,receiver.internal,[::1]")
    resolver = _resolver({"receiver.internal": ["10.99.0.1"], "svc.example": ["10.20.3.4"]})

    for url in [
        "http://127.0.0.1:9000/hook",
        "http://[::ffff:127.0.0.1]:9000/hook",
        "http://[::1]/hook",
        "http://receiver.internal/hook",
        "http://svc.example/hook",
    ]:
        check_callback(url, allowed, resolver)
    with pytest.raises(DomainError):
        check_callback("http://127.0.0.2/hook", allowed, resolver)
    with pytest.raises(DomainError):
        check_callback("http://10.21.0.1/hook", allowed, resolver)


# ---------------------------------------------------------------------- what a subscription wants


def _event(name: str, lot_id: str | None, tx: str = TX, **args: Any) -> IndexedEvent:
    return IndexedEvent(name, lot_id, args, 10, BLOCK_A, tx, 0, 0)


def test_a_holder_watches_the_lots_it_receives_and_what_is_made_from_them() -> None:
    watch = Watch(SubscriptionFilter(holder=HOLDER))
    stream = [
        (_event("LotsRegistered", None, "0x01", site="S", custodian=OTHER), False),
        (_event("LotRegistered", "A1", "0x01"), False),
        (
            _event("LotsRegistered", None, "0x02", site="S", custodian=HOLDER.upper().replace("0X", "0x")),
            False,
        ),
        (_event("LotRegistered", "B1", "0x02"), True),
        (_event("AssayRecorded", "A1"), False),
        (_event("CustodyAccepted", "A1", **{"lotId": "A1", "from": OTHER, "to": HOLDER}), True),
        (_event("AssayRecorded", "A1"), True),
        (_event("LotsTransformed", None, "0x03", transformId=7), False),
        (_event("LotConsumed", "A1", "0x03", lotId="A1", transformId=7), True),
        (_event("LotCreated", "C1", "0x03", lotId="C1", transformId=7, custodian=OTHER), True),
        (_event("LotCreated", "D1", "0x04", lotId="D1", transformId=8, custodian=OTHER), False),
        (_event("LotCorrected", "C1"), True),
    ]

    assert [watch.admits(event) for event, _ in stream] == [wanted for _, wanted in stream]


def test_named_lots_without_descendants_and_chosen_event_types() -> None:
    watch = Watch(
        SubscriptionFilter(
            lot_ids=frozenset({"A1"}), event_types=frozenset({"AssayRecorded"}), descendants=False
        ),
        lots={"A1"},
    )

    assert watch.admits(_event("AssayRecorded", "A1"))
    assert not watch.admits(_event("LotCorrected", "A1"))
    assert not watch.admits(_event("LotConsumed", "A1", lotId="A1", transformId=1))
    assert not watch.admits(_event("LotCreated", "X", lotId="X", transformId=1, custodian=OTHER))
    assert not watch.admits(_event("AssayRecorded", "X"))


def test_unknown_event_types_are_refused_naming_the_field() -> None:
    with pytest.raises(DomainError) as refused:
        check_event_types(["AssayRecorded", "RoleGranted"])

    assert refused.value.field == "event_types"
    assert "RoleGranted" in refused.value.message


def test_a_name_that_resolves_to_a_private_address_at_delivery_time_is_not_called() -> None:
    """Registered while the name pointed elsewhere; re-pointed at the metadata address since (DNS
    rebinding): the delivery is refused before any connection, and is a failure to retry."""
    from provenance.deliveries.webhook import WebhookKind
    from provenance.domain.deliveries import Destination, Position

    table = {"buyer.example": ["93.184.216.34"]}
    webhook = WebhookKind(chain_id=1, registry=OTHER, allowed=AllowList(), resolver=_resolver(table))
    check_callback("http://buyer.example/hook", AllowList(), _resolver(table))
    table["buyer.example"] = ["169.254.169.254"]
    destination = Destination(
        "sub_x",
        "webhook",
        HOLDER,
        "http://buyer.example/hook",
        "whsec_x",
        SubscriptionFilter(holder=HOLDER),
        True,
        0.0,
        0,
        Position(0, 0, 0),
        0,
    )

    outcome = webhook.send(destination, {"id": "evt_1"})

    assert not outcome.acknowledged
    assert outcome.error is not None
    assert outcome.error.startswith(
        "refused: 169.254.169.254 (resolved from buyer.example) is a link-local address"
    )

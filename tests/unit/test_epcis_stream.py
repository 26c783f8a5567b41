"""The parts of EPCIS query subscriptions that need no database: where a subscription's query run
starts for an index event, and that a subscription's query survives its trip through the
destination's stored filter."""

from __future__ import annotations

import itertools

import pytest

from provenance.deliveries.epcis_stream import key_before
from provenance.deliveries.query_subscriptions import SubscriptionControlsException, subscription_request
from provenance.domain.deliveries import Position, StandingQuery, SubscriptionFilter


@pytest.mark.parametrize(
    "position", [Position(7, 2, 5), Position(7, 2, 0), Position(7, 0, 0), Position(0, 0, 0)]
)
def test_a_run_starts_just_before_both_parts_of_the_event_and_after_everything_earlier(
    position: Position,
) -> None:
    start = key_before(position)
    here = (position.block_number, position.tx_index, position.log_index)
    assert start < (*here, 0) < (*here, 1), "both parts of a correction at the position come after"
    earlier = [
        (block, tx, log, part)
        for block, tx, log, part in itertools.product(
            range(max(0, here[0] - 1), here[0] + 1), range(4), range(7), (0, 1)
        )
        if (block, tx, log) < here
    ]
    assert all(key <= start for key in earlier), "nothing before the position is read again"


def test_a_standing_query_survives_the_stored_filter() -> None:
    standing = StandingQuery(
        "q",
        (("EQ_bizStep", "shipping|receiving"), ("GE_eventTime", "2026-01-01T00:00:00Z")),
        "2026-01-01T00:00:00Z",
        "Always_EPC_URN",
    )
    stored = SubscriptionFilter(query=standing).as_json()

    assert SubscriptionFilter.from_json(stored).query == standing
    assert SubscriptionFilter.from_json(SubscriptionFilter().as_json()).query is None


def test_a_subscription_body_is_json_of_gs1s_fields_only() -> None:
    taken = subscription_request(
        "application/json",
        b'{"dest": "https://a.example/x", "stream": true, "initialRecordTime": "2026-01-01T09:00:00+09:00"}',
    )
    assert (taken.dest, taken.signature_token, taken.recorded_from_ms) == (
        "https://a.example/x",
        "",
        1_767_225_600_000,
    )
    with pytest.raises(SubscriptionControlsException) as refused:
        subscription_request("application/json", b"[]")
    assert refused.value.parameter == "body"

"""The per-credential token bucket behind the API's 429s."""

from __future__ import annotations

import pytest

from api.ratelimit import RateLimited, WriteRateLimiter
from provenance.config import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_write_waits_for_a_token() -> None:
    clock = Clock()
    limiter = WriteRateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("operator")

    with pytest.raises(RateLimited) as refused:
        limiter.take("operator")

    assert refused.value.retry_after_s == 1
    assert "2 writes/s per credential, bursts of 3" in str(refused.value)
    clock.now += 0.5  # one token at 2/s
    limiter.take("operator")
    with pytest.raises(RateLimited):
        limiter.take("operator")


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    clock = Clock()
    limiter = WriteRateLimiter(rate_per_s=0.25, burst=1, clock=clock)
    limiter.take("a")

    with pytest.raises(RateLimited) as refused:
        limiter.take("a")

    assert refused.value.retry_after_s == 4


def test_each_credential_has_its_own_bucket() -> None:
    limiter = WriteRateLimiter(rate_per_s=1.0, burst=1, clock=Clock())
    limiter.take("operator")
    with pytest.raises(RateLimited):
        limiter.take("operator")

    limiter.take("clerk")


def test_an_idle_bucket_refills_to_the_burst_and_no_further() -> None:
    clock = Clock()
    limiter = WriteRateLimiter(rate_per_s=10.0, burst=5, clock=clock)
    limiter.take("a")
    clock.now += 3_600

    for _ in range(5):
        limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")


def test_the_defaults_leave_the_bench_of_150_writes_a_second_alone() -> None:
    settings = Settings()
    clock = Clock()
    limiter = WriteRateLimiter(settings.write_rate_per_s, settings.write_burst, clock=clock)

    for _ in range(150 * 60):  # a minute at 150/s from one credential
        clock.now += 1 / 150
        limiter.take("bench")
    for _ in range(settings.write_burst - 1):  # and then a burst at one instant
        limiter.take("bench")


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_limit_that_could_never_pass_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        WriteRateLimiter(rate, burst)

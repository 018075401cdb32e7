"""Freshness and retry rules."""

from __future__ import annotations

import math

import pytest

from aiodax._rules.policy import RetryPolicy, expiry


@pytest.mark.parametrize("ttl", [0, 0.0, -1])
def test_zero_or_negative_ttl_is_not_stored(ttl: float) -> None:
    assert expiry(100.0, ttl) is None


def test_infinite_ttl_never_expires() -> None:
    assert expiry(100.0, math.inf) == math.inf


@pytest.mark.parametrize(("now", "ttl"), [(100.0, 5.0), (0.0, 0.25), (1e6, 300)])
def test_finite_ttl_expires_ttl_seconds_after_now(now: float, ttl: float) -> None:
    assert expiry(now, ttl) == now + ttl


@pytest.mark.parametrize("attempts", [0, 1, 5, 12])
def test_delays_count_equals_attempts(attempts: int) -> None:
    assert len(list(RetryPolicy(attempts=attempts).delays(lambda: 0.5))) == attempts


def test_top_of_the_jitter_is_capped_exponential() -> None:
    policy = RetryPolicy(attempts=7, base=0.1, cap=1.0)
    assert list(policy.delays(lambda: 1.0)) == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.999])
def test_full_jitter_scales_each_delay_by_rand(rand: float) -> None:
    policy = RetryPolicy(attempts=8, base=0.025, cap=1.0)
    delays = list(policy.delays(lambda: rand))
    assert delays == [rand * min(1.0, 0.025 * 2**i) for i in range(8)]
    for i, delay in enumerate(delays):
        assert 0 <= delay <= min(policy.cap, policy.base * 2**i)


def test_delays_draw_one_random_number_per_attempt() -> None:
    draws = iter([0.1, 0.9, 0.5])
    assert list(RetryPolicy(attempts=3, base=1.0, cap=10.0).delays(lambda: next(draws))) == [
        0.1,
        1.8,
        2.0,
    ]


def test_default_delays_stay_within_cap() -> None:
    policy = RetryPolicy()
    delays = list(policy.delays())
    assert len(delays) == policy.attempts
    assert all(0 <= d <= min(policy.cap, policy.base * 2**i) for i, d in enumerate(delays))

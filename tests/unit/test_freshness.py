"""Freshness rules: refresh-ahead (XFetch), stale-while-revalidate, stale-if-error."""

from __future__ import annotations

import math

import pytest

from aiodax._rules.freshness import (
    NO_FRESHNESS,
    XFETCH_K,
    Decision,
    Freshness,
    decide,
    hit_horizon,
    serves_if_error,
)

EXPIRY = 1_000.0
DELTA = 0.2


def never() -> float:
    raise AssertionError("rand drawn outside a refresh window")


def test_without_policies_the_horizon_is_the_expiry_and_past_it_a_miss() -> None:
    assert not NO_FRESHNESS.any
    assert hit_horizon(NO_FRESHNESS, EXPIRY, DELTA) == EXPIRY
    assert decide(NO_FRESHNESS, EXPIRY - 1e-9, EXPIRY, DELTA, never) is Decision.FRESH
    assert decide(NO_FRESHNESS, EXPIRY, EXPIRY, DELTA, never) is Decision.MISS
    assert not serves_if_error(NO_FRESHNESS, EXPIRY, EXPIRY)
    # Off, not even a fresh entry stands in for a failed read: the error is the caller's.
    assert not serves_if_error(NO_FRESHNESS, EXPIRY - 1, EXPIRY)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_refresh_window_opens_delta_beta_k_before_expiry(beta: float) -> None:
    policy = Freshness(refresh_ahead=beta)
    assert hit_horizon(policy, EXPIRY, DELTA) == pytest.approx(EXPIRY - DELTA * beta * XFETCH_K)


def test_truncation_skips_one_refresh_in_a_thousand() -> None:
    # At the horizon, XFetch refreshes exactly when rand() <= 1/1000.
    policy = Freshness(refresh_ahead=1.0)
    horizon = hit_horizon(policy, EXPIRY, DELTA)
    assert decide(policy, horizon, EXPIRY, DELTA, lambda: 0.0009) is Decision.REFRESH_AHEAD
    assert decide(policy, horizon, EXPIRY, DELTA, lambda: 0.0011) is Decision.FRESH


def test_refresh_ahead_follows_xfetch_inside_the_window() -> None:
    policy = Freshness(refresh_ahead=1.0)
    now = EXPIRY - 0.1  # needs −δ·ln(r) >= 0.1: r <= exp(−0.5)
    edge = math.exp(-0.1 / DELTA)
    assert decide(policy, now, EXPIRY, DELTA, lambda: edge * 0.99) is Decision.REFRESH_AHEAD
    assert decide(policy, now, EXPIRY, DELTA, lambda: edge * 1.01) is Decision.FRESH
    assert decide(policy, now, EXPIRY, DELTA, lambda: 0.0) is Decision.REFRESH_AHEAD


def test_without_a_measured_load_refresh_ahead_has_no_window() -> None:
    policy = Freshness(refresh_ahead=1.0)
    assert hit_horizon(policy, EXPIRY, 0.0) == EXPIRY
    assert hit_horizon(policy, math.inf, DELTA) == math.inf


def test_refresh_ahead_alone_misses_once_expired() -> None:
    policy = Freshness(refresh_ahead=1.0)
    assert decide(policy, EXPIRY, EXPIRY, DELTA, never) is Decision.MISS


def test_stale_while_revalidate_serves_up_to_n_seconds_past_expiry() -> None:
    policy = Freshness(stale_while_revalidate=5.0)
    assert decide(policy, EXPIRY, EXPIRY, DELTA, never) is Decision.STALE_WHILE_REVALIDATE
    assert decide(policy, EXPIRY + 4.999, EXPIRY, DELTA, never) is (Decision.STALE_WHILE_REVALIDATE)
    assert decide(policy, EXPIRY + 5.0, EXPIRY, DELTA, never) is Decision.MISS
    # Fresh entries are not touched by it.
    assert decide(policy, EXPIRY - 1, EXPIRY, DELTA, never) is Decision.FRESH


def test_stale_if_error_stands_in_up_to_n_seconds_past_expiry() -> None:
    policy = Freshness(stale_if_error=30.0)
    assert decide(policy, EXPIRY + 1, EXPIRY, DELTA, never) is Decision.MISS
    assert serves_if_error(policy, EXPIRY + 29.9, EXPIRY)
    assert not serves_if_error(policy, EXPIRY + 30.0, EXPIRY)
    assert policy.any

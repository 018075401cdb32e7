"""Freshness policies: refresh-ahead (XFetch), stale-while-revalidate, stale-if-error.

Pure functions of numbers: the clock's reading, an entry's times, the duration of
the load that filled it, and a random number, all handed in.

An entry has a *real expiry* (``fresh_until``: stored + TTL) and a *hit horizon*
(the store's ``expires_at``): until the horizon a hit needs no thought, and the
hit paths compare against it alone.  Without refresh-ahead the two are equal.

**Refresh-ahead** is XFetch (Vattani, Chierichetti, Lowenstein, "Optimal
Probabilistic Cache Stampede Prevention", PVLDB 8(8), 2015): a read at ``now``
refreshes when ``now − δ·β·ln(rand()) ≥ fresh_until``, ``δ`` the last load's
duration, ``β`` the eagerness (1.0 is the paper's optimum for most loads).  Since
``−ln(rand())`` exceeds ``K = ln(1000)`` only when ``rand() < 1/1000``, aiodax
truncates: a read before ``fresh_until − δ·β·K`` (the horizon) never refreshes.
XFetch itself would refresh there on one read in a thousand; skipping those keeps
every read before the horizon a plain hit.

**Stale-while-revalidate** and **stale-if-error** are RFC 5861's: an entry up to
``stale_while_revalidate`` seconds past its real expiry is served while one reload
runs; one up to ``stale_if_error`` seconds past it is served when the reload
failed for a reason of DynamoDB's (throttling, 5xx, a timeout, a lost
connection: ``_backend.read_failed_transiently``), never for the request's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

#: How many ``δ·β`` before its real expiry an entry's refresh window opens:
#: XFetch would refresh earlier with probability ``exp(−K) = 1/1000`` per read.
XFETCH_K: Final = math.log(1000)


class Decision(Enum):
    """What a read does with an entry past its hit horizon."""

    #: serve it, nothing else
    FRESH = "fresh"
    #: serve it and start one background reload (it is fresh, but near its expiry)
    REFRESH_AHEAD = "refresh-ahead"
    #: serve it although expired, and start one background reload
    STALE_WHILE_REVALIDATE = "stale-while-revalidate"
    #: it is too old to serve: the read waits for DynamoDB
    MISS = "miss"


@dataclass(frozen=True, slots=True)
class Freshness:
    """A table's freshness policies; the default is none of them (today's behaviour).

    ``refresh_ahead``: XFetch's ``β`` (``None``: off); ``stale_while_revalidate``
    and ``stale_if_error``: seconds past the real expiry (``0``: off).
    """

    refresh_ahead: float | None = None
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0

    @property
    def any(self) -> bool:
        return (
            self.refresh_ahead is not None
            or self.stale_while_revalidate > 0
            or self.stale_if_error > 0
        )


NO_FRESHNESS: Final = Freshness()


def hit_horizon(policy: Freshness, fresh_until: float, load_time: float) -> float:
    """Until when a hit on an entry expiring at ``fresh_until`` needs no thought."""
    beta = policy.refresh_ahead
    if beta is None or load_time <= 0 or fresh_until == math.inf:
        return fresh_until
    return fresh_until - load_time * beta * XFETCH_K


def decide(
    policy: Freshness,
    now: float,
    fresh_until: float,
    load_time: float,
    rand: Callable[[], float],
) -> Decision:
    """What a read at ``now`` does with an entry past its hit horizon.

    ``rand`` (uniform in [0, 1)) is drawn only inside a refresh window.
    """
    if now < fresh_until:
        beta = policy.refresh_ahead
        if beta is None:
            return Decision.FRESH
        draw = rand()
        # ln(0) is -inf: XFetch's "refresh now".
        if draw <= 0 or now - load_time * beta * math.log(draw) >= fresh_until:
            return Decision.REFRESH_AHEAD
        return Decision.FRESH
    if now < fresh_until + policy.stale_while_revalidate:
        return Decision.STALE_WHILE_REVALIDATE
    return Decision.MISS


def serves_if_error(policy: Freshness, now: float, fresh_until: float) -> bool:
    """Whether an entry expiring at ``fresh_until`` may stand in at ``now`` for a reload
    that failed transiently.

    Never without the policy, not even for an entry still fresh (one a write stored
    while the failed read was out): off, a read's failure is its caller's, as ever.
    """
    window = policy.stale_if_error
    return window > 0 and now < fresh_until + window

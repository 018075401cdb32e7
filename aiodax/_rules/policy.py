"""Freshness and retry rules: pure functions of their inputs and an injected clock.

Nothing here does I/O, so every rule is testable with plain numbers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .._errors import ConfigurationError


def expiry(now: float, ttl: float) -> float | None:
    """When an entry stored at ``now`` stops being fresh; ``None`` = do not store it.

    DAX counts a TTL from the moment the entry is written into the cache and reads
    never extend it; so does aiodax.  An entry is fresh while ``now < expires_at``
    (the engine's hit paths test that inline, on their own clock reading).
    """
    if ttl <= 0:
        return None
    return now + ttl if ttl != math.inf else math.inf


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for ``UnprocessedKeys``: capped exponential with full jitter.

    Full jitter spreads the retries of many coalesced batches apart, which is the
    point when DynamoDB returned unprocessed keys because a partition was hot.
    ``attempts`` retries follow the first request; the n-th waits a random time
    below ``min(cap, base * 2**n)`` seconds.
    """

    attempts: int = 5
    base: float = 0.025
    cap: float = 1.0

    def __post_init__(self) -> None:
        if type(self.attempts) is not int or self.attempts < 0:
            raise ConfigurationError(f"attempts must be an int >= 0, got {self.attempts!r}")
        for name in ("base", "cap"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 <= value < math.inf:
                raise ConfigurationError(
                    f"{name} must be a finite number of seconds >= 0, got {value!r}"
                )

    def delays(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        for attempt in range(self.attempts):
            yield rand() * min(self.cap, self.base * 2**attempt)

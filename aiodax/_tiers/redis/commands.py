"""``L2Commands``: the shared miss path's round trips to Redis, one script each,
bounded by ``RedisTier.timeout``, behind a breaker.

Every step is one script (``scripts``): ``GET_OR_LEASE`` (a copy, a lease, or the
holder's time left), ``FILL`` (the copy, only under the lease and unchanged
generations), ``RENEW`` and ``RELEASE``.  Any failure, a timeout or a reply of the
wrong shape is ``Unavailable``: what the step was for goes to DynamoDB.  After
``BREAKER_TIMEOUTS`` timeouts in a row Redis is not asked for ``BREAKER_OPEN``
seconds, so that a Redis that hangs costs a read at most a few timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.commands.core import AsyncScript

from .bus import REDIS_FAILURES
from .envelope import Generations
from .link import RedisLink
from .misses import Miss
from .scripts import FILL, GET_OR_LEASE, RELEASE, RENEW

#: Redis timeouts in a row that make the tier stop asking it, and for how long (s).
BREAKER_TIMEOUTS: Final = 5
BREAKER_OPEN: Final = 5.0

#: One ``GET_OR_LEASE`` reply per miss: its kind, generations and payload.
Reply = tuple[int, Generations, Any]


class Unavailable(Exception):
    """A Redis step failed or timed out: what it was for goes to DynamoDB."""


@dataclass(slots=True)
class Breaker:
    """Stops asking a Redis that keeps timing out (``BREAKER_*``)."""

    clock: Callable[[], float] = time.monotonic
    timeouts: int = 0
    open_until: float = 0.0

    def allows(self) -> bool:
        return self.clock() >= self.open_until

    def timed_out(self) -> None:
        self.timeouts += 1
        if self.timeouts >= BREAKER_TIMEOUTS:
            self.timeouts = 0
            self.open_until = self.clock() + BREAKER_OPEN

    def answered(self) -> None:
        self.timeouts = 0


class L2Commands:
    """The scripts of the shared miss path; see the module docstring."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._scripts: dict[str, AsyncScript] = {}
        self.breaker = Breaker()
        self.errors = 0

    @property
    def lease_ms(self) -> int:
        return max(1, int(self._link.tier.lease_time * 1000))

    async def get_or_lease(self, misses: list[Miss]) -> tuple[int, list[Reply]]:
        """Redis's time (ms), and for each miss its copy, its lease, or the time its
        holder has left."""
        keys: list[str] = []
        args: list[Any] = [self.lease_ms]
        for miss in misses:
            keys.extend(miss.target.keys)
            args.extend((miss.target.field, miss.token, miss.mode))
        reply = await self._run(GET_OR_LEASE, keys, args)
        try:
            now, answers = reply
            replies = [
                (int(kind), (text(raw[0]), text(raw[1]), text(raw[2])), payload)
                for kind, raw, payload in answers
            ]
        except (TypeError, ValueError, IndexError) as error:
            self.errors += 1
            raise Unavailable from error
        if len(replies) != len(misses):
            self.errors += 1
            raise Unavailable
        return int(now), replies

    async def fill(self, copies: Sequence[tuple[Miss, Generations, bytes, int]]) -> list[bool]:
        """Store each copy (with its TTL, ms) if its miss still holds the lease and its
        generations have not moved; which ones were stored."""
        keys: list[str] = []
        args: list[Any] = [self._link.keys.filled]
        for miss, generations, copy, ttl in copies:
            target = miss.target
            keys.extend(target.keys)
            args.extend((target.field, miss.token, *generations, copy, ttl, target.digest))
        return [stored == 1 for stored in await self._run(FILL, keys, args)]

    async def renew(self, holding: Sequence[Miss]) -> bool:
        """Extend the leases ``holding`` still holds; ``False``: none is theirs."""
        keys = [miss.target.lease for miss in holding]
        args = [self.lease_ms, *(miss.token for miss in holding)]
        return bool(await self._run(RENEW, keys, args))

    async def release(self, holding: Sequence[Miss]) -> None:
        """Give the leases up and wake their waiters."""
        if holding:
            args: list[Any] = [self._link.keys.filled]
            for miss in holding:
                args.extend((miss.token, miss.target.digest))
            await self._run(RELEASE, [miss.target.lease for miss in holding], args)

    async def _run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._link.commands.register_script(source)
        try:
            async with asyncio.timeout(self._link.tier.timeout):
                reply = await script(keys=keys, args=args)
        except TimeoutError as error:  # before REDIS_FAILURES: it is an OSError too
            self.errors += 1
            self.breaker.timed_out()
            raise Unavailable from error
        except REDIS_FAILURES as error:
            self.errors += 1
            raise Unavailable from error
        self.breaker.answered()
        return reply


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

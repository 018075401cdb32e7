"""Stream bounds: a cache stops serving a table from memory while the streams
invalidator's watermark of it is older than the table's bound (``RedisTier.stream_bounds``).

The invalidator (``aiodax.streams``) keeps, per shard it reads, the Redis time up
to which every change of that shard was invalidated (``Keys.watermarks``).  A
table's watermark is the oldest of its shards'.  Every ``interval`` this watch asks
Redis for it and for Redis's clock (one script, so no two hosts' clocks are
compared), and tells the cache which tables it may no longer vouch for
(``TierHost.bypass``): no watermark at all (no invalidator ever ran, or every
shard's reader is gone), one older than the bound, or a Redis that does not
answer.  While bypassed, the table's reads go to DynamoDB (coalesced as any
miss) and nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from redis.exceptions import RedisError

from .. import TierHost
from .link import RedisLink

_LOG: Final = logging.getLogger("aiodax")

#: Redis's clock (ms) and each hash's smallest value (-1: empty).  KEYS: the tables'
#: watermark hashes.
WATERMARKS: Final = """
local clock = redis.call('TIME')
local out = {clock[1] * 1000 + math.floor(clock[2] / 1000)}
for at = 1, #KEYS do
    local low = -1
    for _, value in ipairs(redis.call('HVALS', KEYS[at])) do
        local number = tonumber(value)
        if number and (low < 0 or number < low) then low = number end
    end
    out[at + 1] = low
end
return out
"""


def stale_tables(
    bounds: Mapping[str, float], now_ms: int, watermarks: Sequence[int]
) -> frozenset[str]:
    """The tables of ``bounds`` (in order, with ``watermarks``: -1 for none) whose
    watermark is missing or older than their bound at ``now_ms``.  Pure."""
    return frozenset(
        table
        for (table, bound), mark in zip(bounds.items(), watermarks, strict=True)
        if mark < 0 or now_ms - mark > bound * 1000
    )


def interval(bounds: Mapping[str, float]) -> float:
    """How often the watch asks: a quarter of the tightest bound, within [50, 250] ms."""
    return min(0.25, max(0.05, min(bounds.values()) / 4))


class WatermarkWatch:
    """Tells ``host`` which bounded tables to bypass; see the module docstring."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self.bounds = dict(link.tier.stream_bounds)
        self.bypassed: frozenset[str] = frozenset()
        self.periods = 0

    async def run(self, host: TierHost) -> None:
        link = self._link
        keys = [link.keys.watermarks(table) for table in self.bounds]
        script = link.commands.register_script(WATERMARKS)
        every = interval(self.bounds)
        while True:
            try:
                async with asyncio.timeout(link.tier.liveness):
                    reply: Any = await script(keys=keys)
                stale = stale_tables(self.bounds, int(reply[0]), [int(v) for v in reply[1:]])
            except (RedisError, OSError, TimeoutError, EOFError) as error:
                # No answer: this process can vouch for none of the tables.
                _LOG.debug("aiodax: stream watermarks unread (%s)", error)
                stale = frozenset(self.bounds)
            self._tell(host, stale)
            await asyncio.sleep(every)

    def _tell(self, host: TierHost, stale: frozenset[str]) -> None:
        for table in sorted(stale - self.bypassed):
            _LOG.warning(
                "aiodax: %s: the stream watermark is older than its bound: bypassing", table
            )
            self.periods += 1
            host.bypass(table, True)
        for table in sorted(self.bypassed - stale):
            host.bypass(table, False)
        self.bypassed = stale

    def stats(self) -> dict[str, Any]:
        return {"StreamBypassedTables": sorted(self.bypassed), "StreamBypassPeriods": self.periods}

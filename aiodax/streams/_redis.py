"""``StreamsRedis``: what the invalidator keeps and sends in Redis, in the namespace of
the caches it serves (``aiodax._tiers.redis.keys``: one hash slot).

==========================  =====================================================
``s:c:<table>``             checkpoints: a field per shard, the sequence number of
                            the last record whose invalidation went out (``END``:
                            the shard was read to its end)
``s:l:<table>:<shard>``     the shard's lease: the reading invalidator's token, PX
``s:w:<table>``             watermarks: a field per shard being read, the Redis
                            time (ms) up to which every change of it was
                            invalidated (what a cache's ``stream_bounds`` reads)
==========================  =====================================================

Invalidations go onto the caches' bus with the bus's own script (``PUBLISH``:
sequence number, generations of the shared copies, the message), under an origin
of the invalidator's own, so every cache applies them.  Unlike a cache's bus,
``publish`` raises when Redis does not take them: a checkpoint is only written
after its records' invalidations are in the stream (at least once).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._tiers import Invalidation
from .._tiers.redis.bus import GENERATION_LIFETIME_MS
from .._tiers.redis.codec import encode
from .._tiers.redis.config import RedisTier
from .._tiers.redis.keys import Keys, key_digest
from .._tiers.redis.scripts import PUBLISH
from ._common import Counters

#: The checkpoint of a shard read to its end.
END: Final = "END"

#: Take the lease if free, or renew it if ours.  KEYS: lease.  ARGV: token, ms.
CLAIM: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

#: Move a shard on, if its lease is still ours: renew it, write the checkpoint and
#: the watermark; or, for a finished shard, mark it ``END`` and let the lease go.
#: The watermark is in Redis's clock, so that the caches compare it with the same
#: clock: the invalidator passes how long ago (ms) the read it covers started.
#: KEYS: lease, checkpoints, watermarks.  ARGV: token, lease ms, shard, sequence
#: number ("" none), the watermark's age in ms ("" none), "1" if finished.  Returns 1, or 0 when
#: the lease is another's (nothing written).
ADVANCE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[6] == '1' then
    redis.call('HSET', KEYS[2], ARGV[3], 'END')
    redis.call('HDEL', KEYS[3], ARGV[3])
    redis.call('DEL', KEYS[1])
    return 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
if ARGV[5] ~= '' then
    local clock = redis.call('TIME')
    local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
    redis.call('HSET', KEYS[3], ARGV[3], now - tonumber(ARGV[5]))
end
return 1
"""

#: Let a lease go if it is ours.  KEYS: lease.  ARGV: token.
RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class StreamsRedis:
    """The invalidator's Redis: publish, leases, checkpoints, watermarks."""

    def __init__(self, tier: RedisTier, *, lease_time: float, counters: Counters) -> None:
        self.tier = tier
        self._counters = counters  # counts the commands sent (a script is one)
        self.keys = Keys(tier.namespace)
        #: this invalidator's name on the bus and in its leases
        self.token = "streams-" + secrets.token_hex(8)
        self._lease_ms = max(1, int(lease_time * 1000))
        # No retries inside redis-py: ``redis_step`` retries, with its backoff, and
        # tells a cancellation from a failure; redis-py's own retry loop (seconds of
        # backoff in redis-py 6 and later) could hold a cancelled reader past the
        # invalidator's shutdown bound.
        self._client: Any = Redis.from_url(
            tier.url, socket_timeout=5.0, socket_connect_timeout=5.0, retry=Retry(NoBackoff(), 0)
        )
        self._publish = self._client.register_script(PUBLISH)
        self._claim = self._client.register_script(CLAIM)
        self._advance = self._client.register_script(ADVANCE)
        self._release = self._client.register_script(RELEASE)

    async def publish(self, invalidations: Iterable[Invalidation]) -> None:
        """Append ``invalidations`` to the caches' bus; raises if Redis did not take them."""
        keys = self.keys
        args: list[Any] = [keys.prefix, self.tier.stream_length, GENERATION_LIFETIME_MS]
        for invalidation in invalidations:
            key = invalidation.key
            args.extend(
                (
                    invalidation.table or "",
                    "" if key is None else key_digest(key),
                    encode(self.token, invalidation),
                )
            )
        if len(args) == 3:
            return
        self._counters.redis_commands += 1
        await self._publish(keys=[keys.bus, keys.seq, keys.everything], args=args)

    def _lease(self, table: str, shard: str) -> str:
        return f"{self.keys.prefix}s:l:{table}:{shard}"

    def _checkpoints(self, table: str) -> str:
        return f"{self.keys.prefix}s:c:{table}"

    async def claim(self, table: str, shard: str) -> bool:
        """Whether this invalidator holds ``shard``'s lease now (taken or renewed)."""
        self._counters.redis_commands += 1
        held = await self._claim(
            keys=[self._lease(table, shard)], args=[self.token, self._lease_ms]
        )
        return bool(held)

    async def advance(
        self,
        table: str,
        shard: str,
        *,
        sequence: str | None = None,
        watermark_age_ms: int | None = None,
        finished: bool = False,
    ) -> bool:
        """Renew the lease and write the checkpoint and the watermark (every change
        up to ``watermark_age_ms`` ago is invalidated), or mark the shard finished;
        ``False``, writing nothing, if the lease is no longer ours."""
        self._counters.redis_commands += 1
        done = await self._advance(
            keys=[
                self._lease(table, shard),
                self._checkpoints(table),
                self.keys.watermarks(table),
            ],
            args=[
                self.token,
                self._lease_ms,
                shard,
                sequence or "",
                "" if watermark_age_ms is None else watermark_age_ms,
                "1" if finished else "",
            ],
        )
        return bool(done)

    async def release(self, table: str, shard: str) -> None:
        self._counters.redis_commands += 1
        await self._release(keys=[self._lease(table, shard)], args=[self.token])

    async def checkpoints(self, table: str) -> dict[str, str]:
        """Every shard's checkpoint of ``table`` (``END``: finished)."""
        self._counters.redis_commands += 1
        raw: Mapping[bytes, bytes] = await self._client.hgetall(self._checkpoints(table))
        return {shard.decode(): number.decode() for shard, number in raw.items()}

    async def forget_watermarks(self, table: str, keep: Iterable[str]) -> None:
        """Drop the watermarks of ``table``'s shards other than ``keep``: a shard no
        longer read (finished, trimmed) must not hold the table's watermark back."""
        self._counters.redis_commands += 1
        key = self.keys.watermarks(table)
        fields = {field.decode() for field in await self._client.hkeys(key)}
        stale = fields - set(keep)
        if stale:
            self._counters.redis_commands += 1
            await self._client.hdel(key, *sorted(stale))

    async def aclose(self) -> None:
        await self._client.aclose()

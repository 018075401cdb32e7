"""The Redis tier: an invalidation bus between the processes of a namespace, a shared
cache of misses with leases, and degraded service when Redis fails.

=============  ==============================================================
``config``     ``RedisTier``, the options (importable without the extra)
``keys``       every Redis key of a namespace, and the digests in them
``codec``      the bus's messages, bounded and validated (msgpack, never pickle)
``envelope``   the shared copies, bounded and validated (msgpack, never pickle)
``scripts``    the Lua that makes each step one atomic round trip
``bus``        ``StreamBus``: the bus over a Redis Stream, outbox, health
``misses``     one miss's keys and lease, its shared copy, batch answers (pure)
``commands``   the shared cache's scripts, bounded by the timeout, a breaker
``wakeups``    waiters for another process's lease, woken over pub/sub
``l2``         ``RedisL2``: the shared cache and cross-process single-flight
=============  ==============================================================
"""

from __future__ import annotations

from ..._errors import MissingExtraError
from .. import InvalidationBus, SharedTier
from .config import RedisTier

__all__ = ["RedisTier", "build"]


def build(tier: RedisTier) -> tuple[InvalidationBus, SharedTier | None]:
    """The bus and (with ``shared_l2``) the shared miss path of ``tier``."""
    try:
        import msgpack  # noqa: F401
        import redis.asyncio  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(
            "Cache(redis=...) needs the Redis client: pip install 'aiodax[redis]'"
        ) from error
    from .bus import StreamBus
    from .l2 import RedisL2
    from .link import RedisLink

    link = RedisLink(tier)
    bus = StreamBus(link)
    return bus, RedisL2(link, bus) if tier.shared_l2 else None

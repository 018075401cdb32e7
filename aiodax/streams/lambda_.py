"""The Lambda adapter: a handler for a function subscribed to tables' DynamoDB Streams
(an event source mapping), which invalidates every record's item in every cache of
a namespace, for teams that already consume their streams in Lambda.

    # handler: aiodax.streams.lambda_.handler
    # environment: AIODAX_REDIS_URL=redis://...  AIODAX_NAMESPACE=orders-prod

or, configured in code::

    from aiodax.streams.lambda_ import make_handler
    handler = make_handler(redis="redis://...", namespace="orders-prod")

Contract: the event's records' invalidations go onto the bus in one script (keys
only, never an image); a Redis that does not take them raises, so that Lambda
retries the batch (its own checkpoint is the event source mapping's: at least
once).  The table is read from each record's ``eventSourceARN``; a record whose
keys cannot be read drops its whole table.  Lambda runs one event at a time per
execution environment: one event loop and one Redis connection serve every
invocation of a warm environment.  The Lambda path sets no watermark
(``semantics.md``: the bound is the TTL, or the invalidator's).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, Final

from .._errors import ConfigurationError
from .._rules.streams import record_key, stream_table
from .._tiers import Invalidation
from .._tiers.redis.config import RedisTier
from ._common import Counters
from ._redis import StreamsRedis

#: The environment the default ``handler`` is configured by.
REDIS_ENV: Final = "AIODAX_REDIS_URL"
NAMESPACE_ENV: Final = "AIODAX_NAMESPACE"


def event_invalidations(event: Mapping[str, Any]) -> list[Invalidation]:
    """The invalidations a Lambda DynamoDB Streams ``event`` calls for, in order."""
    invalidations: list[Invalidation] = []
    for record in event.get("Records") or ():
        table = stream_table(record.get("eventSourceARN"))
        if table is None:
            raise ValueError(f"not a DynamoDB Streams record: {record.get('eventSourceARN')!r}")
        invalidations.append(Invalidation(table, record_key(record)))
    return invalidations


class LambdaInvalidator:
    """Publishes the invalidations of Lambda events; one per execution environment."""

    def __init__(self, redis: str | RedisTier, namespace: str = "default") -> None:
        self.tier = redis if isinstance(redis, RedisTier) else RedisTier(redis, namespace=namespace)
        self.counters = Counters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._redis: StreamsRedis | None = None

    async def invalidate(self, event: Mapping[str, Any]) -> int:
        """Publish ``event``'s invalidations; how many records it had."""
        invalidations = event_invalidations(event)
        if self._redis is None:
            self._redis = StreamsRedis(self.tier, lease_time=1.0, counters=self.counters)
        await self._redis.publish(invalidations)
        self.counters.records += len(invalidations)
        self.counters.batches += 1
        return len(invalidations)

    def __call__(self, event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
        """The Lambda handler: invalidate, or raise so that Lambda retries the batch."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.invalidate(event))
        return {"batchItemFailures": []}

    def close(self) -> None:
        """Close the connection and the loop (tests; Lambda just freezes the process)."""
        if self._loop is None:
            return
        if self._redis is not None:
            self._loop.run_until_complete(self._redis.aclose())
            self._redis = None
        self._loop.close()
        self._loop = None


def make_handler(redis: str | RedisTier, namespace: str = "default") -> LambdaInvalidator:
    """A Lambda handler publishing into ``namespace`` of ``redis``."""
    return LambdaInvalidator(redis, namespace)


_DEFAULT: LambdaInvalidator | None = None


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """The handler configured by ``AIODAX_REDIS_URL`` and ``AIODAX_NAMESPACE``."""
    global _DEFAULT
    if _DEFAULT is None:
        url = os.environ.get(REDIS_ENV)
        if not url:
            raise ConfigurationError(f"set {REDIS_ENV} (and {NAMESPACE_ENV}) for aiodax's handler")
        _DEFAULT = LambdaInvalidator(url, os.environ.get(NAMESPACE_ENV, "default"))
    return _DEFAULT(event, context)


__all__ = ["LambdaInvalidator", "event_invalidations", "handler", "make_handler"]

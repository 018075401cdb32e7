"""``Cache``: the object an application creates once and wraps its clients with."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from random import random as _uniform
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, overload

from ._config import DEFAULT_FENCE, DEFAULT_MAX_BYTES, DEFAULT_TTL, CacheConfig, Clock, TableConfig
from ._engine import Engine
from ._errors import ConfigurationError, ConfigurationTypeError
from ._facades import CachedClient, CachedResource, wrap
from ._observe import Observer
from ._rules.policy import RetryPolicy
from ._rules.wire import canonical_key
from ._tiers import InvalidationBus, SharedTier
from ._tiers.redis import RedisTier, build

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.service_resource import DynamoDBServiceResource

    from ._backend import Backend


class Cache:
    """An item cache and a query cache in front of DynamoDB, for one process.

    :param item_ttl: seconds a GetItem/BatchGetItem result stays fresh, counted from
        when it entered the cache (reads don't extend it). ``None`` = never expires,
        ``0`` = items are not cached.
    :param negative_ttl: the same for a missing item; ``None`` = same as ``item_ttl``.
    :param query_ttl: the same for a Query or Scan page.
    :param max_bytes: memory bound; least recently used entries go first.
    :param query_invalidation: which cached pages a write drops: ``"partition"``
        (pages of the item's partition, and every scan and index query of the
        table), ``"table"`` (every page of the table) or ``"none"`` (DAX's
        behaviour: pages live until their TTL).
    :param tables: per-table ``TableConfig`` overrides of the TTLs.
    :param clock: seconds on a monotonic clock; tests inject a fake one.
    :param retry: how BatchGetItem's ``UnprocessedKeys`` are retried before they are
        returned to the caller (``RetryPolicy()``: 5 retries, full jitter).
    :param bus: an ``InvalidationBus`` telling other processes what this one drops,
        and dropping what they tell; none by default (one process).
    :param shared_tier: a ``SharedTier`` every miss goes through on its way to
        DynamoDB; none by default.  Both start when the cache is entered
        (``async with``) and stop when it closes.
    :param redis: the Redis tier between this process and the others of
        ``namespace``: a URL (``redis://``, ``rediss://``) or an ``aiodax.RedisTier``
        with its options.  Writes and drops here reach every other process, which
        drops the same entries; misses are shared through Redis, one process
        reading each from DynamoDB; a Redis that fails fails no read or write
        (docs/operations.md).  Needs the extra: ``pip install 'aiodax[redis]'``.
        Takes the place of ``bus`` and ``shared_tier``.
    :param namespace: with a ``redis`` URL, the namespace of the processes that
        share one cache (``RedisTier.namespace``).
    :param fill_consistency: how misses read DynamoDB.  ``"fenced"`` (default):
        eventually consistent, except that for ``fence`` seconds after a drop of an
        item, a partition's pages or a table (a write, ``invalidate*``, a drop from
        another process) its fills read with ``ConsistentRead=True``, so that a fill
        never caches a lagging replica's value from before the write; a GSI page
        (which DynamoDB cannot read consistently) filled in a fence lives only to
        its end.  ``"strong"``: every fill consistent; ``"eventual"``: none (DAX's
        behaviour).  A consistent read costs twice the read capacity.
    :param fence: seconds a drop fences fills (``0``: no fence).
    :param refresh_ahead: XFetch's ``β`` (a number > 0, ``1.0`` typical), or ``None``
        (default: off).  A hit shortly before its entry's TTL ends is served and
        starts one background reload, so a hot key's callers never wait at the
        TTL's end; the window is ``β`` × the last load's duration × ln(1000).
    :param random: refresh-ahead's random draws: a callable taking no argument and
        returning a float uniform in [0, 1) (default ``random.random``).  It is
        called only for a hit inside an entry's refresh window; tests pass a
        constant (``lambda: 0.0``: every such hit refreshes) or a seeded
        ``random.Random(seed).random`` to make refresh-ahead deterministic.
    :param stale_while_revalidate: seconds past its TTL an entry is still served
        while one background reload runs (``0``, default: off).
    :param stale_if_error: seconds past its TTL an entry is served when its reload
        fails with throttling, a 5xx, a timeout or a lost connection (``0``,
        default: off); counted as ``StaleServed``.  A write through the cache
        drops or replaces the entry, so none of these serves a value older than
        an acknowledged write.
    """

    __slots__ = ("_engine", "config")

    def __init__(
        self,
        *,
        item_ttl: float | None = DEFAULT_TTL,
        negative_ttl: float | None = None,
        query_ttl: float | None = DEFAULT_TTL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        query_invalidation: str = "partition",
        tables: Mapping[str, TableConfig] | None = None,
        clock: Clock = time.monotonic,
        retry: RetryPolicy | None = None,
        bus: InvalidationBus | None = None,
        shared_tier: SharedTier | None = None,
        fill_consistency: str = "fenced",
        fence: float = DEFAULT_FENCE,
        refresh_ahead: float | None = None,
        random: Callable[[], float] = _uniform,
        stale_while_revalidate: float = 0.0,
        stale_if_error: float = 0.0,
        redis: str | RedisTier | None = None,
        namespace: str | None = None,
    ) -> None:
        self.config = CacheConfig.build(
            item_ttl=item_ttl,
            negative_ttl=negative_ttl,
            query_ttl=query_ttl,
            max_bytes=max_bytes,
            query_invalidation=query_invalidation,
            tables=tables,
            clock=clock,
            draw=random,
            fill_consistency=fill_consistency,
            fence=fence,
            refresh_ahead=refresh_ahead,
            stale_while_revalidate=stale_while_revalidate,
            stale_if_error=stale_if_error,
        )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationTypeError("retry must be an aiodax.RetryPolicy")
        for name, seam, protocol in (
            ("bus", bus, InvalidationBus),
            ("shared_tier", shared_tier, SharedTier),
        ):
            if seam is not None and not isinstance(seam, protocol):
                raise ConfigurationTypeError(f"{name} must implement aiodax.{protocol.__name__}")
        if redis is not None:
            bus, shared_tier = redis_seams(redis, namespace, bus, shared_tier)
        elif namespace is not None:
            raise ConfigurationError("namespace is the Redis tier's: pass it with redis=")
        self._engine = Engine(self.config, retry=retry, bus=bus, tier=shared_tier)

    def __repr__(self) -> str:
        return f"<aiodax.Cache {self.config!r}>"

    @overload
    def wrap(self, client: DynamoDBServiceResource) -> CachedResource: ...

    @overload
    def wrap(self, client: Backend) -> CachedClient: ...

    def wrap(self, client: Any) -> CachedClient | CachedResource:
        """A cached view of a DynamoDB client or service resource, with the same API.

        An aiobotocore client (``session.client("dynamodb")``) gives a
        ``CachedClient``; an aioboto3 service resource (``session.resource("dynamodb")``)
        gives a ``CachedResource``, whose ``await Table(name)`` gives a
        ``CachedTable``.  Both flavours of one ``Cache`` share its entries: a write
        through either is seen by reads through the other.
        """
        return wrap(self, self._engine, client)

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` of every request this cache sends to DynamoDB and every
        coalesced wait (``aiodax.Observer``), never of a hit; ``aiodax.contrib``'s
        Prometheus and OpenTelemetry integrations are observers."""
        self._engine.add_observer(observer)

    def remove_observer(self, observer: Observer) -> None:
        """Stop telling ``observer``; nothing happens if it was not added."""
        self._engine.remove_observer(observer)

    def stats(self) -> dict[str, Any]:
        """Counters named like DAX's CloudWatch metrics, plus aiodax's own: the totals,
        and each table's read counters under ``"Tables"`` (docs/operations.md)."""
        return self._engine.stats()

    def invalidate(self, table: str, key: Mapping[str, Any]) -> None:
        """Forget one item (wire-format ``key``) and the query pages a write to it would.

        ``table`` is a name or an ARN; the item is forgotten whichever client
        (region, account, endpoint) cached it, as a write would drop it.
        """
        _check_table(table)
        canonical = canonical_key(dict(key) if isinstance(key, Mapping) else key)
        if canonical is None:
            raise ValueError(f"not a DynamoDB wire-format key: {key!r}")
        self._engine.invalidator.drop_item(table, canonical)

    def invalidate_table(self, table: str) -> None:
        """Forget every item and page of ``table`` (a name or an ARN), from every client."""
        _check_table(table)
        self._engine.invalidator.drop_table(table)

    def clear(self) -> None:
        """Forget everything."""
        self._engine.invalidator.drop_all()

    @property
    def closed(self) -> bool:
        return self._engine.closed

    async def aclose(self) -> None:
        """Cancel loads in flight, wait for them, and drop every entry."""
        await self._engine.aclose()

    async def __aenter__(self) -> Self:
        await self._engine.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _check_table(table: object) -> None:
    if not isinstance(table, str) or not table:
        raise TypeError(f"a table is named by a non-empty string, not {table!r}")


def redis_seams(
    redis: object,
    namespace: object,
    bus: InvalidationBus | None,
    shared_tier: SharedTier | None,
) -> tuple[InvalidationBus, SharedTier | None]:
    """The bus and shared tier ``Cache(redis=..., namespace=...)`` asks for."""
    if bus is not None or shared_tier is not None:
        raise ConfigurationError("redis= takes the place of bus= and shared_tier=; pass one")
    if isinstance(redis, str):
        tier = RedisTier(redis) if namespace is None else RedisTier(redis, namespace=namespace)  # type: ignore[arg-type]
    elif isinstance(redis, RedisTier):
        if namespace is not None and namespace != redis.namespace:
            raise ConfigurationError(
                "namespace is set in the RedisTier given as redis=; do not pass another"
            )
        tier = redis
    else:
        raise ConfigurationTypeError(
            f"redis must be a URL or an aiodax.RedisTier, not {type(redis).__name__}"
        )
    return build(tier)

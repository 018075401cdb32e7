"""``Cache``: the object an application creates once and wraps its clients with."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, overload

from ._backend import is_dynamodb_backend
from ._client import CachedClient
from ._config import DEFAULT_MAX_BYTES, DEFAULT_TTL, CacheConfig, Clock, TableConfig
from ._engine import Engine
from ._errors import WrapError
from ._resource import (
    CachedResource,
    CachedTable,
    is_dynamodb_resource,
    is_dynamodb_table,
    speaks_python,
)

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
    ) -> None:
        self.config = CacheConfig.build(
            item_ttl=item_ttl,
            negative_ttl=negative_ttl,
            query_ttl=query_ttl,
            max_bytes=max_bytes,
            query_invalidation=query_invalidation,
            tables=tables,
            clock=clock,
        )
        self._engine = Engine(self.config)

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
        if isinstance(client, CachedClient | CachedResource | CachedTable):
            raise WrapError(f"this {type(client).__name__} is already cached; wrap what it wraps")
        if is_dynamodb_backend(client):
            if speaks_python(client):
                raise WrapError(
                    "this client belongs to a DynamoDB resource and speaks Python values "
                    "(resource.meta.client): wrap the resource itself, or a plain "
                    "session.client('dynamodb')"
                )
            return CachedClient(self, client)
        if is_dynamodb_resource(client):
            return CachedResource(self, client)
        if is_dynamodb_table(client):
            raise WrapError(
                "Cache.wrap expects the DynamoDB service resource, not one of its tables: "
                "wrap session.resource('dynamodb') and await its Table(name)"
            )
        raise WrapError(
            "Cache.wrap expects an aiobotocore DynamoDB client (session.client('dynamodb')) "
            f"or service resource (session.resource('dynamodb')), not {type(client).__name__}"
        )

    def stats(self) -> dict[str, Any]:
        """Counters named like DAX's CloudWatch metrics, plus aiodax's own."""
        engine = self._engine
        return engine.stats.snapshot(
            evicted_count=engine.store.evicted_count,
            evicted_size=engine.store.evicted_size,
            current_size=engine.store.current_size,
            current_entries=len(engine.store),
            in_flight=len(engine._item_flights) + len(engine._page_flights),
        )

    def invalidate(self, table: str, key: Mapping[str, Any]) -> None:
        """Forget one item (wire-format ``key``) and the query pages a write to it would."""
        self._engine.invalidate(table, key)

    def invalidate_table(self, table: str) -> None:
        """Forget every item and page of ``table``."""
        self._engine.invalidate_table(table)

    def clear(self) -> None:
        """Forget everything."""
        self._engine.clear()

    @property
    def closed(self) -> bool:
        return self._engine.closed

    async def aclose(self) -> None:
        """Cancel loads in flight, wait for them, and drop every entry."""
        await self._engine.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

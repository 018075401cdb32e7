"""The cached low-level client: the aiobotocore DynamoDB client's API, cached.

Reads go through the engine's caches, writes through its write-through path,
table changes drop what is known of the table, and every other attribute (control
plane, waiters, ``meta``…) is the wrapped client's own.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from botocore.paginate import Paginator

from .._backend import Backend
from .._engine import Engine

if TYPE_CHECKING:
    from .._cache import Cache

#: Operations whose every page the cached paginator serves through the cache.
_CACHED_PAGINATORS = frozenset({"query", "scan"})


class CachedClient:
    """A DynamoDB client whose reads are cached by a ``Cache`` (``Cache.wrap(client)``)."""

    __slots__ = ("_backend", "_cache", "_engine", "_pages", "_writes", "batch_get_item", "get_item")

    #: ``await client.get_item(TableName=..., Key=...)``: served from the item
    #: cache when fresh, else from DynamoDB (coalesced with identical misses).
    get_item: Callable[..., Coroutine[Any, Any, Any]]
    #: ``await client.batch_get_item(RequestItems=...)``: per key cached, as GetItem.
    batch_get_item: Callable[..., Coroutine[Any, Any, Any]]

    def __init__(self, cache: Cache, engine: Engine, backend: Backend) -> None:
        self._cache = cache
        self._engine = engine
        self._pages = engine.pages
        self._writes = engine.writes
        self._backend = backend
        # Bound once: the hit path then runs on local names only.
        self.get_item = engine.bind_client_get_item(backend)
        self.batch_get_item = engine.bind_client_batch_get_item(backend)

    @property
    def cache(self) -> Cache:
        return self._cache

    @property
    def wrapped(self) -> Backend:
        """The client underneath: its calls bypass the cache entirely."""
        return self._backend

    def __repr__(self) -> str:
        return f"<aiodax.CachedClient wrapping {self._backend!r}>"

    # Reads -------------------------------------------------------------------

    async def query(self, **request: Any) -> Any:
        return await self._pages.read(self._backend, "query", request)

    async def scan(self, **request: Any) -> Any:
        return await self._pages.read(self._backend, "scan", request)

    async def transact_get_items(self, **request: Any) -> Any:
        """Never cached (DynamoDB reads the items as one transaction): sent as it
        comes, its answer marked ``"CacheStatus": "bypass"``."""
        return await self._engine.shared.pass_through(
            self._backend, "transact_get_items", request, "bypass"
        )

    # Writes ------------------------------------------------------------------

    async def put_item(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "put_item", request)

    async def update_item(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "update_item", request)

    async def delete_item(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "delete_item", request)

    async def batch_write_item(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "batch_write_item", request)

    async def transact_write_items(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "transact_write_items", request)

    # PartiQL: never cached; a write drops the tables it names ------------------

    async def execute_statement(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "execute_statement", request)

    async def batch_execute_statement(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "batch_execute_statement", request)

    async def execute_transaction(self, **request: Any) -> Any:
        return await self._writes.write(self._backend, "execute_transaction", request)

    # Table changes -------------------------------------------------------------

    async def create_table(self, **request: Any) -> Any:
        return await self._engine.change_table(self._backend, "create_table", request)

    async def delete_table(self, **request: Any) -> Any:
        return await self._engine.change_table(self._backend, "delete_table", request)

    async def update_table(self, **request: Any) -> Any:
        return await self._engine.change_table(self._backend, "update_table", request)

    # Everything else -------------------------------------------------------------

    def get_paginator(self, operation_name: str) -> Paginator[Any]:
        paginator: Paginator[Any] = self._backend.get_paginator(operation_name)  # type: ignore[call-overload]
        if operation_name in _CACHED_PAGINATORS:
            # botocore's paginator calls the method it was built with for every
            # page; pointing it at the cached method caches each page like a call.
            paginator._method = getattr(self, operation_name)  # type: ignore[attr-defined]
        return paginator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

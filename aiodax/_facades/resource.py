"""The cached resource: aioboto3's DynamoDB service resource and ``Table``, cached.

Most applications use ``session.resource("dynamodb")`` and ``await
resource.Table(name)`` with Python values and ``boto3.dynamodb.conditions``.  The
facades here take the same calls and give the same answers, through the engine the
client flavour uses: one ``Cache``, one set of entries, whichever flavour wrote them.

A resource's client converts Python ⇄ wire in botocore event handlers on every
call.  The engine needs wire format, so the facade converts once itself (``python.py``)
and sends the wire request through a twin of that client without the handlers: the
same connection pool, credentials and retry state, closed with the resource.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from aioboto3.dynamodb.table import BatchWriter

from .._backend import wire_client
from .._engine import Engine, View
from .python import Converter, python_key, python_view

if TYPE_CHECKING:
    from .._cache import Cache

#: Read operations and the form their cached answers are served in: items one by
#: one, or Query and Scan pages whole (made by the ``Converter``).
_ITEM_VIEWS = ("get_item", "batch_get_item")
_PAGE_VIEWS = ("query", "scan")


class CachedResource:
    """A DynamoDB service resource whose reads are cached (``Cache.wrap(resource)``).

    ``await Table(name)`` gives a ``CachedTable``; ``batch_get_item`` and
    ``batch_write_item`` are cached and written through like the client's;
    ``create_table`` returns a ``CachedTable``.  Everything else (``tables``,
    ``meta``, ``get_available_subresources``…) is the wrapped resource's own:
    tables listed by ``tables`` are plain aioboto3 tables, outside the cache.
    """

    __slots__ = (
        "_backend",
        "_cache",
        "_convert",
        "_engine",
        "_resource",
        "_views",
        "batch_get_item",
    )

    #: ``await resource.batch_get_item(RequestItems=...)``: per key cached; a batch
    #: of fresh hits is served from the items' Python views.
    batch_get_item: Callable[..., Coroutine[Any, Any, Any]]

    def __init__(self, cache: Cache, engine: Engine, resource: Any) -> None:
        self._cache = cache
        self._engine = engine
        self._resource = resource
        client = resource.meta.client
        self._backend = wire_client(client)
        self._convert = Converter(client.meta.service_model, client.meta.method_to_api_mapping)
        #: how the engine serves these operations' cached answers in Python values
        self._views: dict[str, View] = dict.fromkeys(_ITEM_VIEWS, python_view)
        for operation in _PAGE_VIEWS:
            self._views[operation] = self._convert.response_view(operation)
        self.batch_get_item = engine.bind_resource_batch_get_item(
            self._backend, key_of=python_key, view=python_view, general=self._batch_get_item
        )

    @property
    def cache(self) -> Cache:
        return self._cache

    @property
    def wrapped(self) -> Any:
        """The resource underneath: its calls bypass the cache entirely."""
        return self._resource

    def __repr__(self) -> str:
        return f"<aiodax.CachedResource wrapping {self._resource!r}>"

    async def _call(self, operation: str, params: dict[str, Any], bypass: bool = False) -> Any:
        """``operation`` through the engine, in Python values both ways.

        A read is answered in Python values by the engine itself, from a conversion
        it keeps with the cached answer (its view), so a hit deserializes nothing.
        ``bypass``: a read is sent to DynamoDB as it came, its answer marked
        ``"bypass"``; a write goes through the cache all the same.
        """
        convert = self._convert
        engine, backend = self._engine, self._backend
        request = convert.request(operation, params)
        view = self._views.get(operation)
        if bypass and view is not None:
            answer = await engine.shared.pass_through(backend, operation, request, "bypass")
            return convert.response(operation, answer)
        if operation == "get_item":
            return await engine.items.get_item(backend, request, view)
        if operation == "batch_get_item":
            return await engine.batch.batch_get_item(backend, request, view)
        if view is not None:
            return await engine.pages.read(backend, operation, request, view)
        return convert.response(operation, await engine.writes.write(backend, operation, request))

    async def Table(self, *args: Any, **kwargs: Any) -> CachedTable:
        """``await resource.Table(name)``, as in aioboto3, cached."""
        return CachedTable(self, await self._resource.Table(*args, **kwargs))

    async def _batch_get_item(self, kwargs: dict[str, Any]) -> Any:
        return await self._call("batch_get_item", kwargs)

    async def batch_write_item(self, **kwargs: Any) -> Any:
        return await self._call("batch_write_item", kwargs)

    async def create_table(self, **kwargs: Any) -> CachedTable:
        """aioboto3's ``create_table``; nothing cached of an older table by that name holds."""
        try:
            table = await self._resource.create_table(**kwargs)
        finally:
            self._engine.table_changed(kwargs.get("TableName"))
        return CachedTable(self, table)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)


class CachedTable:
    """A DynamoDB ``Table`` resource whose reads are cached.

    ``get_item``, ``query`` and ``scan`` are served from the cache when fresh,
    ``put_item``, ``update_item``, ``delete_item`` and ``batch_writer()`` write
    through, and attributes (``key_schema``, ``item_count``…), ``load()`` and
    waiters are the wrapped table's own.  Answers are aioboto3's, in Python values;
    every item handed out is the caller's to change.
    """

    __slots__ = (
        "_bypass",
        "_engine",
        "_meta",
        "_name",
        "_on_status",
        "_resource",
        "_table",
        "get_item",
    )

    #: ``await table.get_item(Key=...)``: a fresh cached item is served from its
    #: Python view, converted once per entry; anything else goes the general way.
    get_item: Callable[..., Coroutine[Any, Any, Any]]

    def __init__(
        self,
        resource: CachedResource,
        table: Any,
        *,
        bypass: bool = False,
        on_status: Callable[[str], object] | None = None,
    ) -> None:
        self._resource = resource
        self._engine = resource._engine  # same module: the table is part of its resource
        self._table = table
        self._name: str = table.name
        self._meta = table.meta
        self._bypass = bypass
        self._on_status = on_status
        self.get_item = self._get_item_kwargs if bypass else self._bind_get_item()
        if on_status is not None:
            self.get_item = _reporting(self.get_item, on_status)

    @property
    def cache(self) -> Cache:
        return self._resource.cache

    @property
    def wrapped(self) -> Any:
        """The aioboto3 table underneath: its calls bypass the cache entirely."""
        return self._table

    def __repr__(self) -> str:
        return f"<aiodax.CachedTable wrapping {self._table!r}>"

    def for_request(
        self, *, bypass: bool = False, on_status: Callable[[str], object] | None = None
    ) -> CachedTable:
        """This table as one request (of a web app, say) uses it: the same cache and
        connections, with two opt-in differences.

        ``bypass=True``: its reads (``get_item``, ``query``, ``scan``) are sent to
        DynamoDB as they come, neither served from the cache nor stored in it, their
        answers marked ``"CacheStatus": "bypass"``; its writes go through the cache
        as ever, so what they write is seen by every other reader.
        ``on_status``: called with the ``CacheStatus`` of each read's answer
        (``"hit"``, ``"miss"``, ``"coalesced"``, ``"bypass"``).
        """
        return CachedTable(self._resource, self._table, bypass=bypass, on_status=on_status)

    def _bind_get_item(self) -> Callable[..., Coroutine[Any, Any, Any]]:
        """The engine's hit path for this table, serving Python views of its items."""
        return self._engine.bind_table_get_item(
            self._name,
            self._resource._backend,
            key_of=python_key,
            view=python_view,
            meta=self._meta,
            general=self._get_item,
        )

    async def _call(self, operation: str, kwargs: dict[str, Any]) -> Any:
        # As aioboto3's actions: the table's name first, the caller's arguments over
        # it, and the loaded attributes forgotten after a successful call.
        params = {"TableName": self._name, **kwargs}
        response = await self._resource._call(operation, params, self._bypass)
        self._meta.data = None
        return response

    async def _read(self, operation: str, kwargs: dict[str, Any]) -> Any:
        response = await self._call(operation, kwargs)
        if self._on_status is not None:
            self._on_status(cache_status(response))
        return response

    async def _get_item(self, kwargs: dict[str, Any]) -> Any:
        return await self._call("get_item", kwargs)

    async def _get_item_kwargs(self, **kwargs: Any) -> Any:
        return await self._call("get_item", kwargs)

    async def put_item(self, **kwargs: Any) -> Any:
        return await self._call("put_item", kwargs)

    async def update_item(self, **kwargs: Any) -> Any:
        return await self._call("update_item", kwargs)

    async def delete_item(self, **kwargs: Any) -> Any:
        return await self._call("delete_item", kwargs)

    async def query(self, **kwargs: Any) -> Any:
        return await self._read("query", kwargs)

    async def scan(self, **kwargs: Any) -> Any:
        return await self._read("scan", kwargs)

    def batch_writer(
        self,
        overwrite_by_pkeys: list[str] | None = None,
        flush_amount: int = 25,
        on_exit_loop_sleep: int = 0,
    ) -> BatchWriter:
        """aioboto3's own ``BatchWriter`` (same buffering, flushes and retries of
        unprocessed items), sending its batches through the cached resource."""
        return BatchWriter(
            self._name,
            self._resource,  # type: ignore[arg-type]  # it only calls batch_write_item
            flush_amount=flush_amount,
            overwrite_by_pkeys=overwrite_by_pkeys,
            on_exit_loop_sleep=on_exit_loop_sleep,
        )

    async def delete(self, **kwargs: Any) -> Any:
        """aioboto3's ``delete()``; the table's cached items and pages go with it."""
        try:
            return await self._table.delete(**kwargs)
        finally:
            self._engine.table_changed(self._name)

    async def update(self, **kwargs: Any) -> CachedTable:
        """aioboto3's ``update()`` (UpdateTable), whose new ``Table`` is cached too."""
        try:
            table = await self._table.update(**kwargs)
        finally:
            self._engine.table_changed(self._name)
        return CachedTable(self._resource, table)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def cache_status(response: Any) -> str:
    """The ``CacheStatus`` of a read's answer (``"bypass"`` if it carries none)."""
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = metadata.get("CacheStatus") if isinstance(metadata, Mapping) else None
    return status if isinstance(status, str) else "bypass"


def _reporting(
    get_item: Callable[..., Coroutine[Any, Any, Any]], on_status: Callable[[str], object]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``get_item``, telling ``on_status`` each answer's ``CacheStatus``."""

    async def reported(**kwargs: Any) -> Any:
        response = await get_item(**kwargs)
        on_status(cache_status(response))
        return response

    return reported

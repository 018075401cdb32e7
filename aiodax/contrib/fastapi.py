"""aiodax in a FastAPI or Starlette app: one cache for the app's life, typed
dependencies, a per-request bypass, and a header telling how each read was served.

Needs ``pip install 'aiodax[fastapi]'``.  The whole of it::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    import aiodax
    from aiodax.contrib import fastapi as aiodax_fastapi

    app = FastAPI(lifespan=aiodax_fastapi.lifespan(tables=["orders"]))
    app.add_middleware(aiodax_fastapi.CacheStatusHeader)  # opt-in
    Orders = Annotated[
        aiodax.CachedTable, Depends(aiodax_fastapi.table("orders", honour_no_cache=True))
    ]

    @app.get("/orders/{user}/{order}")
    async def get_order(user: str, order: str, orders: Orders):  # Decimals as numbers
        return (await orders.get_item(Key={"pk": user, "sk": order})).get("Item", {})

``lifespan`` opens one ``Cache`` and one cached resource when the server starts
and closes them (cache first) when it stops; they live in Starlette's lifespan
state, so a Starlette app reads them with ``table_for(request, name)``.  An app
with a lifespan of its own enters ``open_resources`` in it and yields
``{"aiodax": resources}`` with its own state.

Each worker process of a server (``uvicorn --workers N``, gunicorn) runs the
lifespan and has its own cache: give the ``Cache`` a Redis tier
(``cache=lambda: aiodax.Cache(redis=..., namespace=...)``) so that a write
through one worker drops what every other cached.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypedDict

from . import require

require("fastapi", "starlette")

from starlette.requests import HTTPConnection, Request  # noqa: E402

from .._cache import Cache  # noqa: E402
from .._errors import ConfigurationError  # noqa: E402
from .._facades import CachedResource, CachedTable  # noqa: E402
from .._sessions import resource  # noqa: E402

if TYPE_CHECKING:
    from aioboto3 import Session

__all__ = [
    "AiodaxResources",
    "AiodaxState",
    "CacheStatusHeader",
    "cache",
    "lifespan",
    "open_resources",
    "resources",
    "table",
    "table_for",
    "wants_no_cache",
]

#: Where ``CacheStatusHeader`` keeps a request's statuses in its ASGI scope.
_STATUSES: Final = "aiodax.cache_statuses"
#: The lifespan state's key of the resources.
STATE_KEY: Final = "aiodax"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class AiodaxResources:
    """What the lifespan opened: the ``cache``, the cached ``dynamodb`` resource, and
    the tables handed out so far."""

    cache: Cache
    dynamodb: CachedResource
    _tables: dict[str, CachedTable] = field(default_factory=dict, repr=False)

    async def table(self, name: str) -> CachedTable:
        """The cached ``Table`` of ``name``, made once for the app's life."""
        found = self._tables.get(name)
        if found is None:
            found = self._tables[name] = await self.dynamodb.Table(name)
        return found


class AiodaxState(TypedDict):
    """Starlette's typed lifespan state as ``lifespan`` yields it."""

    aiodax: AiodaxResources


@contextlib.asynccontextmanager
async def open_resources(
    session: Session | None = None,
    *,
    cache: Cache | None = None,
    tables: Iterable[str] = (),
    **resource_kwargs: Any,
) -> AsyncIterator[AiodaxResources]:
    """``async with open_resources(...) as resources``: ``cache`` (a ``Cache()`` by
    default) started, and a cached ``session.resource("dynamodb", **resource_kwargs)``
    (``endpoint_url``, ``region_name``, ``config``…); ``tables`` are made at once.
    On exit the cache closes, then the resource."""
    if session is None:
        import aioboto3

        session = aioboto3.Session()
    async with (
        cache if cache is not None else Cache() as opened,
        resource(session, cache=opened, **resource_kwargs) as dynamodb,
    ):
        resources = AiodaxResources(opened, dynamodb)
        for name in tables:
            await resources.table(name)
        yield resources


def lifespan(
    session: Session | None = None,
    *,
    cache: Callable[[], Cache] | None = None,
    tables: Iterable[str] = (),
    **resource_kwargs: Any,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[AiodaxState]]:
    """An app's ``lifespan=``: ``open_resources`` for as long as the server runs.

    ``cache`` makes the app's ``Cache`` when the server starts (``Cache()`` by
    default; a Redis tier for several workers), each time it starts.
    """
    names = tuple(tables)

    @contextlib.asynccontextmanager
    async def app_lifespan(app: Any) -> AsyncIterator[AiodaxState]:
        opened = cache() if cache is not None else None
        async with open_resources(
            session, cache=opened, tables=names, **resource_kwargs
        ) as resources:
            # On ``app.state`` too: what runs the lifespan without giving requests its
            # state (``app.router.lifespan_context`` beside httpx's ASGI transport)
            # finds them there.
            app_state = getattr(app, "state", None)
            if app_state is not None:
                setattr(app_state, STATE_KEY, resources)
            try:
                yield {"aiodax": resources}
            finally:
                if app_state is not None:
                    setattr(app_state, STATE_KEY, None)

    return app_lifespan


def resources(connection: HTTPConnection) -> AiodaxResources:
    """The ``AiodaxResources`` of the app serving ``connection`` (a dependency): from
    the lifespan state, else from ``app.state`` (``lifespan`` puts them in both)."""
    found = getattr(connection.state, STATE_KEY, None)
    if found is None and "app" in connection.scope:
        found = getattr(getattr(connection.app, "state", None), STATE_KEY, None)
    if not isinstance(found, AiodaxResources):
        raise ConfigurationError(
            "no aiodax resources in this app's lifespan state: create the app with "
            "lifespan=aiodax.contrib.fastapi.lifespan(...), or yield "
            '{"aiodax": resources} from open_resources(...) in its own lifespan'
        )
    return found


def cache(connection: HTTPConnection) -> Cache:
    """The app's ``Cache`` (a dependency: ``Annotated[aiodax.Cache, Depends(cache)]``)."""
    return resources(connection).cache


def wants_no_cache(connection: HTTPConnection) -> bool:
    """Whether the request asks not to be served from a cache: ``Cache-Control:
    no-cache`` (or ``no-store``, ``max-age=0``), or ``Pragma: no-cache``."""
    directives = {
        part.strip().lower().replace(" ", "")
        for part in connection.headers.get("cache-control", "").split(",")
    }
    if directives & {"no-cache", "no-store", "max-age=0"}:
        return True
    return connection.headers.get("pragma", "").strip().lower() == "no-cache"


async def table_for(
    connection: HTTPConnection, name: str, *, honour_no_cache: bool = False
) -> CachedTable:
    """The cached table ``name`` as this request uses it.

    ``honour_no_cache``: a request that ``wants_no_cache`` reads DynamoDB itself
    (``CachedTable.for_request(bypass=True)``); its writes still go through the
    cache.  Under ``CacheStatusHeader``, every read's ``CacheStatus`` goes into
    the response's header.
    """
    base = await resources(connection).table(name)
    statuses: list[str] | None = connection.scope.get(_STATUSES)
    bypass = honour_no_cache and wants_no_cache(connection)
    if not bypass and statuses is None:
        return base
    return base.for_request(bypass=bypass, on_status=None if statuses is None else statuses.append)


def table(
    name: str, *, honour_no_cache: bool = False
) -> Callable[[Request], Awaitable[CachedTable]]:
    """A dependency giving the cached table ``name`` (``table_for``):
    ``Annotated[aiodax.CachedTable, Depends(table("orders"))]``."""

    async def cached_table(request: Request) -> CachedTable:
        return await table_for(request, name, honour_no_cache=honour_no_cache)

    return cached_table


class CacheStatusHeader:
    """ASGI middleware: a response header (``x-aiodax-cache`` by default) listing the
    ``CacheStatus`` of each read the request made through ``table``/``table_for``,
    in order: ``hit``, ``miss``, ``coalesced`` or ``bypass``, comma-separated.  A
    request that read nothing gets no header.

    ``app.add_middleware(CacheStatusHeader)``, or ``header="x-cache"``.
    """

    def __init__(self, app: ASGIApp, header: str = "x-aiodax-cache") -> None:
        self._app = app
        self._header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        statuses: list[str] = []
        scope[_STATUSES] = statuses

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start" and statuses:
                headers = [
                    *message.get("headers", ()),
                    (self._header, ", ".join(statuses).encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_status)

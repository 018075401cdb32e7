"""``aiodax.contrib.fastapi`` through a real ASGI app (FastAPI), driven by httpx."""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations,
# which name locals of the functions building the apps.

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import aioboto3
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

import aiodax
from aiodax.contrib import fastapi as aiodax_fastapi
from tests import servers
from tests.servers import MakeTable


class Item(BaseModel):
    pk: str | None = None
    n: int | None = None


def make_app(
    client_kwargs: servers.ClientKwargs, table: str, *, header: bool = True, honour: bool = True
) -> FastAPI:
    Items = Annotated[
        aiodax.CachedTable, Depends(aiodax_fastapi.table(table, honour_no_cache=honour))
    ]
    Cache = Annotated[aiodax.Cache, Depends(aiodax_fastapi.cache)]
    app = FastAPI(lifespan=aiodax_fastapi.lifespan(aioboto3.Session(), **client_kwargs))
    if header:
        app.add_middleware(aiodax_fastapi.CacheStatusHeader)

    @app.get("/items/{pk}", response_model_exclude_none=True)
    async def get(pk: str, items: Items) -> Item:
        return Item.model_validate((await items.get_item(Key={"pk": pk})).get("Item", {}))

    @app.get("/twice/{pk}")
    async def twice(pk: str, items: Items) -> dict[str, Any]:
        await items.get_item(Key={"pk": pk})
        page = await items.query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk}
        )
        return {"count": page["Count"]}

    @app.put("/items/{pk}/{n}")
    async def put(pk: str, n: int, items: Items) -> dict[str, Any]:
        await items.put_item(Item={"pk": pk, "n": n})
        return {}

    @app.get("/nothing")
    async def nothing(items: Items) -> dict[str, Any]:
        return {}

    @app.get("/stats")
    async def stats(cache: Cache) -> dict[str, Any]:
        return cache.stats()

    @app.get("/kinds")
    async def kinds(request: Request, items: Items, cache: Cache) -> dict[str, Any]:
        resources = aiodax_fastapi.resources(request)
        return {
            "table": isinstance(items, aiodax.CachedTable),
            "cache": cache is resources.cache,
            "resource": isinstance(resources.dynamodb, aiodax.CachedResource),
        }

    return app


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


@pytest.fixture
async def table(make_table: MakeTable) -> str:
    return await make_table(("pk", "S"))


async def sent(http: httpx.AsyncClient, operation: str) -> int:
    count: int = (await http.get("/stats")).json()["BackendRequests"].get(operation, 0)
    return count


async def test_dependencies_hand_out_the_lifespans_cache_and_tables(
    client_kwargs: servers.ClientKwargs, table: str
) -> None:
    app = make_app(client_kwargs, table)
    async with serving(app) as http:
        assert (await http.get("/kinds")).json() == {"table": True, "cache": True, "resource": True}
        resources = app.state.aiodax
        assert not resources.cache.closed
    # The lifespan closed the cache with the app, and forgot it.
    assert resources.cache.closed
    assert app.state.aiodax is None


async def test_the_header_tells_how_each_read_was_served(
    client_kwargs: servers.ClientKwargs, table: str
) -> None:
    async with serving(make_app(client_kwargs, table)) as http:
        assert (await http.put("/items/a/1")).headers.get("x-aiodax-cache") is None  # no read
        assert (await http.get("/nothing")).headers.get("x-aiodax-cache") is None
        assert (await http.get("/items/a")).headers["x-aiodax-cache"] == "hit"  # the put's
        assert (await http.get("/items/b")).headers["x-aiodax-cache"] == "miss"
        assert (await http.get("/items/b")).headers["x-aiodax-cache"] == "hit"
        # every read of the request, in order
        assert (await http.get("/twice/c")).headers["x-aiodax-cache"] == "miss, miss"
        assert (await http.get("/twice/c")).headers["x-aiodax-cache"] == "hit, hit"


async def test_no_cache_requests_read_dynamodb_and_still_write_through(
    client_kwargs: servers.ClientKwargs, table: str
) -> None:
    no_cache = {"Cache-Control": "no-cache"}
    async with serving(make_app(client_kwargs, table)) as http:
        await http.put("/items/a/1")
        before = await sent(http, "get_item")
        answer = await http.get("/items/a", headers=no_cache)
        assert answer.json() == {"pk": "a", "n": 1}
        assert answer.headers["x-aiodax-cache"] == "bypass"
        assert await sent(http, "get_item") == before + 1
        assert (await http.get("/twice/a", headers=no_cache)).headers[
            "x-aiodax-cache"
        ] == "bypass, bypass"
        # A write of a no-cache request goes through the cache: later readers see it.
        assert (await http.get("/items/a")).headers["x-aiodax-cache"] == "hit"
        await http.put("/items/a/2", headers=no_cache)
        answer = await http.get("/items/a")
        assert answer.json() == {"pk": "a", "n": 2}
        assert answer.headers["x-aiodax-cache"] == "hit"  # the write's new image


async def test_no_cache_is_ignored_unless_honoured_and_the_header_is_opt_in(
    client_kwargs: servers.ClientKwargs, table: str
) -> None:
    app = make_app(client_kwargs, table, header=False, honour=False)
    async with serving(app) as http:
        await http.put("/items/a/1")
        before = await sent(http, "get_item")
        answer = await http.get("/items/a", headers={"Cache-Control": "no-cache"})
        assert answer.json() == {"pk": "a", "n": 1}
        assert "x-aiodax-cache" not in answer.headers
        assert await sent(http, "get_item") == before  # served from the cache


async def test_an_app_without_the_lifespan_is_told_what_to_do(
    client_kwargs: servers.ClientKwargs, table: str
) -> None:
    app = FastAPI()
    Items = Annotated[aiodax.CachedTable, Depends(aiodax_fastapi.table(table))]

    @app.get("/")
    async def get(items: Items) -> dict[str, Any]:
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        with pytest.raises(aiodax.ConfigurationError, match="lifespan"):
            await h.get("/")


async def test_open_resources_composes_with_an_apps_own_lifespan(
    client_kwargs: servers.ClientKwargs, table: str
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aiodax_fastapi.open_resources(
            aioboto3.Session(), tables=[table], **client_kwargs
        ) as resources:
            app.state.aiodax = resources
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/{pk}")
    async def get(pk: str, request: Request) -> dict[str, Any]:
        items = await aiodax_fastapi.table_for(request, table)
        return {"found": "Item" in await items.get_item(Key={"pk": pk})}

    async with serving(app) as http:
        assert (await http.get("/x")).json() == {"found": False}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"Cache-Control": "no-cache"}, True),
        ({"Cache-Control": "max-age=0"}, True),
        ({"Cache-Control": "public, No-Store"}, True),
        ({"Cache-Control": "max-age=60"}, False),
        ({"Pragma": "no-cache"}, True),
    ],
)
def test_wants_no_cache(headers: dict[str, str], expected: bool) -> None:
    scope = {
        "type": "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    assert aiodax_fastapi.wants_no_cache(Request(scope)) is expected

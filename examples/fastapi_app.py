"""A FastAPI app with one aiodax cache and one cached DynamoDB resource for its lifetime.

Serve it against a DynamoDB-compatible server on loopback (moto, DynamoDB Local)::

    AIODAX_ENDPOINT_URL=http://127.0.0.1:8000 AIODAX_TABLE=orders \\
        uvicorn examples.fastapi_app:create_app --factory

or build it in code with ``create_app(endpoint_url=..., table=...)``.  The table has a
string partition key ``pk`` (the user) and a string sort key ``sk`` (the order).
``AIODAX_CACHED=0`` (or ``create_app(cached=False)``) serves the same routes from the
plain aioboto3 resource, for comparison.  Under several workers
(``uvicorn --workers 4``) each worker has its own cache: set
``AIODAX_REDIS_URL=redis://127.0.0.1:6379/0`` (and ``AIODAX_NAMESPACE``, "orders" by
default), or ``create_app(redis=...)``, to join them with the Redis tier, so that a
PUT through one worker is seen by GETs through every other.

    python examples/fastapi_app.py

runs a short demonstration instead: an embedded moto server, the table, and a few
requests driven through the app in this process with httpx's ASGI transport.

Routes:

- ``PUT /orders/{user}/{order}``: ``put_item`` of the JSON object in the body
- ``GET /orders/{user}/{order}``: ``get_item`` (404 when there is no such order)
- ``GET /orders/{user}``: ``query`` of the user's partition (first page)
- ``GET /stats``: ``Cache.stats()`` (404 when the app runs uncached)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aioboto3
from boto3.dynamodb.conditions import Key  # type: ignore[import-untyped]
from fastapi import FastAPI, HTTPException, Request

import aiodax
from aiodax.testing.servers import client_kwargs, string_key_table

ENDPOINT_URL_ENV = "AIODAX_ENDPOINT_URL"
TABLE_ENV = "AIODAX_TABLE"
CACHED_ENV = "AIODAX_CACHED"
REDIS_ENV = "AIODAX_REDIS_URL"
NAMESPACE_ENV = "AIODAX_NAMESPACE"
DEFAULT_TABLE = "orders"


@dataclass
class _State:
    """What the lifespan opens and the handlers use."""

    table: Any = None
    cache: aiodax.Cache | None = None


def create_app(
    endpoint_url: str | None = None,
    table: str | None = None,
    *,
    cached: bool | None = None,
    redis: str | None = None,
    session: aioboto3.Session | None = None,
    max_pool_connections: int = 50,
) -> FastAPI:
    """The app: arguments left out come from the environment.

    ``endpoint_url`` (``$AIODAX_ENDPOINT_URL``) is a local DynamoDB-compatible server,
    reached with dummy credentials; without one the session's own configuration is
    used (real DynamoDB).  ``table`` defaults to ``$AIODAX_TABLE``, then "orders";
    ``cached`` to ``$AIODAX_CACHED`` ("0" turns aiodax off), then ``True``;
    ``redis`` to ``$AIODAX_REDIS_URL`` (the Redis tier between workers, in the
    namespace ``$AIODAX_NAMESPACE`` or "orders"), then none.
    """
    endpoint_url = endpoint_url or os.environ.get(ENDPOINT_URL_ENV) or None
    table_name = table or os.environ.get(TABLE_ENV) or DEFAULT_TABLE
    if cached is None:
        cached = os.environ.get(CACHED_ENV, "1") != "0"
    redis_url = redis or os.environ.get(REDIS_ENV) or None
    namespace = os.environ.get(NAMESPACE_ENV) or DEFAULT_TABLE
    aws = session or aioboto3.Session()
    kwargs: dict[str, Any] = {}
    if endpoint_url:
        kwargs.update(client_kwargs(endpoint_url, max_pool_connections=max_pool_connections))
    state = _State()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One resource (one connection pool) and one Cache for the app's lifetime,
        # both closed when the server shuts down: the cache first, then the resource.
        if cached:
            cache_of_app = (
                aiodax.Cache(redis=redis_url, namespace=namespace) if redis_url else aiodax.Cache()
            )
            async with (
                cache_of_app as cache,
                aiodax.resource(aws, cache=cache, **kwargs) as dynamodb,
            ):
                state.cache = cache
                state.table = await dynamodb.Table(table_name)
                yield
        else:
            async with aws.resource("dynamodb", **kwargs) as dynamodb:
                state.table = await dynamodb.Table(table_name)
                yield

    app = FastAPI(title="aiodax orders", lifespan=lifespan)

    @app.put("/orders/{user}/{order}")
    async def put_order(user: str, order: str, request: Request) -> dict[str, Any]:
        # Numbers as Decimal: the DynamoDB resource API refuses floats.
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
        except ValueError as exc:
            raise HTTPException(422, f"invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise HTTPException(422, "the body must be a JSON object")
        item = {**body, "pk": user, "sk": order}
        await state.table.put_item(Item=item)
        stored: dict[str, Any] = _json(item)
        return stored

    @app.get("/orders/{user}/{order}")
    async def get_order(user: str, order: str) -> dict[str, Any]:
        response = await state.table.get_item(Key={"pk": user, "sk": order})
        if "Item" not in response:
            raise HTTPException(404, f"no order {order!r} for {user!r}")
        item: dict[str, Any] = _json(response["Item"])
        return item

    @app.get("/orders/{user}")
    async def list_orders(user: str) -> dict[str, Any]:
        page = await state.table.query(KeyConditionExpression=Key("pk").eq(user))
        return {"items": _json(page["Items"]), "count": page["Count"]}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        if state.cache is None:
            raise HTTPException(404, "this app runs without aiodax")
        return dict(state.cache.stats())

    return app


def _json(value: Any) -> Any:
    """``value`` with DynamoDB's Decimals as JSON numbers and its sets as lists.

    (FastAPI would send a Decimal as a string.)
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list | set | frozenset | tuple):
        items = [_json(item) for item in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return value


async def create_table(endpoint_url: str, table: str = DEFAULT_TABLE) -> None:
    """The app's table (``pk``, ``sk``: strings), on a local server."""
    async with aioboto3.Session().client("dynamodb", **client_kwargs(endpoint_url)) as client:
        await client.create_table(**string_key_table(table, "pk", "sk"))
        await client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )


async def demo(endpoint_url: str) -> None:
    """A few requests through the app in this process, as a server would route them."""
    import httpx

    await create_table(endpoint_url)
    app = create_app(endpoint_url=endpoint_url)
    # What uvicorn does around serving: run the lifespan, so that the resource and the
    # cache open before the first request and close after the last.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders.test"
        ) as http,
    ):
        put = await http.put("/orders/user-1/order-1", json={"total": 42.5, "items": 3})
        print("PUT /orders/user-1/order-1:", put.status_code, put.json())
        for _ in range(3):
            got = await http.get("/orders/user-1/order-1")
        print("GET /orders/user-1/order-1 (x3):", got.status_code, got.json())
        listed = await http.get("/orders/user-1")
        print("GET /orders/user-1:", listed.status_code, listed.json()["count"], "order(s)")
        missing = await asyncio.gather(*(http.get("/orders/user-1/nope") for _ in range(10)))
        print("GET /orders/user-1/nope (x10, concurrent):", {r.status_code for r in missing})
        stats = (await http.get("/stats")).json()
    print("item cache hits/misses:", stats["ItemCacheHits"], stats["ItemCacheMisses"])
    print("coalesced + negative hits:", stats["CoalescedRequests"] + stats["NegativeCacheHits"])
    print("requests sent to DynamoDB:", stats["BackendRequests"])


if __name__ == "__main__":
    from aiodax.testing.servers import moto_server

    with moto_server() as url:
        asyncio.run(demo(url))

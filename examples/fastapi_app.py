"""A FastAPI app with one aiodax cache and one cached DynamoDB resource for its life.

    python examples/fastapi_app.py

runs a short demonstration: an embedded moto server, the table, and a few requests
driven through the app in this process with httpx's ASGI transport.  Against a
DynamoDB-compatible server of your own on loopback (moto, DynamoDB Local)::

    python examples/fastapi_app.py create-table --endpoint-url http://127.0.0.1:8000
    python examples/fastapi_app.py serve --endpoint-url http://127.0.0.1:8000

or ``AIODAX_ENDPOINT_URL=http://127.0.0.1:8000 uvicorn examples.fastapi_app:create_app
--factory``, or ``create_app(endpoint_url=..., table=...)`` in code.  The table has a
string partition key ``pk`` (the user) and a string sort key ``sk`` (the order).
``AIODAX_CACHED=0`` (or ``create_app(cached=False)``) serves the same routes from the
plain aioboto3 resource, for comparison.

Several workers (``uvicorn --workers 4``) are several processes, each with its own
cache: a PUT through one worker would leave the others serving the old order until
their TTL ends.  Set ``AIODAX_REDIS_URL=redis://127.0.0.1:6379/0`` (and
``AIODAX_NAMESPACE``, "orders" by default), or ``create_app(redis=...)``, to join
them with the Redis tier: a write through any worker drops what every other cached.

Routes (every answer says how its reads were served in ``x-aiodax-cache``; a request
with ``Cache-Control: no-cache`` reads DynamoDB itself):

- ``PUT /orders/{user}/{order}``: ``put_item`` of the order in the body
- ``GET /orders/{user}/{order}``: ``get_item`` (404 when there is no such order)
- ``GET /orders/{user}``: ``query`` of the user's partition (first page)
- ``GET /stats``: ``Cache.stats()`` (404 when the app runs uncached)
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations,
# and ``Orders`` is a local of ``create_app``.
import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

import aioboto3
from boto3.dynamodb.conditions import Key  # type: ignore[import-untyped]
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

import aiodax
from aiodax.contrib import fastapi as aiodax_fastapi
from aiodax.testing.servers import client_kwargs, string_key_table

ENDPOINT_URL_ENV = "AIODAX_ENDPOINT_URL"
TABLE_ENV = "AIODAX_TABLE"
CACHED_ENV = "AIODAX_CACHED"
REDIS_ENV = "AIODAX_REDIS_URL"
NAMESPACE_ENV = "AIODAX_NAMESPACE"
DEFAULT_TABLE = "orders"


class OrderIn(BaseModel):
    """A PUT's body.  Decimal, because the DynamoDB resource refuses floats."""

    total: Decimal
    quantity: int | None = None


class Order(BaseModel):
    """An order as the API answers it: DynamoDB's Decimals become JSON numbers."""

    pk: str
    sk: str
    total: float
    quantity: int | None = None


class OrderPage(BaseModel):
    items: list[Order]
    count: int


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

    def make_cache() -> aiodax.Cache:
        return aiodax.Cache(redis=redis_url, namespace=namespace) if redis_url else aiodax.Cache()

    if cached:
        # One Cache and one resource (one connection pool) for the app's life; a
        # request sending Cache-Control: no-cache reads DynamoDB itself.
        lifespan: Any = aiodax_fastapi.lifespan(
            aws, cache=make_cache, tables=[table_name], **kwargs
        )
        orders_table: Any = aiodax_fastapi.table(table_name, honour_no_cache=True)
    else:
        plain: dict[str, Any] = {}
        lifespan = _plain_lifespan(aws, table_name, kwargs, plain)

        async def orders_table() -> Any:
            return plain["table"]

    # Uncached, this is aioboto3's own Table: the methods the routes call are the same.
    Orders = Annotated[aiodax.CachedTable, Depends(orders_table)]

    app = FastAPI(title="aiodax orders", lifespan=lifespan)
    app.add_middleware(aiodax_fastapi.CacheStatusHeader)

    @app.put("/orders/{user}/{order}", response_model_exclude_none=True)
    async def put_order(user: str, order: str, body: OrderIn, orders: Orders) -> Order:
        item = {**body.model_dump(exclude_none=True), "pk": user, "sk": order}
        await orders.put_item(Item=item)
        return Order.model_validate(item)

    @app.get("/orders/{user}/{order}", response_model_exclude_none=True)
    async def get_order(user: str, order: str, orders: Orders) -> Order:
        response = await orders.get_item(Key={"pk": user, "sk": order})
        if "Item" not in response:
            raise HTTPException(404, f"no order {order!r} for {user!r}")
        return Order.model_validate(response["Item"])

    @app.get("/orders/{user}", response_model_exclude_none=True)
    async def list_orders(user: str, orders: Orders) -> OrderPage:
        page = await orders.query(KeyConditionExpression=Key("pk").eq(user))
        return OrderPage(items=page["Items"], count=page["Count"])

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        if not cached:
            raise HTTPException(404, "this app runs without aiodax")
        return aiodax_fastapi.cache(request).stats()

    return app


def _plain_lifespan(
    aws: aioboto3.Session, table: str, kwargs: dict[str, Any], plain: dict[str, Any]
) -> Any:
    """The uncached app's lifespan: aioboto3's resource and ``plain["table"]``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aws.resource("dynamodb", **kwargs) as dynamodb:
            plain["table"] = await dynamodb.Table(table)
            yield

    return lifespan


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
        put = await http.put("/orders/user-1/order-1", json={"total": 42.5, "quantity": 3})
        print("PUT /orders/user-1/order-1:", put.status_code, put.json())
        for _ in range(3):
            got = await http.get("/orders/user-1/order-1")
            print("GET /orders/user-1/order-1:", got.status_code, got.headers["x-aiodax-cache"])
        fresh = await http.get("/orders/user-1/order-1", headers={"Cache-Control": "no-cache"})
        print("GET with Cache-Control: no-cache:", fresh.headers["x-aiodax-cache"])
        listed = await http.get("/orders/user-1")
        print("GET /orders/user-1:", listed.status_code, listed.json()["count"], "order(s)")
        missing = await asyncio.gather(*(http.get("/orders/user-1/nope") for _ in range(10)))
        print(
            "GET /orders/user-1/nope (x10, concurrent):",
            sorted({(r.status_code, r.headers["x-aiodax-cache"]) for r in missing}),
        )
        stats = (await http.get("/stats")).json()
    print("item cache hits/misses:", stats["ItemCacheHits"], stats["ItemCacheMisses"])
    print("coalesced + negative hits:", stats["CoalescedRequests"] + stats["NegativeCacheHits"])
    print("requests sent to DynamoDB:", stats["BackendRequests"])


def main() -> None:
    parser = argparse.ArgumentParser(description="aiodax's FastAPI example")
    parser.add_argument(
        "command", nargs="?", default="demo", choices=["demo", "create-table", "serve"]
    )
    parser.add_argument("--endpoint-url", help="a DynamoDB-compatible server on loopback")
    parser.add_argument("--table", default=DEFAULT_TABLE)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.command == "demo":
        from aiodax.testing.servers import moto_server

        with moto_server() as url:
            asyncio.run(demo(url))
        return
    if args.endpoint_url is None:
        parser.error(f"{args.command} needs --endpoint-url")
    if args.command == "create-table":
        asyncio.run(create_table(args.endpoint_url, args.table))
        print(f"created table {args.table!r} at {args.endpoint_url}")
        return
    import uvicorn

    uvicorn.run(create_app(args.endpoint_url, args.table), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()

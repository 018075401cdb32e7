"""The child process of ``hit_instructions``: fill one cache per key shape, then hit one.

Run as ``python -m benchmarks._hit_child CONTENDER FLAVOUR SHAPE HITS``.  Every run of
one contender and flavour does the same set-up (every shape's item fetched once
through a botocore ``Stubber``: nothing leaves the process), then ``HITS`` hits of
the one shape named.  It uses only aiodax's public API, so that the same child
measures an older aiodax checked out beside this one (``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aioboto3
from async_lru import alru_cache
from botocore.stub import Stubber

import aiodax

from ._shapes import SHAPES, Shape

TABLE = "aiodax-bench"
#: Never contacted: the Stubber answers before a request is made.
CLIENT_KWARGS: dict[str, Any] = {
    "endpoint_url": "http://127.0.0.1:9",
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}
Get = Callable[[], Awaitable[Any]]


def _table(shape: Shape) -> str:
    return f"{TABLE}-{SHAPES.index(shape)}"


def _stub(client: Any) -> Stubber:
    stubber = Stubber(client)
    for shape in SHAPES:
        stubber.add_response("get_item", {"Item": shape.wire_item(0)}, None)
    stubber.activate()
    return stubber


def _client_get(contender: str, client: Any, cache: aiodax.Cache, shape: Shape) -> Get:
    table, key, values = _table(shape), shape.wire_key(0), shape.values(0)
    if contender == "aiodax":
        get_item = cache.wrap(client).get_item
        return lambda: get_item(TableName=table, Key=key)

    @alru_cache(maxsize=1024, ttl=300)
    async def alru_get(*values: Any) -> Any:
        return await client.get_item(TableName=table, Key=key)

    return lambda: alru_get(*values)


async def _resource_get(contender: str, resource: Any, cache: aiodax.Cache, shape: Shape) -> Get:
    key, values = shape.python_key(0), shape.values(0)
    if contender == "aiodax":
        get_item = (await cache.wrap(resource).Table(_table(shape))).get_item
        return lambda: get_item(Key=key)
    table = await resource.Table(_table(shape))

    @alru_cache(maxsize=1024, ttl=300)
    async def alru_get(*values: Any) -> Any:
        return await table.get_item(Key=key)

    return lambda: alru_get(*values)


async def main(contender: str, flavour: str, shape_name: str, hits: int) -> None:
    session = aioboto3.Session()
    async with aiodax.Cache(item_ttl=300) as cache:
        if flavour == "client":
            async with session.client("dynamodb", **CLIENT_KWARGS) as client:
                stubber = _stub(client)
                getters = {
                    shape.name: _client_get(contender, client, cache, shape) for shape in SHAPES
                }
                await _fill_and_hit(getters, shape_name, hits)
                stubber.assert_no_pending_responses()
        else:
            async with session.resource("dynamodb", **CLIENT_KWARGS) as resource:
                stubber = _stub(resource.meta.client)
                getters = {
                    shape.name: await _resource_get(contender, resource, cache, shape)
                    for shape in SHAPES
                }
                await _fill_and_hit(getters, shape_name, hits)
                stubber.assert_no_pending_responses()
        if contender == "aiodax":
            assert cache.stats()["BackendRequestCount"] == len(SHAPES), cache.stats()


async def _fill_and_hit(getters: dict[str, Get], shape_name: str, hits: int) -> None:
    for get in getters.values():
        await get()  # the misses that fill the cache, in the stubbed answers' order
    get = getters[shape_name]
    for _ in range(hits):
        await get()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))

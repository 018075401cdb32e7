"""A write that bypasses the cache, dropped through DynamoDB Streams.

    python examples/streams_invalidation.py

Starts a moto server and a private redis-server on 127.0.0.1, creates a table with a
KEYS_ONLY stream, caches an item, then changes it with a plain client (no aiodax):
the cache keeps serving the old value, until a ``StreamsInvalidator`` follows the
table's stream and drops it.
"""

from __future__ import annotations

import asyncio

import aioboto3

import aiodax
from aiodax.testing import RedisServer
from aiodax.testing.servers import client_kwargs, moto_server, string_key_table

KEY = {"pk": {"S": "user#1"}}


async def served(client: aiodax.CachedClient) -> str:
    return str((await client.get_item(TableName="orders", Key=KEY))["Item"]["v"]["S"])


async def main(endpoint_url: str, redis_url: str) -> None:
    session = aioboto3.Session()
    async with (
        session.client("dynamodb", **client_kwargs(endpoint_url)) as plain,
        session.client("dynamodbstreams", **client_kwargs(endpoint_url)) as streams,
        aiodax.Cache(redis=redis_url, namespace="example") as cache,
    ):
        spec = string_key_table("orders")
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
        await plain.create_table(**spec)
        await plain.put_item(TableName="orders", Item={**KEY, "v": {"S": "old"}})
        client = cache.wrap(plain)
        print("cached:", await served(client))

        await plain.put_item(TableName="orders", Item={**KEY, "v": {"S": "new"}})
        print("after a write that bypassed the cache:", await served(client))

        async with aiodax.StreamsInvalidator(
            ["orders"], client=streams, redis=redis_url, namespace="example"
        ):
            for _ in range(200):  # within 10 s; it takes about one poll (250 ms)
                if await served(client) == "new":
                    break
                await asyncio.sleep(0.05)
        print("with the streams invalidator:", await served(client))


if __name__ == "__main__":
    with moto_server() as endpoint, RedisServer() as redis:
        asyncio.run(main(endpoint, redis.url))

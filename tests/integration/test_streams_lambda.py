"""The Lambda adapter: a DynamoDB Streams event's records drop their items in a cache of
the namespace, through the bus; a Redis that is gone fails the batch (Lambda retries)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

import aiodax
from aiodax.streams.lambda_ import event_invalidations, make_handler
from aiodax.testing import RedisServer

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

NAMESPACE = "lambda-test"


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


def _event(table: str, *pks: str, event: str = "MODIFY") -> dict[str, Any]:
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-12-03T00:00:00.000"
    return {
        "Records": [
            {
                "eventName": event,
                "eventSource": "aws:dynamodb",
                "eventSourceARN": arn,
                "dynamodb": {
                    "Keys": {"pk": {"S": pk}},
                    # An image newer than anything: never written into a cache.
                    "NewImage": {"pk": {"S": pk}, "v": {"S": "from-the-stream"}},
                    "SequenceNumber": f"{at:021d}",
                    "StreamViewType": "NEW_IMAGE",
                },
            }
            for at, pk in enumerate(pks, 1)
        ]
    }


@pytest.fixture
async def cached(
    server: RedisServer, raw_client: DynamoDBClient
) -> AsyncIterator[aiodax.CachedClient]:
    tier = aiodax.RedisTier(server.url, namespace=NAMESPACE, shared_l2=False)
    async with aiodax.Cache(redis=tier) as cache:
        yield cache.wrap(raw_client)


async def _value(client: aiodax.CachedClient, table: str, pk: str) -> str | None:
    found = (await client.get_item(TableName=table, Key={"pk": {"S": pk}})).get("Item")
    return None if found is None else str(found["v"]["S"])


async def test_an_events_records_drop_their_items_in_the_caches(
    server: RedisServer, cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str
) -> None:
    for pk in ("a", "b", "c"):
        await raw_client.put_item(TableName=table, Item={"pk": {"S": pk}, "v": {"S": "old"}})
        assert await _value(cached, table, pk) == "old"
    for pk in ("a", "b"):
        await raw_client.put_item(TableName=table, Item={"pk": {"S": pk}, "v": {"S": "new"}})
    assert await _value(cached, table, "a") == "old"  # the write bypassed the cache
    handler = make_handler(server.url, NAMESPACE)
    try:
        answer = await asyncio.to_thread(handler, _event(table, "a", "b"), None)
        assert answer == {"batchItemFailures": []}
        async with asyncio.timeout(10):
            while (
                await _value(cached, table, "a") != "new"
                or await _value(cached, table, "b") != "new"
            ):
                await asyncio.sleep(0.01)
        assert await _value(cached, table, "c") == "old"
        # A warm environment's next event reuses its connection.
        await asyncio.to_thread(handler, _event(table, "c", event="REMOVE"), None)
        assert handler.counters.batches == 2 and handler.counters.records == 3
    finally:
        await asyncio.to_thread(handler.close)


async def test_a_redis_that_is_gone_fails_the_batch(server: RedisServer) -> None:
    handler = make_handler(server.url, NAMESPACE)
    await asyncio.to_thread(server.stop)
    try:
        with pytest.raises(RedisConnectionError):
            await asyncio.to_thread(handler, _event("orders", "a"), None)
    finally:
        await asyncio.to_thread(handler.close)


def test_a_record_of_another_source_is_refused() -> None:
    with pytest.raises(ValueError, match="not a DynamoDB Streams record"):
        event_invalidations({"Records": [{"eventSourceARN": "arn:aws:sqs:us-east-1:1:queue"}]})
    assert event_invalidations({"Records": []}) == []

"""Cancellation: a caller that leaves never fails the others, and leaves nothing behind.

Every test here also runs under the suite's ``no_leaked_tasks`` check and with
warnings as errors, so a "Task was destroyed but it is pending" or a
never-retrieved exception fails it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEY = {"pk": {"S": "hot"}}
ITEM = {**KEY, "v": {"S": "value"}}


@pytest.fixture
async def seeded(raw_client: DynamoDBClient, table: str) -> str:
    await raw_client.put_item(TableName=table, Item=ITEM)
    return table


async def start_waiters(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str, count: int
) -> tuple[asyncio.Event, list[asyncio.Task[Any]]]:
    """``count`` callers of one key, all waiting on one held request."""
    release = instrumented.hold("get_item")
    tasks = [asyncio.create_task(cached.get_item(TableName=table, Key=KEY)) for _ in range(count)]
    await until(lambda: instrumented.in_flight["get_item"] == 1)
    await asyncio.sleep(0)  # let every task join the flight
    return release, tasks


@pytest.mark.parametrize("cancelled", [[0], [1], [2], [0, 1], [1, 2], [0, 2]])
async def test_cancelled_callers_leave_the_others_served(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str, cancelled: list[int]
) -> None:
    release, tasks = await start_waiters(cached, instrumented, seeded, 3)

    for index in cancelled:
        tasks[index].cancel()
    await asyncio.sleep(0)
    release.set()
    results: list[Any] = await asyncio.gather(*tasks, return_exceptions=True)

    for index, result in enumerate(results):
        if index in cancelled:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result["Item"] == ITEM
    assert instrumented.calls["get_item"] == 1
    # the survivors' flight filled the cache
    await cached.get_item(TableName=seeded, Key=KEY)
    assert instrumented.calls["get_item"] == 1


async def test_when_every_caller_left_the_request_is_cancelled_and_a_newcomer_starts_fresh(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    _, tasks = await start_waiters(cached, instrumented, seeded, 3)

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: instrumented.in_flight["get_item"] == 0)
    assert cached.cache.stats()["InFlight"] == 0

    # the held request never reached DynamoDB; a new caller is not handed its
    # cancellation but sends a request of its own
    response = await cached.get_item(TableName=seeded, Key=KEY)
    assert response["Item"] == ITEM
    assert instrumented.calls["get_item"] == 1


async def test_a_timed_out_caller_leaves_without_failing_the_others(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    release = instrumented.hold("get_item")

    async def impatient() -> None:
        async with asyncio.timeout(0.01):
            await cached.get_item(TableName=seeded, Key=KEY)

    patient = asyncio.create_task(cached.get_item(TableName=seeded, Key=KEY))
    with pytest.raises(TimeoutError):
        await impatient()
    release.set()

    assert (await patient)["Item"] == ITEM
    assert instrumented.calls["get_item"] == 1


async def test_cancelled_batch_caller_leaves_joined_get_item_served(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    release = instrumented.hold("batch_get_item")
    batch = asyncio.create_task(cached.batch_get_item(RequestItems={seeded: {"Keys": [KEY]}}))
    await until(lambda: instrumented.in_flight["batch_get_item"] == 1)
    single = asyncio.create_task(cached.get_item(TableName=seeded, Key=KEY))
    await asyncio.sleep(0)

    batch.cancel()
    release.set()

    assert (await single)["Item"] == ITEM
    with pytest.raises(asyncio.CancelledError):
        await batch
    # one request for the item (the batch's); the table's schema asked once beside it
    assert instrumented.calls == {"batch_get_item": 1, "describe_table": 1}


async def test_closing_the_cache_fails_waiters_cleanly(
    raw_client: DynamoDBClient, seeded: str
) -> None:
    instrumented = InstrumentedClient(raw_client)
    instrumented.hold("get_item")
    cache = aiodax.Cache()
    cached = cache.wrap(cast("DynamoDBClient", instrumented))
    waiters = [asyncio.create_task(cached.get_item(TableName=seeded, Key=KEY)) for _ in range(3)]
    await until(lambda: instrumented.in_flight["get_item"] == 1)

    await cache.aclose()

    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, aiodax.CacheClosedError) for r in results)
    assert instrumented.in_flight["get_item"] == 0
    with pytest.raises(aiodax.CacheClosedError):
        await cached.get_item(TableName=seeded, Key=KEY)
    with pytest.raises(aiodax.CacheClosedError):
        await cached.put_item(TableName=seeded, Item=ITEM)


async def test_a_write_cancelled_after_it_reached_dynamodb_invalidates_the_key(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    seeded: str,
) -> None:
    await cached.get_item(TableName=seeded, Key=KEY)  # cache the old value
    instrumented.hold("put_item", when="after")
    new = {**KEY, "v": {"S": "new"}}
    write = asyncio.create_task(cached.put_item(TableName=seeded, Item=new))
    await until(lambda: instrumented.answered["put_item"] == 1)

    assert cached.cache.stats()["WritesInFlight"] == 1
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    assert cached.cache.stats()["WritesInFlight"] == 0

    # DynamoDB applied the write; the cache must not keep serving the old value
    assert (await raw_client.get_item(TableName=seeded, Key=KEY))["Item"] == new
    assert (await cached.get_item(TableName=seeded, Key=KEY))["Item"] == new
    assert instrumented.calls["get_item"] == 2


async def test_a_cancelled_page_flight_is_not_inherited(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    release = instrumented.hold("query")
    request: dict[str, Any] = {
        "TableName": seeded,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "hot"}},
    }
    first = asyncio.create_task(cached.query(**request))
    await until(lambda: instrumented.in_flight["query"] == 1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()

    response = await cached.query(**request)

    assert response["Items"] == [ITEM]

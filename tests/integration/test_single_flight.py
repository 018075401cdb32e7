"""Concurrent identical misses share one DynamoDB request (items and batch keys)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import Unprocessing, until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


async def seed(raw_client: DynamoDBClient, table: str, *names: str) -> None:
    for name in names:
        await raw_client.put_item(TableName=table, Item={**key(name), "v": {"S": f"value {name}"}})


async def test_a_thousand_identical_misses_send_one_request(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await seed(raw_client, table, "hot")

    responses = await asyncio.gather(
        *(cached.get_item(TableName=table, Key=key("hot")) for _ in range(1000))
    )

    assert instrumented.calls["get_item"] == 1
    assert all(r["Item"] == {**key("hot"), "v": {"S": "value hot"}} for r in responses)
    stats = cached.cache.stats()
    assert stats["CoalescedRequests"] == 999
    assert stats["BackendRequests"] == {"get_item": 1}


async def test_with_a_zero_item_ttl_misses_in_flight_are_shared_and_nothing_is_kept(
    instrumented: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    await seed(raw_client, table, "hot")
    async with aiodax.Cache(item_ttl=0) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        release = instrumented.hold("get_item")
        readers = [
            asyncio.create_task(cached.get_item(TableName=table, Key=key("hot"))) for _ in range(20)
        ]
        await until(lambda: instrumented.in_flight["get_item"] == 1)
        release.set()
        answers = await asyncio.gather(*readers)
        assert instrumented.calls["get_item"] == 1
        assert all(a["Item"]["v"] == {"S": "value hot"} for a in answers)

        await cached.get_item(TableName=table, Key=key("hot"))  # not kept: asked again
        assert instrumented.calls["get_item"] == 2
        assert cache.stats()["CurrentSize"] == 0


async def test_a_failed_flight_fails_every_waiter_and_caches_nothing(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await seed(raw_client, table, "hot")
    release = instrumented.hold("get_item")
    instrumented.fail("get_item", "ProvisionedThroughputExceededException")

    waiters = [
        asyncio.create_task(cached.get_item(TableName=table, Key=key("hot"))) for _ in range(50)
    ]
    await until(lambda: instrumented.in_flight["get_item"] == 1)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)

    throttled = raw_client.exceptions.ProvisionedThroughputExceededException
    assert all(isinstance(r, throttled) for r in results)
    assert instrumented.calls["get_item"] == 0  # refused before reaching DynamoDB
    # nothing was cached: the next read asks DynamoDB, and succeeds
    response = await cached.get_item(TableName=table, Key=key("hot"))
    assert response["Item"]["v"] == {"S": "value hot"}
    assert instrumented.calls["get_item"] == 1


async def test_different_projections_are_different_flights(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await seed(raw_client, table, "a")

    whole, projected = await asyncio.gather(
        cached.get_item(TableName=table, Key=key("a")),
        cached.get_item(TableName=table, Key=key("a"), ProjectionExpression="v"),
    )

    assert whole["Item"] == {**key("a"), "v": {"S": "value a"}}
    assert projected["Item"] == {"v": {"S": "value a"}}
    assert instrumented.calls["get_item"] == 2


async def test_batch_serves_cached_joins_in_flight_and_loads_the_rest(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await seed(raw_client, table, "cached", "flying", "cold")
    await cached.get_item(TableName=table, Key=key("cached"))
    release = instrumented.hold("get_item")
    flying = asyncio.create_task(cached.get_item(TableName=table, Key=key("flying")))
    await until(lambda: instrumented.in_flight["get_item"] == 1)

    batch = asyncio.create_task(
        cached.batch_get_item(
            RequestItems={
                table: {"Keys": [key("cached"), key("flying"), key("cold"), key("absent")]}
            }
        )
    )
    await until(lambda: instrumented.calls["batch_get_item"] == 1)
    release.set()
    response = await batch
    await flying

    (sent,) = [r for op, r in instrumented.requests if op == "batch_get_item"]
    assert sent["RequestItems"][table]["Keys"] == [key("cold"), key("absent")]
    got = sorted(item["pk"]["S"] for item in response["Responses"][table])
    assert got == ["cached", "cold", "flying"]
    assert response["UnprocessedKeys"] == {}


async def test_concurrent_batches_load_each_key_once(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    names = [f"k{i}" for i in range(150)]
    await raw_client.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": key(n)}} for n in names[:25]]}
    )
    batches = [names[0:100], names[50:150], names[25:125]]

    responses = await asyncio.gather(
        *(
            cached.batch_get_item(RequestItems={table: {"Keys": [key(n) for n in batch]}})
            for batch in batches
        )
    )

    asked = [
        k["pk"]["S"]
        for op, request in instrumented.requests
        if op == "batch_get_item"
        for k in request["RequestItems"][table]["Keys"]
    ]
    assert sorted(asked) == sorted(names)  # every key asked for exactly once
    for batch, response in zip(batches, responses, strict=True):
        found = {item["pk"]["S"] for item in response["Responses"][table]}
        assert found == {n for n in batch if n in names[:25]}


async def test_batch_over_dynamodb_limits_gets_dynamodb_error(
    cached: aiodax.CachedClient, table: str
) -> None:
    with pytest.raises(ClientError) as error:
        await cached.batch_get_item(
            RequestItems={table: {"Keys": [key(f"k{i}") for i in range(101)]}}
        )
    assert error.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("refusals, answered", [(2, True), (100, False)])
async def test_unprocessed_keys_are_retried_then_returned_as_dynamodb_does(
    raw_client: DynamoDBClient, table: str, refusals: int, answered: bool
) -> None:
    await seed(raw_client, table, "a")
    backend = Unprocessing(raw_client, refusals)
    async with aiodax.Cache(retry=aiodax.RetryPolicy(attempts=3, base=0.001, cap=0.002)) as cache:
        cached = cache.wrap(cast("DynamoDBClient", backend))
        request = {table: {"Keys": [key("a")], "ProjectionExpression": "v"}}

        response = await cached.batch_get_item(RequestItems=request)

        if answered:
            assert response["Responses"][table] == [{"v": {"S": "value a"}}]
            assert response["UnprocessedKeys"] == {}
            assert backend.calls["batch_get_item"] == 3
        else:
            assert response["Responses"][table] == []
            assert response["UnprocessedKeys"] == request
            assert backend.calls["batch_get_item"] == 4  # first try and three retries
            # an unprocessed key is not a missing item: nothing was cached
            assert cache.stats()["CurrentEntries"] == 0

"""Fills after a drop read DynamoDB consistently: no lagging replica's value is cached.

Each test runs through ``aiodax.testing.LaggingReplica`` in front of two instances of
moto and of DynamoDB Local: its replica applies writes only when a test lets it
(``LONG`` lag), so an eventually consistent read right after a write returns the
state from before it, as a lagging DynamoDB replica may.  The cache's clock is a
``FakeClock``, so that a fence ends when a test says.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeAlias

import aioboto3
import pytest

import aiodax
from aiodax.testing import LaggingReplica
from aiodax.testing.servers import client_kwargs
from tests.support import FakeClock
from tests.unit.fakes import RecordingBus

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import CreateTableInputTypeDef

#: A lag no test waits out: the replica applies writes only when a test catches it up.
LONG = 60.0
FENCE = 2.0
Item: TypeAlias = dict[str, Any]


@pytest.fixture
async def proxy(upstreams: tuple[str, str]) -> AsyncIterator[LaggingReplica]:
    async with LaggingReplica(*upstreams, lag=LONG) as proxy:
        yield proxy


@pytest.fixture
async def client(proxy: LaggingReplica) -> AsyncIterator[DynamoDBClient]:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as client:
        yield client


@pytest.fixture
async def table(client: DynamoDBClient, proxy: LaggingReplica) -> AsyncIterator[str]:
    """``pk``/``sk`` with a GSI ``by_g`` and an LSI ``by_l``; one item, on both servers."""
    name = f"aiodax-fence-{uuid.uuid4().hex[:12]}"
    request: CreateTableInputTypeDef = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g", "l")
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "LocalSecondaryIndexes": [
            {
                "IndexName": "by_l",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "l", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
    await client.create_table(**request)
    await client.put_item(TableName=name, Item=item("old"))
    await catch_up(proxy)
    yield name
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        await client.delete_table(TableName=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(clock: FakeClock) -> AsyncIterator[aiodax.Cache]:
    async with aiodax.Cache(clock=clock, fence=FENCE) as cache:
        yield cache


def item(v: str, sk: str = "s") -> Item:
    return {"pk": {"S": "p"}, "sk": {"S": sk}, "g": {"S": "G"}, "l": {"S": sk}, "v": {"S": v}}


KEY: Item = {"pk": {"S": "p"}, "sk": {"S": "s"}}


async def catch_up(proxy: LaggingReplica) -> None:
    proxy.lag = 0
    await proxy.settled()
    proxy.lag = LONG


def partition(table: str, **extra: Any) -> dict[str, Any]:
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p"}},
        **extra,
    }


def values(page: dict[str, Any]) -> list[str]:
    return sorted(i["v"]["S"] for i in page["Items"])


async def update_v(cached: aiodax.CachedClient, table: str, value: str, returns: str) -> None:
    await cached.update_item(
        TableName=table,
        Key=KEY,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": value}},
        ReturnValues=returns,
    )


# ------------------------------------------------------- every read after a drop


async def test_a_query_page_refilled_after_a_put_into_its_partition_reads_the_put(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    cached = cache.wrap(client)
    assert values(await cached.query(**partition(table))) == ["old"]
    await cached.put_item(TableName=table, Item=item("new", sk="t"))
    assert values(await cached.query(**partition(table))) == ["new", "old"]
    assert proxy.counts["Query", "consistent"] == 1
    assert cache.stats()["ConsistentFills"] == 1
    await catch_up(proxy)  # later hits are the consistent page, not a stale one
    assert values(await cached.query(**partition(table))) == ["new", "old"]


@pytest.mark.parametrize("returns", ["UPDATED_NEW", "UPDATED_OLD", "ALL_OLD"])
async def test_get_item_after_an_update_that_invalidates_reads_the_update(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, returns: str
) -> None:
    cached = cache.wrap(client)
    await cached.get_item(TableName=table, Key=KEY)
    await update_v(cached, table, "new", returns)
    assert (await cached.get_item(TableName=table, Key=KEY))["Item"]["v"] == {"S": "new"}


async def test_get_item_after_a_transaction_update_reads_the_update(
    cache: aiodax.Cache, client: DynamoDBClient, table: str
) -> None:
    cached = cache.wrap(client)
    await cached.get_item(TableName=table, Key=KEY)
    await cached.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": KEY,
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "new"}},
                }
            }
        ]
    )
    assert (await cached.get_item(TableName=table, Key=KEY))["Item"]["v"] == {"S": "new"}


async def test_batch_get_item_after_an_update_reads_the_update(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    cached = cache.wrap(client)
    request: dict[str, Any] = {"RequestItems": {table: {"Keys": [KEY]}}}
    await cached.batch_get_item(**request)
    await update_v(cached, table, "new", "UPDATED_NEW")
    answer = await cached.batch_get_item(**request)
    assert [i["v"] for i in answer["Responses"][table]] == [{"S": "new"}]
    assert proxy.counts["BatchGetItem", "consistent"] == 1


async def test_a_scan_refilled_after_a_put_reads_the_put(
    cache: aiodax.Cache, client: DynamoDBClient, table: str
) -> None:
    cached = cache.wrap(client)
    assert values(await cached.scan(TableName=table)) == ["old"]
    await cached.put_item(TableName=table, Item=item("new", sk="t"))
    assert values(await cached.scan(TableName=table)) == ["new", "old"]


async def test_an_lsi_query_refilled_after_a_put_reads_the_put(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    cached = cache.wrap(client)
    by_l = partition(table, IndexName="by_l")
    assert values(await cached.query(**by_l)) == ["old"]
    await cached.put_item(TableName=table, Item=item("new", sk="t"))
    assert values(await cached.query(**by_l)) == ["new", "old"]
    assert proxy.counts["Query", "consistent"] == 1


async def test_a_gsi_page_filled_inside_a_fence_lives_only_to_its_end(
    cache: aiodax.Cache,
    client: DynamoDBClient,
    table: str,
    proxy: LaggingReplica,
    clock: FakeClock,
) -> None:
    """DynamoDB has no consistent GSI read: a page read in a fence may be stale, so the
    cache keeps it only until the fence ends, then reads again."""
    cached = cache.wrap(client)
    by_g = {
        "TableName": table,
        "IndexName": "by_g",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "G"}},
    }
    assert values(await cached.query(**by_g)) == ["old"]
    await cached.put_item(TableName=table, Item=item("new", sk="t"))
    assert values(await cached.query(**by_g)) == ["old"]  # the lagging index
    assert proxy.counts["Query", "consistent"] == 0
    clock.advance(FENCE / 2)
    assert (await cached.query(**by_g))["ResponseMetadata"]["CacheStatus"] == "hit"
    await catch_up(proxy)
    clock.advance(FENCE / 2)
    assert values(await cached.query(**by_g)) == ["new", "old"]


async def test_get_item_after_a_bypassing_write_and_invalidate_reads_the_write(
    cache: aiodax.Cache, client: DynamoDBClient, table: str
) -> None:
    cached = cache.wrap(client)
    await cached.get_item(TableName=table, Key=KEY)
    await client.put_item(TableName=table, Item=item("new"))  # not through the cache
    cache.invalidate(table, KEY)
    assert (await cached.get_item(TableName=table, Key=KEY))["Item"]["v"] == {"S": "new"}


async def test_invalidate_table_fences_every_fill_of_the_table(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    cached = cache.wrap(client)
    await client.put_item(TableName=table, Item=item("new"))
    cache.invalidate_table(table)
    assert (await cached.get_item(TableName=table, Key=KEY))["Item"]["v"] == {"S": "new"}
    assert values(await cached.query(**partition(table))) == ["new"]
    assert proxy.counts["GetItem", "consistent"] == proxy.counts["Query", "consistent"] == 1


async def test_another_process_s_drop_from_the_bus_fences_fills_here(
    clock: FakeClock, client: DynamoDBClient, table: str
) -> None:
    bus = RecordingBus()
    async with aiodax.Cache(clock=clock, bus=bus) as cache:
        cached = cache.wrap(client)
        await cached.get_item(TableName=table, Key=KEY)
        await client.put_item(TableName=table, Item=item("new"))  # the other process's write
        assert bus.apply is not None
        bus.apply(aiodax.Invalidation(table, ("pk", "S", "p", "sk", "S", "s")))
        assert (await cached.get_item(TableName=table, Key=KEY))["Item"]["v"] == {"S": "new"}


# ------------------------------------------------------------- the fence's bounds


async def test_fills_read_eventually_again_once_the_fence_has_passed(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, proxy: LaggingReplica, clock: FakeClock
) -> None:
    cached = cache.wrap(client)
    cache.invalidate(table, KEY)
    clock.advance(FENCE)
    await cached.get_item(TableName=table, Key=KEY)
    assert (proxy.counts["GetItem", "consistent"], proxy.counts["GetItem", "eventual"]) == (0, 1)
    assert cache.stats()["ConsistentFills"] == 0


async def test_a_fill_of_another_item_is_not_fenced(
    cache: aiodax.Cache, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    cached = cache.wrap(client)
    await cached.put_item(TableName=table, Item=item("new", sk="t"))
    await cached.get_item(TableName=table, Key=KEY)
    assert proxy.counts["GetItem", "eventual"] == 1


async def test_eventual_fills_cache_what_a_lagging_replica_says(
    clock: FakeClock, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    """``fill_consistency="eventual"`` is DAX's behaviour: this is what it gives up."""
    async with aiodax.Cache(clock=clock, fill_consistency="eventual") as cache:
        cached = cache.wrap(client)
        await cached.get_item(TableName=table, Key=KEY)
        await update_v(cached, table, "new", "UPDATED_NEW")
        assert (await cached.get_item(TableName=table, Key=KEY))["Item"]["v"] == {"S": "old"}
        assert proxy.counts["GetItem", "consistent"] == 0


async def test_strong_fills_are_always_consistent_except_on_a_gsi(
    clock: FakeClock, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    async with aiodax.Cache(clock=clock, fill_consistency="strong") as cache:
        cached = cache.wrap(client)
        await cached.get_item(TableName=table, Key=KEY)
        await cached.batch_get_item(RequestItems={table: {"Keys": [KEY]}})
        await cached.scan(TableName=table)
        await cached.query(
            TableName=table,
            IndexName="by_g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "G"}},
        )
        counts = proxy.counts
        assert counts["GetItem", "consistent"] == counts["Scan", "consistent"] == 1
        assert counts["Query", "eventual"] == 1
        assert cache.stats()["ConsistentFills"] == 2  # the batch's key was a hit by then


async def test_a_fence_of_zero_seconds_fences_nothing(
    clock: FakeClock, client: DynamoDBClient, table: str, proxy: LaggingReplica
) -> None:
    async with aiodax.Cache(clock=clock, fence=0) as cache:
        cached = cache.wrap(client)
        cache.invalidate(table, KEY)
        await cached.get_item(TableName=table, Key=KEY)
        assert proxy.counts["GetItem", "eventual"] == 1


# ------------------------------------------------------------------ the resource


async def test_the_resource_s_reads_after_its_writes_read_them(
    cache: aiodax.Cache, proxy: LaggingReplica, table: str
) -> None:
    async with aioboto3.Session().resource("dynamodb", **client_kwargs(proxy.url)) as resource:
        cached = await cache.wrap(resource).Table(table)
        key = {"pk": "p", "sk": "s"}
        await cached.get_item(Key=key)
        await cached.update_item(
            Key=key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": "new"},
            ReturnValues="UPDATED_NEW",
        )
        assert (await cached.get_item(Key=key))["Item"]["v"] == "new"
        await cached.put_item(Item={"pk": "p", "sk": "t", "g": "G", "l": "t", "v": "newer"})
        page = await cached.query(
            KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "p"}
        )
        assert sorted(i["v"] for i in page["Items"]) == ["new", "newer"]

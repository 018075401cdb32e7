"""A miss that races the bus does not share a lagging replica's answer.

Another process's write moves the generations in Redis before its bus message
reaches this process.  A miss of this process in between is not fenced here yet,
and its eventually consistent read may meet a replica that has not applied the
write; shared through the L2, that answer would be every process's for a TTL.  The
generations record when they moved, so such a lease reads with ``ConsistentRead``
(or, for a secondary-index page, shares its answer only until the fence ends).

Three caches in one process, a ``LaggingReplica`` in front of two instances of each
server (its replica applies writes ``LAG`` seconds late), and the racing cache's
Redis behind a ``TcpFaultProxy`` that delays every chunk ``DELAY_MS`` each way: its
bus hears the write late, and its lease comes after the write reached Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest

import aiodax
from aiodax.testing import LaggingReplica, RedisServer, TcpFaultProxy
from aiodax.testing.servers import client_kwargs
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

LAG = 1.5
FENCE = 3.0
DELAY_MS = 250
KEY = {"pk": {"S": "p"}, "sk": {"S": "s"}}


def item(value: str) -> dict[str, Any]:
    return {**KEY, "g": {"S": "G"}, "v": {"S": value}}


@dataclass
class Race:
    proxy: LaggingReplica
    client: DynamoDBClient
    table: str
    writer: aiodax.CachedClient
    racer: aiodax.CachedClient
    late: aiodax.CachedClient
    racer_cache: aiodax.Cache
    late_cache: aiodax.Cache
    faults: TcpFaultProxy


@pytest.fixture
async def race(upstreams: tuple[str, str], server: RedisServer) -> AsyncIterator[Race]:
    name = f"aiodax-l2-fence-{uuid.uuid4().hex[:12]}"
    async with contextlib.AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(LaggingReplica(*upstreams, lag=0))
        client = await stack.enter_async_context(
            aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url))
        )
        await client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        await client.put_item(TableName=name, Item=item("old"))  # on both: lag 0
        faults = await stack.enter_async_context(TcpFaultProxy(server.host, server.port))
        direct = aiodax.RedisTier(server.url, namespace="race", timeout=2.0)
        delayed = aiodax.RedisTier(faults.url("redis"), namespace="race", timeout=5.0, liveness=5.0)
        caches = [
            await stack.enter_async_context(aiodax.Cache(redis=tier, fence=FENCE))
            for tier in (direct, delayed, direct)
        ]
        await until(lambda: all(c.stats()["Tier"]["BusState"] == "connected" for c in caches))
        writer, racer, late = (cache.wrap(client) for cache in caches)
        # The racer's connection open and the scripts loaded, before every round
        # trip costs two delays.
        await racer.get_item(TableName=name, Key={"pk": {"S": "warm"}, "sk": {"S": "up"}})
        assert caches[1].stats()["Tier"]["L2Stores"] == 1
        proxy.lag = LAG
        faults.delay(DELAY_MS)
        yield Race(proxy, client, name, writer, racer, late, caches[1], caches[2], faults)
        faults.pass_through()
        proxy.lag = 0
        await client.delete_table(TableName=name)


async def test_a_get_item_racing_the_bus_reads_consistently_and_shares_the_new_value(
    race: Race,
) -> None:
    await race.writer.put_item(TableName=race.table, Item=item("new"))
    # The write is acknowledged, and in Redis; the racer has not heard of it.
    got = await race.racer.get_item(TableName=race.table, Key=KEY)
    assert got["Item"]["v"] == {"S": "new"}
    assert race.racer_cache.stats()["Tier"]["L2FencedReads"] == 1
    assert race.proxy.counts["GetItem", "consistent"] == 1
    assert race.proxy.counts["GetItem", "eventual"] == 1  # the warm-up's

    await asyncio.sleep(FENCE)  # the late reader's own fence is over: it takes copies
    late = await race.late.get_item(TableName=race.table, Key=KEY)
    assert late["Item"]["v"] == {"S": "new"}
    assert race.late_cache.stats()["Tier"]["L2Hits"] == 1
    assert race.proxy.counts["GetItem", "consistent"] == 1  # no other read went out
    assert race.proxy.counts["GetItem", "eventual"] == 1


async def test_a_secondary_index_page_racing_the_bus_is_shared_only_until_the_fence_ends(
    race: Race,
) -> None:
    query = {
        "TableName": race.table,
        "IndexName": "by_g",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "G"}},
    }
    await race.writer.put_item(TableName=race.table, Item=item("new"))
    # DynamoDB has no consistent read of a GSI: the racer may read the replica's old
    # page, as DynamoDB's own GSI may lag; what matters is how long it is shared.
    await race.racer.query(**query)
    assert race.proxy.counts["Query", "eventual"] == 1
    assert race.racer_cache.stats()["Tier"]["L2FencedReads"] == 0

    await asyncio.sleep(FENCE)  # the replica caught up long ago (LAG < FENCE)
    page = await race.late.query(**query)
    assert [found["v"] for found in page["Items"]] == [{"S": "new"}]
    assert race.late_cache.stats()["Tier"]["L2Hits"] == 0  # the racer's copy had ended
    assert race.proxy.counts["Query", "eventual"] == 2


async def test_a_batch_key_racing_the_bus_reads_its_table_consistently(race: Race) -> None:
    await race.writer.put_item(TableName=race.table, Item=item("new"))
    got = await race.racer.batch_get_item(RequestItems={race.table: {"Keys": [KEY]}})
    assert [found["v"] for found in got["Responses"][race.table]] == [{"S": "new"}]
    assert race.racer_cache.stats()["Tier"]["L2FencedReads"] == 1
    assert race.proxy.counts["BatchGetItem", "consistent"] == 1

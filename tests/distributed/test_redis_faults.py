"""Redis fails, the app does not: killed, restarted empty, silent, slow, frozen.

Every test counts failed reads and writes (none may fail because of Redis), checks
that what DynamoDB acknowledged is what every process ends up serving, and that a
process that could not hear the others stops serving its entries within the bounds
the tier documents (``degraded_ttl`` when it cannot hear; the bus again once back).
Waits are bounded (10-20 s) and far below the 300 s TTL that a process which heard
nothing and bounded nothing would serve its old values for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis

from aiodax.testing import RedisServer, TcpFaultProxy
from tests.distributed.harness import Fleet, Item, Worker, WorkerConfig, eventually, tier_reaches

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

KEY = {"pk": {"S": "k"}}
OLD = {**KEY, "v": {"S": "old"}}
NEW = {**KEY, "v": {"S": "new"}}
OTHER = {"pk": {"S": "other"}}
OTHER_OLD = {**OTHER, "v": {"S": "old"}}
OTHER_NEW = {**OTHER, "v": {"S": "new"}}


def connected(tier: dict[str, Any]) -> bool:
    return bool(tier["BusState"] == "connected")


def degraded(tier: dict[str, Any]) -> bool:
    return bool(tier["BusState"] == "degraded")


async def cached_in(worker: Worker, table: str, item: Item) -> None:
    """``worker`` holds ``item``: its second read is a hit with it."""
    key = {"pk": item["pk"]}
    assert await worker.get(table, key) == item
    again = await worker.call("get_item", TableName=table, Key=key)
    assert (again.get("Item"), again["CacheStatus"]) == (item, "hit")


async def serves(worker: Worker, table: str, item: Item, *, within: float = 10.0) -> None:
    """``worker`` comes to answer ``item`` for its key, and stays there."""
    request = {"TableName": table, "Key": {"pk": item["pk"]}}
    seen = await worker.watch("get_item", request, item, within=within)
    assert seen["reverted"] == 0, worker.name


@pytest.fixture
async def redis_proxy(redis_server: RedisServer) -> AsyncIterator[TcpFaultProxy]:
    """A TCP proxy in front of the test's Redis, for the workers that go through it."""
    async with TcpFaultProxy(redis_server.host, redis_server.port) as proxy:
        yield proxy


# Killed and restarted ---------------------------------------------------------------------


async def test_redis_killed_under_load_and_restarted_empty_fails_nothing_and_all_flush(
    fleet: Fleet, redis_server: RedisServer, raw: DynamoDBClient, table: str
) -> None:
    keys = [{"pk": {"S": f"k{i}"}} for i in range(6)]
    for key in keys:
        await raw.put_item(TableName=table, Item={**key, "v": {"S": "initial"}})
    workers = await fleet.spawn(3)
    for worker in workers:
        await tier_reaches(worker, connected, what="connected")
    for index, worker in enumerate(workers):
        # Each key has one writer, so "the last acknowledged write" of it is defined.
        owned = keys[2 * index : 2 * index + 2]
        await worker.start_load(table, reads=keys, writes=owned, write_every=4)

    async def progress() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(w.load_progress() for w in workers)))

    async def more_writes() -> None:
        """Wait until every worker acknowledged a few more writes."""
        before = [p["writes"] for p in await progress()]
        await eventually(
            progress,
            lambda now: all(p["writes"] >= n + 3 for p, n in zip(now, before, strict=True)),
            what="every worker wrote some more",
        )

    await more_writes()
    redis_server.kill()
    for worker in workers:
        await tier_reaches(worker, degraded, what="degraded")
    await more_writes()  # writes while Redis is gone
    await asyncio.to_thread(redis_server.restart)
    for worker in workers:
        await tier_reaches(
            worker, lambda t: connected(t) and t["BusFlushes"] >= 1, what="back, and flushed"
        )
    await more_writes()
    reports = [await worker.stop_load() for worker in workers]

    for worker, report in zip(workers, reports, strict=True):
        assert (report["failures"], report["errors"]) == (0, []), worker.name
        assert report["reads"] > 0 and report["writes"] > 0
    for index, report in enumerate(reports):
        for key in keys[2 * index : 2 * index + 2]:
            stored = await raw.get_item(TableName=table, Key=key, ConsistentRead=True)
            # No acknowledged write was lost, nor one applied that was not acknowledged.
            assert stored["Item"]["v"]["S"] == report["written"][key["pk"]["S"]]
            for worker in workers:
                await serves(worker, table, stored["Item"])


async def test_while_redis_is_down_a_stale_entry_lives_at_most_the_degraded_ttl(
    fleet: Fleet, config: WorkerConfig, redis_server: RedisServer, raw: DynamoDBClient, table: str
) -> None:
    await raw.put_item(TableName=table, Item=OLD)
    writer, reader = await fleet.spawn(2, config.but(tier={"degraded_ttl": 1.0}))
    await tier_reaches(reader, connected, what="connected")
    await cached_in(reader, table, OLD)

    redis_server.kill()
    await tier_reaches(reader, degraded, what="degraded")
    await writer.put(table, NEW)

    assert (await writer.tier())["OutboxLength"] >= 1
    # The bus cannot tell the reader; its entry must end within degraded_ttl anyway.
    await serves(reader, table, NEW)
    assert (await reader.tier())["DegradedPeriods"] >= 1


# Silent, slow, frozen ------------------------------------------------------------------------


async def test_a_blackholed_process_keeps_serving_degrades_and_sends_its_outbox_on_return(
    fleet: Fleet,
    config: WorkerConfig,
    redis_proxy: TcpFaultProxy,
    raw: DynamoDBClient,
    table: str,
) -> None:
    for item in (OLD, OTHER_OLD):
        await raw.put_item(TableName=table, Item=item)
    options = {"degraded_ttl": 1.0}
    (direct,) = await fleet.spawn(1, config.but(tier=options))
    (partitioned,) = await fleet.spawn(1, config.but(redis=redis_proxy.url("redis"), tier=options))
    for worker in (direct, partitioned):
        await tier_reaches(worker, connected, what="connected")
    await cached_in(partitioned, table, OLD)
    await cached_in(direct, table, OTHER_OLD)

    # The connection stays open and says nothing: no error reaches the client.
    redis_proxy.blackhole()
    assert await partitioned.get(table, KEY) == OLD
    await partitioned.put(table, OTHER_NEW)
    await tier_reaches(partitioned, degraded, what="degraded by silence")
    assert (await partitioned.tier())["OutboxLength"] >= 1
    # What the partitioned process wrote has not reached the other yet...
    held = await direct.call("get_item", TableName=table, Key=OTHER)
    assert (held["Item"], held["CacheStatus"]) == (OTHER_OLD, "hit")
    # ...and what the other writes cannot reach it: its degraded TTL ends the old entry.
    await direct.put(table, NEW)
    await serves(partitioned, table, NEW)

    redis_proxy.pass_through()
    await tier_reaches(
        partitioned, lambda t: connected(t) and t["OutboxLength"] == 0, what="back, outbox sent"
    )
    await serves(direct, table, OTHER_NEW)


async def test_a_slow_redis_delays_invalidations_but_fails_nothing(
    fleet: Fleet,
    config: WorkerConfig,
    redis_proxy: TcpFaultProxy,
    raw: DynamoDBClient,
    table: str,
) -> None:
    keys = [KEY, OTHER]
    for item in (OLD, OTHER_OLD):
        await raw.put_item(TableName=table, Item=item)
    writer, reader = await fleet.spawn(2, config.but(redis=redis_proxy.url("redis")))
    await tier_reaches(reader, connected, what="connected")
    await cached_in(reader, table, OLD)

    # Slower than every timeout of a read's or a write's way to Redis (50 ms).
    redis_proxy.delay(300)
    await reader.start_load(table, reads=keys)
    await writer.start_load(table, reads=keys, writes=[OTHER], write_every=3)
    await writer.put(table, NEW)
    await serves(reader, table, NEW)
    reports = [await reader.stop_load(), await writer.stop_load()]

    for report in reports:
        assert (report["failures"], report["errors"]) == (0, [])
    assert reports[1]["writes"] > 0
    redis_proxy.pass_through()
    last = await raw.get_item(TableName=table, Key=OTHER, ConsistentRead=True)
    await serves(reader, table, last["Item"])


async def test_a_frozen_redis_fails_no_read_or_write_and_the_processes_recover(
    fleet: Fleet, redis_client: aioredis.Redis, raw: DynamoDBClient, table: str
) -> None:
    await raw.put_item(TableName=table, Item=OLD)
    writer, reader = await fleet.spawn(2)
    await tier_reaches(reader, connected, what="connected")
    await cached_in(reader, table, OLD)

    # Every client's commands wait for 2.5 s; connections stay up.
    await redis_client.client_pause(2500, all=True)
    assert await reader.get(table, KEY) == OLD
    await writer.put(table, NEW)
    assert await writer.get(table, KEY) == NEW

    await serves(reader, table, NEW)
    for worker in (writer, reader):
        await tier_reaches(worker, connected, what="connected again")

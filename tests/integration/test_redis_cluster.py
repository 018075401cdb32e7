"""The Redis tier on a Redis Cluster (three masters, a replica each, on loopback): the bus
works across the cluster, and survives a failover of the master holding its slot."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from aiodax.testing.redis_cluster import RedisCluster
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

NAMESPACE = "cluster-test"
BUS = "aiodax:v1:{cluster-test}:bus"
KEY = {"pk": {"S": "a"}}


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as running:
        yield running


Pair = tuple[aiodax.CachedClient, aiodax.CachedClient, aiodax.Cache, aiodax.Cache]


@pytest.fixture
async def pair(cluster: RedisCluster, raw_client: DynamoDBClient) -> AsyncIterator[Pair]:
    tier = aiodax.RedisTier(cluster.url, namespace=NAMESPACE, cluster=True, shared_l2=False)
    async with aiodax.Cache(redis=tier) as writer, aiodax.Cache(redis=tier) as reader:
        yield writer.wrap(raw_client), reader.wrap(raw_client), writer, reader


def item(value: str) -> dict[str, Any]:
    return {"pk": {"S": "a"}, "v": {"S": value}}


async def value_of(client: aiodax.CachedClient, table: str) -> Any:
    found = (await client.get_item(TableName=table, Key=KEY)).get("Item")
    return None if found is None else found["v"]["S"]


async def seen(client: aiodax.CachedClient, table: str, expected: str) -> None:
    for _ in range(1000):
        if await value_of(client, table) == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the reader never served {expected!r}")


async def test_a_write_reaches_the_other_cache_through_a_cluster(
    pair: Pair, raw_client: DynamoDBClient, table: str
) -> None:
    writer, reader, _, reader_cache = pair
    await raw_client.put_item(TableName=table, Item=item("old"))
    assert await value_of(reader, table) == "old"
    await writer.put_item(TableName=table, Item=item("new"))
    await seen(reader, table, "new")
    assert reader_cache.stats()["Tier"]["BusMessagesIn"] == 1


async def test_the_shared_l2_and_its_leases_work_through_a_cluster(
    cluster: RedisCluster, raw_client: DynamoDBClient, table: str
) -> None:
    dynamodb = InstrumentedClient(raw_client)
    tier = aiodax.RedisTier(cluster.url, namespace=NAMESPACE, cluster=True, timeout=1.0)
    async with aiodax.Cache(redis=tier) as first, aiodax.Cache(redis=tier) as second:
        a = first.wrap(cast("DynamoDBClient", dynamodb))
        b = second.wrap(cast("DynamoDBClient", dynamodb))
        await until(
            lambda: all(c.stats()["Tier"]["BusState"] == "connected" for c in (first, second))
        )
        await raw_client.put_item(TableName=table, Item=item("v"))
        held = dynamodb.hold("get_item")
        reads = [asyncio.create_task(value_of(client, table)) for client in (a, b)]

        def total(name: str) -> int:
            return sum(int(cache.stats()["Tier"][name]) for cache in (first, second))

        await until(lambda: total("LeaseWaits") == 1)  # either may win the lease
        held.set()
        assert await asyncio.gather(*reads) == ["v", "v"]
        assert dynamodb.calls["get_item"] == 1
        assert (total("L2Stores"), total("L2Hits")) == (1, 1)


# The failover runs in a process of its own: redis-py's cluster client (8.1) drops the
# killed master from its topology without closing the connections it had open to it,
# and their sockets are collected later, each with a ResourceWarning from redis-py's
# own ``__del__``: in this process, in whichever test came next.  A child process
# keeps them out of the suite; it reports what it saw.


def _through_a_failover(
    cluster_url: str, endpoint: str, table: str, ready: Any, failed_over: Any, results: Any
) -> None:
    import warnings

    warnings.simplefilter("ignore", ResourceWarning)
    scenario = _failover_scenario(cluster_url, endpoint, table, ready, failed_over)
    results.put(asyncio.run(scenario))


async def _failover_scenario(
    cluster_url: str, endpoint: str, table: str, ready: Any, failed_over: Any
) -> dict[str, Any]:
    import aioboto3

    from aiodax.testing.servers import client_kwargs

    tier = aiodax.RedisTier(cluster_url, namespace=NAMESPACE, cluster=True, shared_l2=False)
    errors = 0
    async with (
        aioboto3.Session().client("dynamodb", **client_kwargs(endpoint)) as raw,
        aiodax.Cache(redis=tier) as writer_cache,
        aiodax.Cache(redis=tier) as reader_cache,
    ):
        writer, reader = writer_cache.wrap(raw), reader_cache.wrap(raw)
        await raw.put_item(TableName=table, Item=item("old"))
        first = await value_of(reader, table)
        ready.set()
        loop = asyncio.get_running_loop()
        version = 0
        # Reads and writes go on while the slot's master is gone and its replica takes
        # over (the test kills it meanwhile), and for a second after.
        deadline = loop.time() + 90
        while loop.time() < deadline:
            if failed_over.is_set():
                deadline = min(deadline, loop.time() + 1)
            version += 1
            try:
                await writer.put_item(TableName=table, Item=item(f"during-{version}"))
                await value_of(reader, table)
            except Exception:  # counted: none may fail
                errors += 1
            await asyncio.sleep(0.05)

        def connected() -> bool:
            caches = (writer_cache, reader_cache)
            return all(cache.stats()["Tier"]["BusState"] == "connected" for cache in caches)

        await until(connected, within=15)
        heard_before = reader_cache.stats()["Tier"]["BusMessagesIn"]
        await writer.put_item(TableName=table, Item=item("after"))
        await seen(reader, table, "after")

        def heard() -> bool:
            return bool(reader_cache.stats()["Tier"]["BusMessagesIn"] > heard_before)

        with contextlib.suppress(TimeoutError):
            await until(heard)
        return {
            "first": first,
            "errors": errors,
            "writes": version,
            "outbox": writer_cache.stats()["Tier"]["OutboxLength"],
            "heard_after": reader_cache.stats()["Tier"]["BusMessagesIn"] - heard_before,
        }


async def test_the_bus_survives_a_failover_of_its_master_and_no_request_fails(
    endpoint: str, table: str, cluster: RedisCluster
) -> None:
    context = multiprocessing.get_context("spawn")
    results, ready, failed_over = context.Queue(), context.Event(), context.Event()
    child = context.Process(
        target=_through_a_failover,
        args=(cluster.url, endpoint, table, ready, failed_over, results),
    )
    child.start()
    try:
        assert await asyncio.to_thread(ready.wait, 60), "the child never started"
        await asyncio.sleep(0.5)  # the child is writing and reading by now
        await asyncio.to_thread(cluster.fail_over, BUS)
        failed_over.set()
        found = await asyncio.to_thread(results.get, True, 120)
    finally:
        await asyncio.to_thread(child.join, 30)
        if child.is_alive():
            child.kill()
    assert found["first"] == "old"
    assert found["errors"] == 0
    assert found["writes"] > 10
    assert found["outbox"] == 0
    # A failover shorter than ``liveness`` degrades nothing (by design); either way the
    # bus is back: the reader heard the write made after it.
    assert found["heard_after"] >= 1

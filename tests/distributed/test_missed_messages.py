"""A process that may have missed bus messages drops its whole cache; one that missed
nothing keeps it.

The *listener* reaches Redis through a ``TcpFaultProxy``, so that the test can cut it
off while the *writer* (connected directly) writes, then damage what it would replay:
trim the stream, change the namespace's epoch, or empty Redis.  The listener has two
entries cached: the key written meanwhile, and an unrelated one that nobody wrote.
Only a drop of everything makes the unrelated one a miss.  ``degraded_ttl`` is long
(60 s) here, so that an entry ending by the degraded TTL cannot pass for a drop.

The Redis keys named here are the tier's documented layout (docs/operations.md):
every key of the namespace starts with ``aiodax:v1:{namespace}:``; the bus is its one
stream, the epoch its ``epoch`` key.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis

from aiodax.testing import RedisServer, TcpFaultProxy
from tests.distributed.harness import Fleet, Item, Worker, WorkerConfig, tier_reaches

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

KEY = {"pk": {"S": "k"}}
OLD = {**KEY, "v": {"S": "old"}}
NEW = {**KEY, "v": {"S": "new"}}
UNRELATED = {"pk": {"S": "unrelated"}, "v": {"S": "u"}}
LATER = {"pk": {"S": "later"}, "v": {"S": "l"}}
#: Long enough that no entry ends by the degraded TTL during a test.
LONG_DEGRADED_TTL = 60.0


def connected(tier: dict[str, Any]) -> bool:
    return bool(tier["BusState"] == "connected")


@pytest.fixture
async def listener_proxy(redis_server: RedisServer) -> AsyncIterator[TcpFaultProxy]:
    async with TcpFaultProxy(redis_server.host, redis_server.port) as proxy:
        yield proxy


@pytest.fixture
async def writer_and_listener(
    fleet: Fleet, config: WorkerConfig, listener_proxy: TcpFaultProxy
) -> tuple[Worker, Worker]:
    tier = {"degraded_ttl": LONG_DEGRADED_TTL}
    (writer,) = await fleet.spawn(1, config.but(tier=tier))
    (listener,) = await fleet.spawn(1, config.but(redis=listener_proxy.url("redis"), tier=tier))
    for worker in (writer, listener):
        await tier_reaches(worker, connected, what="connected")
    return writer, listener


async def prepared(writer: Worker, listener: Worker, raw: DynamoDBClient, table: str) -> None:
    """The listener holds ``OLD`` and ``UNRELATED`` and has heard one message."""
    for item in (OLD, UNRELATED):
        await raw.put_item(TableName=table, Item=item)
        await hit(listener, table, item)
    # One message heard, so that a sequence starting over is a gap, not a start.
    await writer.put(table, LATER)
    await tier_reaches(listener, lambda t: t["BusMessagesIn"] >= 1, what="heard a message")


async def hit(worker: Worker, table: str, item: Item) -> None:
    key = {"pk": item["pk"]}
    await worker.get(table, key)
    again = await worker.call("get_item", TableName=table, Key=key)
    assert (again.get("Item"), again["CacheStatus"]) == (item, "hit")


async def dropped_everything(listener: Worker, table: str) -> None:
    """The listener serves the missed write, and its unrelated entry is gone."""
    seen = await listener.watch("get_item", {"TableName": table, "Key": KEY}, NEW)
    assert seen["reverted"] == 0
    unrelated = await listener.call("get_item", TableName=table, Key={"pk": UNRELATED["pk"]})
    assert (unrelated["Item"], unrelated["CacheStatus"]) == (UNRELATED, "miss")
    assert (await listener.tier())["BusFlushes"] >= 1


async def namespace_keys(
    redis: aioredis.Redis, namespace: str, type_: str | None = None
) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"aiodax:v1:{{{namespace}}}:*", _type=type_)]


async def cut_off(proxy: TcpFaultProxy) -> None:
    """Close the listener's connections and refuse it new ones."""
    proxy.refuse()
    proxy.reset_all()


async def test_a_process_away_while_the_stream_was_trimmed_drops_everything_on_return(
    writer_and_listener: tuple[Worker, Worker],
    listener_proxy: TcpFaultProxy,
    redis_client: aioredis.Redis,
    config: WorkerConfig,
    raw: DynamoDBClient,
    table: str,
) -> None:
    writer, listener = writer_and_listener
    await prepared(writer, listener, raw, table)

    await cut_off(listener_proxy)
    await writer.put(table, NEW)
    (stream,) = await namespace_keys(redis_client, config.namespace, "stream")
    await redis_client.xtrim(stream, maxlen=0, approximate=False)
    listener_proxy.pass_through()

    # Nothing is written after its return: what it missed is gone from the stream,
    # and only the sequence number tells.
    await dropped_everything(listener, table)


async def test_a_gap_in_the_sequence_drops_everything(
    writer_and_listener: tuple[Worker, Worker],
    listener_proxy: TcpFaultProxy,
    redis_client: aioredis.Redis,
    config: WorkerConfig,
    raw: DynamoDBClient,
    table: str,
) -> None:
    writer, listener = writer_and_listener
    await prepared(writer, listener, raw, table)

    await cut_off(listener_proxy)
    await writer.put(table, NEW)
    (stream,) = await namespace_keys(redis_client, config.namespace, "stream")
    await redis_client.xtrim(stream, maxlen=0, approximate=False)
    listener_proxy.pass_through()
    await tier_reaches(listener, connected, what="back")
    await writer.put(table, {**LATER, "v": {"S": "after the gap"}})

    await dropped_everything(listener, table)


async def test_redis_losing_its_data_without_a_restart_drops_everything(
    writer_and_listener: tuple[Worker, Worker],
    redis_client: aioredis.Redis,
    raw: DynamoDBClient,
    table: str,
) -> None:
    writer, listener = writer_and_listener
    await prepared(writer, listener, raw, table)

    # A FLUSHALL, or a failover to a replica that had nothing: same server, no data.
    await redis_client.flushall()
    await writer.put(table, NEW)

    await dropped_everything(listener, table)


async def test_a_new_epoch_seen_on_reconnect_drops_everything(
    writer_and_listener: tuple[Worker, Worker],
    listener_proxy: TcpFaultProxy,
    redis_client: aioredis.Redis,
    config: WorkerConfig,
    raw: DynamoDBClient,
    table: str,
) -> None:
    writer, listener = writer_and_listener
    await prepared(writer, listener, raw, table)

    await cut_off(listener_proxy)
    await writer.put(table, NEW)
    epochs = [
        key
        for key in await namespace_keys(redis_client, config.namespace)
        if key.endswith(b":epoch")
    ]
    assert len(epochs) == 1
    await redis_client.set(epochs[0], secrets.token_hex(8))
    listener_proxy.pass_through()

    await dropped_everything(listener, table)


async def test_a_short_disconnect_with_nothing_missed_keeps_the_cache(
    fleet: Fleet,
    config: WorkerConfig,
    listener_proxy: TcpFaultProxy,
    raw: DynamoDBClient,
    table: str,
) -> None:
    # The default bounds: a disconnect must not cost the entries their TTL.
    (writer,) = await fleet.spawn(1)
    (listener,) = await fleet.spawn(1, config.but(redis=listener_proxy.url("redis")))
    for worker in (writer, listener):
        await tier_reaches(worker, connected, what="connected")
    await raw.put_item(TableName=table, Item=UNRELATED)
    await hit(listener, table, UNRELATED)

    # Every connection reset, and reconnecting works at once.
    assert listener_proxy.reset_all() >= 1
    await writer.put(table, LATER)
    await tier_reaches(listener, lambda t: connected(t) and t["BusMessagesIn"] >= 1, what="back")
    # Past every bound a disconnect could have put on the entry (degraded_ttl, 2 s).
    await asyncio.sleep(3)

    again = await listener.call("get_item", TableName=table, Key={"pk": UNRELATED["pk"]})
    assert (again["Item"], again["CacheStatus"]) == (UNRELATED, "hit")
    assert (await listener.tier())["BusFlushes"] == 0

"""The Redis bus between caches: every write and drop in one reaches the others, a cache
that may have missed messages drops everything, and a Redis that fails fails no read or
write.  Two ``Cache`` objects in one process stand for two processes here (each has its
own origin, connections and tasks); tests/distributed/ runs real processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest
import redis.asyncio as redis

import aiodax
from aiodax.testing import RedisServer
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEY = {"pk": {"S": "a"}}
OTHER = {"pk": {"S": "b"}}


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


Pair = tuple[aiodax.CachedClient, aiodax.CachedClient, aiodax.Cache, aiodax.Cache]


@pytest.fixture
async def pair(server: RedisServer, raw_client: DynamoDBClient) -> AsyncIterator[Pair]:
    """Two caches of one namespace: the writer's and the reader's."""
    tier = aiodax.RedisTier(server.url, namespace="bus-test", shared_l2=False, liveness=0.5)
    async with aiodax.Cache(redis=tier) as writer, aiodax.Cache(redis=tier) as reader:
        yield writer.wrap(raw_client), reader.wrap(raw_client), writer, reader


def item(value: str, pk: str = "a") -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": value}}


async def value_of(client: aiodax.CachedClient, table: str, key: dict[str, Any] = KEY) -> Any:
    found = (await client.get_item(TableName=table, Key=key)).get("Item")
    return None if found is None else found["v"]["S"]


async def seen(client: aiodax.CachedClient, table: str, expected: Any) -> None:
    """The reader serves ``expected`` soon (the bus takes milliseconds, bounded here)."""
    for _ in range(500):
        if await value_of(client, table) == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the reader never served {expected!r}")


def tier_stats(cache: aiodax.Cache) -> dict[str, Any]:
    stats: dict[str, Any] = cache.stats()["Tier"]
    return stats


# --------------------------------------------------------- every write kind


WRITES: dict[str, Callable[[aiodax.CachedClient, str], Any]] = {
    "put_item": lambda c, t: c.put_item(TableName=t, Item=item("new")),
    "update_item": lambda c, t: c.update_item(
        TableName=t,
        Key=KEY,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
        ReturnValues="UPDATED_NEW",
    ),
    "delete_item": lambda c, t: c.delete_item(TableName=t, Key=KEY),
    "batch_write_item": lambda c, t: c.batch_write_item(
        RequestItems={t: [{"PutRequest": {"Item": item("new")}}]}
    ),
    "transact_write_items": lambda c, t: c.transact_write_items(
        TransactItems=[{"Put": {"TableName": t, "Item": item("new")}}]
    ),
    "execute_statement": lambda c, t: c.execute_statement(
        Statement=f"UPDATE \"{t}\" SET v = 'new' WHERE pk = 'a'"
    ),
}


@pytest.mark.parametrize("write", sorted(WRITES))
async def test_a_write_through_one_cache_stops_the_other_serving_the_old_item(
    pair: Pair, raw_client: DynamoDBClient, table: str, write: str
) -> None:
    writer, reader, _, reader_cache = pair
    await raw_client.put_item(TableName=table, Item=item("old"))
    assert await value_of(reader, table) == "old"
    await WRITES[write](writer, table)
    await seen(reader, table, None if write == "delete_item" else "new")
    assert tier_stats(reader_cache)["BusMessagesIn"] >= 1


@pytest.mark.parametrize("drop", ["invalidate", "invalidate_table", "clear"])
async def test_a_drop_in_one_cache_drops_the_same_entries_in_the_other(
    pair: Pair, raw_client: DynamoDBClient, table: str, drop: str
) -> None:
    _, reader, writer_cache, _ = pair
    await raw_client.put_item(TableName=table, Item=item("old"))
    assert await value_of(reader, table) == "old"
    await raw_client.put_item(TableName=table, Item=item("new"))  # bypassing both caches
    if drop == "invalidate":
        writer_cache.invalidate(table, KEY)
    elif drop == "invalidate_table":
        writer_cache.invalidate_table(table)
    else:
        writer_cache.clear()
    await seen(reader, table, "new")


async def test_a_write_drops_the_other_cache_s_pages_of_its_partition(
    pair: Pair, raw_client: DynamoDBClient, table: str
) -> None:
    writer, reader, _, _ = pair
    await raw_client.put_item(TableName=table, Item=item("old"))
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "a"}},
    }
    assert (await reader.query(**query))["Items"][0]["v"] == {"S": "old"}
    await writer.put_item(TableName=table, Item=item("new"))
    async with asyncio.timeout(5):
        while (await reader.query(**query))["Items"][0]["v"] != {"S": "new"}:
            await asyncio.sleep(0.01)


async def test_a_cache_s_own_messages_leave_its_write_through_alone(
    pair: Pair, raw_client: DynamoDBClient, table: str
) -> None:
    writer, _, writer_cache, _ = pair
    await writer.put_item(TableName=table, Item=item("mine"))
    await writer.put_item(TableName=table, Item=item("mine", pk="b"))
    await asyncio.sleep(0.3)  # long enough for the bus to bring them back
    assert await value_of(writer, table) == "mine"
    assert writer_cache.stats()["BackendRequests"].get("GetItem", 0) == 0
    assert tier_stats(writer_cache)["BusMessagesOut"] == 2


# ---------------------------------------------------------- missed messages


async def _cache_both(reader: aiodax.CachedClient, raw: DynamoDBClient, table: str) -> None:
    await raw.put_item(TableName=table, Item=item("old"))
    await raw.put_item(TableName=table, Item=item("old", pk="b"))
    await value_of(reader, table)
    await value_of(reader, table, OTHER)
    await raw.put_item(TableName=table, Item=item("new", pk="b"))  # bypassing: unheard of


async def test_a_gap_in_the_bus_s_numbers_makes_the_receiver_drop_everything(
    pair: Pair, raw_client: DynamoDBClient, raw_redis: redis.Redis, table: str
) -> None:
    writer, reader, _, reader_cache = pair
    await _cache_both(reader, raw_client, table)
    await raw_redis.incr("aiodax:v1:{bus-test}:seq")  # a message this process never gets
    await writer.put_item(TableName=table, Item=item("new"))
    await until(lambda: tier_stats(reader_cache)["BusFlushes"] == 1)
    assert await value_of(reader, table, OTHER) == "new"


async def test_a_message_that_does_not_decode_makes_the_receiver_drop_everything(
    pair: Pair, raw_client: DynamoDBClient, raw_redis: redis.Redis, table: str
) -> None:
    _, reader, _, reader_cache = pair
    await _cache_both(reader, raw_client, table)
    seq = await raw_redis.incr("aiodax:v1:{bus-test}:seq")
    await raw_redis.xadd("aiodax:v1:{bus-test}:bus", {"s": seq, "m": b"\x93garbage"})
    await until(lambda: tier_stats(reader_cache)["BusBadMessages"] == 1)
    assert tier_stats(reader_cache)["BusFlushes"] == 1
    assert await value_of(reader, table, OTHER) == "new"


async def test_a_redis_restarted_empty_makes_every_cache_drop_everything(
    pair: Pair, raw_client: DynamoDBClient, server: RedisServer, table: str
) -> None:
    _, reader, _, reader_cache = pair
    await _cache_both(reader, raw_client, table)
    server.restart()
    await until(
        lambda: (
            tier_stats(reader_cache)["BusState"] == "connected"
            and tier_stats(reader_cache)["BusFlushes"] == 1
        ),
        within=10,
    )
    assert await value_of(reader, table, OTHER) == "new"


async def test_a_short_disconnect_with_nothing_lost_costs_nothing(
    pair: Pair, raw_client: DynamoDBClient, raw_redis: redis.Redis, table: str
) -> None:
    writer, reader, _, reader_cache = pair
    await raw_client.put_item(TableName=table, Item=item("old", pk="b"))
    await value_of(reader, table, OTHER)
    await raw_redis.client_kill_filter(_type="normal", skipme=True)
    await writer.put_item(TableName=table, Item=item("new"))
    await seen(reader, table, "new")
    assert tier_stats(reader_cache)["BusFlushes"] == 0
    await value_of(reader, table, OTHER)
    assert reader_cache.stats()["ItemCacheHits"] >= 1


# -------------------------------------------------------------- Redis fails


async def test_with_redis_gone_reads_and_writes_succeed_and_entries_live_briefly(
    pair: Pair, raw_client: DynamoDBClient, server: RedisServer, table: str
) -> None:
    writer, reader, writer_cache, reader_cache = pair
    await raw_client.put_item(TableName=table, Item=item("old"))
    server.kill()
    await writer.put_item(TableName=table, Item=item("new"))  # acknowledged all the same
    await until(lambda: tier_stats(reader_cache)["BusState"] == "degraded", within=5)
    assert await value_of(reader, table) == "new"
    assert tier_stats(reader_cache)["DegradedPeriods"] == 1
    assert tier_stats(writer_cache)["OutboxLength"] >= 1


async def test_what_was_queued_while_redis_was_gone_goes_out_when_it_returns(
    pair: Pair, raw_client: DynamoDBClient, server: RedisServer, table: str
) -> None:
    writer, _, writer_cache, _ = pair
    server.kill()
    await writer.put_item(TableName=table, Item=item("new"))
    assert tier_stats(writer_cache)["OutboxLength"] == 1
    server.restart()
    await until(lambda: tier_stats(writer_cache)["OutboxLength"] == 0, within=10)
    assert tier_stats(writer_cache)["BusMessagesOut"] == 1


async def test_a_full_outbox_merges_into_whole_table_drops(
    server: RedisServer, raw_client: DynamoDBClient, table: str
) -> None:
    tier = aiodax.RedisTier(server.url, namespace="bus-test", outbox_limit=4, liveness=0.5)
    server.kill()
    async with aiodax.Cache(redis=tier) as cache:
        writer = cache.wrap(raw_client)
        for pk in "abcdef":
            await writer.put_item(TableName=table, Item=item("v", pk=pk))
        stats = tier_stats(cache)
        assert stats["OutboxMerged"] == 4
        assert stats["OutboxLength"] == 3  # the table's drop, and the two writes after it


async def test_a_cache_starts_and_closes_while_redis_is_down(
    server: RedisServer, raw_client: DynamoDBClient, table: str
) -> None:
    server.kill()
    tier = aiodax.RedisTier(server.url, namespace="bus-test", liveness=0.3)
    async with aiodax.Cache(redis=tier) as cache:
        assert tier_stats(cache)["BusState"] == "degraded"
        cached = cache.wrap(raw_client)
        await cached.put_item(TableName=table, Item=item("v"))
        assert await value_of(cached, table) == "v"


# ------------------------------------------------------------------ security

#: The least-privilege user of docs/operations.md, for the namespace "bus-test".
ACL_RULES = (
    "on",
    ">secret",
    "~aiodax:v1:{bus-test}:*",
    "&aiodax:v1:{bus-test}:*",
    "+@read",
    "+@write",
    "+@stream",
    "+@scripting",
    "+@pubsub",
    "+@connection",
    "+time",  # the shared cache's scripts read Redis's clock
    "-@dangerous",
)


async def test_the_documented_acl_user_runs_the_bus_of_its_namespace_only(
    server: RedisServer, raw_redis: redis.Redis, raw_client: DynamoDBClient, table: str
) -> None:
    await cast(Any, raw_redis).execute_command("ACL", "SETUSER", "app", *ACL_RULES)
    url = f"redis://app:secret@127.0.0.1:{server.port}/0"
    async with (
        aiodax.Cache(redis=url, namespace="bus-test") as writer_cache,
        aiodax.Cache(redis=url, namespace="bus-test") as reader_cache,
    ):
        reader = reader_cache.wrap(raw_client)
        await raw_client.put_item(TableName=table, Item=item("old"))
        assert await value_of(reader, table) == "old"
        await writer_cache.wrap(raw_client).put_item(TableName=table, Item=item("new"))
        await seen(reader, table, "new")
        assert tier_stats(writer_cache)["BusState"] == "connected"
    tier = aiodax.RedisTier(url, namespace="elsewhere", liveness=0.3)
    async with aiodax.Cache(redis=tier) as outsider:
        assert tier_stats(outsider)["BusState"] == "degraded"


async def test_losing_and_regaining_redis_is_logged_on_the_aiodax_logger(
    pair: Pair, server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, _, reader_cache = pair
    caplog.set_level(logging.INFO, logger="aiodax")
    server.kill()
    await until(lambda: tier_stats(reader_cache)["BusState"] == "degraded", within=5)
    server.restart()
    await until(lambda: tier_stats(reader_cache)["BusState"] == "connected", within=10)
    messages = [record.getMessage() for record in caplog.records if record.name == "aiodax"]
    assert any("unreachable" in message for message in messages)
    assert any("lost messages" in message for message in messages)  # it came back empty
    assert any("is back" in message for message in messages)

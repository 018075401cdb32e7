"""The shared L2 and its leases between caches: a miss in one is answered from Redis in
the other with its TTL counted from the first read, concurrent misses make one DynamoDB
read, a drop between a lease and its fill refuses the fill, nothing that is not a copy
of exactly this load answers it, and Redis failing fails no read.  Two ``Cache``
objects in one process stand for two processes (each has its own connections, lease
tokens and tasks); tests/distributed/ runs real processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, cast

import msgpack
import pytest
import redis.asyncio as redis

import aiodax
from aiodax._engine.sites import site_identity, site_label
from aiodax._tiers.redis.keys import Keys, key_digest, shared_request_digest
from aiodax.testing import InstrumentedClient, RedisServer, TcpFaultProxy
from tests.support import FakeClock, Unprocessing, until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

NAMESPACE = "l2-test"
KEYS = Keys(NAMESPACE)
KEY = {"pk": {"S": "a"}}
ITEM_KEY = ("pk", "S", "a")


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture
def dynamodb(raw_client: DynamoDBClient) -> InstrumentedClient:
    """The DynamoDB every cache here reads, counting the calls that reach it."""
    return InstrumentedClient(raw_client)


def tier(url: str, **options: Any) -> aiodax.RedisTier:
    # A generous timeout: a busy test machine must not turn a Redis step into a miss.
    settings: dict[str, Any] = {"namespace": NAMESPACE, "timeout": 1.0, "liveness": 0.5}
    settings.update(options)
    return aiodax.RedisTier(url, **settings)


class Caches:
    """Caches of one namespace, as several processes would have, around one DynamoDB."""

    def __init__(self, server: RedisServer, dynamodb: Any) -> None:
        self.server = server
        self.dynamodb = dynamodb
        self._stack = AsyncExitStack()

    async def open(
        self, *, url: str | None = None, tier_options: Any = None, **options: Any
    ) -> aiodax.CachedClient:
        redis_tier = tier(url or self.server.url, **(tier_options or {}))
        cache = await self._stack.enter_async_context(aiodax.Cache(redis=redis_tier, **options))
        return cache.wrap(cast("DynamoDBClient", self.dynamodb))

    async def aclose(self) -> None:
        await self._stack.aclose()


@pytest.fixture
async def caches(server: RedisServer, dynamodb: InstrumentedClient) -> AsyncIterator[Caches]:
    opened = Caches(server, dynamodb)
    yield opened
    await opened.aclose()


def stats(client: aiodax.CachedClient) -> dict[str, Any]:
    found: dict[str, Any] = client.cache.stats()["Tier"]
    return found


def item(value: str, pk: str = "a", **more: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": value}, **more}


async def value_of(client: aiodax.CachedClient, table: str, pk: str = "a") -> Any:
    found = (await client.get_item(TableName=table, Key={"pk": {"S": pk}})).get("Item")
    return None if found is None else found["v"]["S"]


async def connected(*clients: aiodax.CachedClient) -> None:
    """The bus of each is up: the shared cache is asked only then."""
    await until(lambda: all(stats(client)["BusState"] == "connected" for client in clients))


def site_of(dynamodb: InstrumentedClient) -> str:
    return site_label(site_identity(cast("Any", dynamodb)))


async def the_copy_field(raw: redis.Redis, table: str, key: tuple[Any, ...] = ITEM_KEY) -> bytes:
    """The field of the one copy of ``key``'s item in Redis."""
    fields = await raw.hkeys(KEYS.item(table, key_digest(key)))
    assert len(fields) == 1, fields
    field = fields[0]
    assert isinstance(field, bytes)
    return field


# ----------------------------------------------------------- shared copies


async def test_a_miss_in_one_cache_is_answered_from_redis_in_the_other(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("old"))
    assert await value_of(a, table) == "old"
    response = await b.get_item(TableName=table, Key=KEY, ReturnConsumedCapacity="TOTAL")
    assert response["Item"] == item("old")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ConsumedCapacity"]["CapacityUnits"] == 0.0  # B spent none
    assert dynamodb.calls["get_item"] == 1
    assert (stats(a)["L2Stores"], stats(b)["L2Hits"]) == (1, 1)


async def test_the_other_cache_counts_the_ttl_from_the_first_read(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    clock = FakeClock()
    a, b = await caches.open(item_ttl=10), await caches.open(item_ttl=10, clock=clock)
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("old"))
    await value_of(a, table)
    await asyncio.sleep(0.5)  # on Redis's clock: B's copy is at least 0.5 s old
    await value_of(b, table)
    clock.advance(9.0)  # under 10 s after A's read on any machine
    await value_of(b, table)
    assert stats(b)["L2Hits"] == 1  # still B's own entry
    clock.advance(0.6)  # 9.6 s after B's read: at least 10.1 s after A's
    await value_of(b, table)
    assert stats(b)["L2Hits"] == 2  # expired here, while Redis's copy lives on
    assert dynamodb.calls["get_item"] == 1


async def test_a_page_is_shared_and_a_write_makes_the_next_page_read_dynamodb(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("old"))
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "a"}},
    }
    assert (await a.query(**query))["Items"] == [item("old")]
    assert (await b.query(**query))["Items"] == [item("old")]
    assert dynamodb.calls["query"] == 1
    await a.put_item(TableName=table, Item=item("new"))
    c = await caches.open()  # a cache that never saw the page: Redis alone decides
    await connected(c)
    assert (await c.query(**query))["Items"] == [item("new")]
    assert dynamodb.calls["query"] == 2
    assert stats(c)["L2Rejected"] == 1  # the old page, read before the write


@pytest.mark.parametrize("drop", ["invalidate", "invalidate_table", "clear"])
async def test_a_drop_voids_the_copies_it_names(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str, drop: str
) -> None:
    a = await caches.open()
    await connected(a)
    await raw_client.put_item(TableName=table, Item=item("old"))
    await value_of(a, table)
    await raw_client.put_item(TableName=table, Item=item("new"))  # bypassing the cache
    cache = a.cache
    if drop == "invalidate":
        cache.invalidate(table, KEY)
    elif drop == "invalidate_table":
        cache.invalidate_table(table)
    else:
        cache.clear()
    await until(lambda: stats(a)["OutboxLength"] == 0)
    # A cache that never heard of the drop, nor fences for it: Redis alone decides.
    b = await caches.open(fill_consistency="eventual")
    await connected(b)
    assert await value_of(b, table) == "new"
    assert dynamodb.calls["get_item"] == 2
    assert stats(b)["L2Hits"] == 0


async def test_every_write_deletes_the_item_s_copies_and_never_sets_one(
    caches: Caches, raw_redis: redis.Redis, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("old"))
    await value_of(a, table)
    copies = KEYS.item(table, key_digest(ITEM_KEY))
    assert await raw_redis.exists(copies) == 1
    await a.put_item(TableName=table, Item=item("new"))
    assert await raw_redis.exists(copies) == 0
    await b.put_item(TableName=table, Item=item("newer", pk="b"))
    assert await raw_redis.exists(KEYS.item(table, key_digest(("pk", "S", "b")))) == 0
    assert (stats(a)["L2Stores"], stats(b)["L2Stores"]) == (1, 0)  # A's read's, alone


# ----------------------------------------------------------------- leases


async def test_concurrent_misses_in_two_caches_read_dynamodb_once(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("v"))
    held = dynamodb.hold("get_item")
    reads = [asyncio.create_task(value_of(client, table)) for client in (a, b) for _ in range(20)]
    await until(lambda: stats(a)["LeaseWaits"] + stats(b)["LeaseWaits"] == 1)
    held.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(*reads) == ["v"] * 40
    assert dynamodb.calls["get_item"] == 1
    assert stats(a)["L2Hits"] + stats(b)["L2Hits"] == 1  # the waiter's one load


async def test_a_write_between_the_lease_and_the_fill_refuses_the_fill(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("old"))
    held = dynamodb.hold("get_item", when="after")  # A has read "old", not heard it yet
    reading = asyncio.create_task(value_of(a, table))
    await until(lambda: dynamodb.answered["get_item"] == 1)
    await b.put_item(TableName=table, Item=item("new"))
    await until(lambda: stats(a)["BusMessagesIn"] == 1)
    held.set()
    assert await reading == "old"  # what DynamoDB said when asked
    assert (stats(a)["L2StaleFills"], stats(a)["L2Stores"]) == (1, 0)
    c = await caches.open()
    await connected(c)
    assert await value_of(c, table) == "new"
    assert await value_of(a, table) == "new"  # A did not keep what it read either


async def test_a_holder_that_never_fills_costs_the_others_one_lease_time(
    caches: Caches,
    dynamodb: InstrumentedClient,
    raw_redis: redis.Redis,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    b = await caches.open(tier_options={"lease_time": 0.3})
    await connected(b)
    await raw_client.put_item(TableName=table, Item=item("v"))
    request = {"TableName": table, "Key": KEY}
    lease = KEYS.lease(shared_request_digest(site_of(dynamodb), "get_item", request))
    # What a holder killed with SIGKILL leaves behind: its lease, until it expires.
    await raw_redis.set(lease, "dead holder", px=300)
    started = time.monotonic()
    assert await value_of(b, table) == "v"
    assert time.monotonic() - started >= 0.2
    assert (stats(b)["LeaseWaits"], stats(b)["LeaseTakeovers"]) == (1, 1)
    assert dynamodb.calls["get_item"] == 1


async def test_a_cancelled_holder_gives_its_lease_up_at_once(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a = await caches.open(tier_options={"lease_time": 30})
    b = await caches.open(tier_options={"lease_time": 30})
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("v"))
    held = dynamodb.hold("get_item")
    holder = asyncio.create_task(value_of(a, table))
    await until(lambda: dynamodb.in_flight["get_item"] == 1)
    waiter = asyncio.create_task(value_of(b, table))
    await until(lambda: stats(b)["LeaseWaits"] == 1)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    async with asyncio.timeout(5):  # far less than the lease's 30 s
        assert await waiter == "v"
    assert stats(b)["LeaseTakeovers"] == 1
    held.set()


async def test_a_paused_holder_s_late_fill_is_refused(
    caches: Caches,
    dynamodb: InstrumentedClient,
    raw_redis: redis.Redis,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    a = await caches.open(tier_options={"lease_time": 30})
    await connected(a)
    await raw_client.put_item(TableName=table, Item=item("v"))
    held = dynamodb.hold("get_item", when="after")
    reading = asyncio.create_task(value_of(a, table))
    await until(lambda: dynamodb.answered["get_item"] == 1)
    [lease] = [key async for key in raw_redis.scan_iter(match=KEYS.lease("*"))]
    # A's lease expired while it was paused, and another process took it.
    await raw_redis.set(lease, "another holder", px=30_000)
    held.set()
    assert await reading == "v"
    assert (stats(a)["L2StaleFills"], stats(a)["L2Stores"]) == (1, 0)
    assert await raw_redis.exists(KEYS.item(table, key_digest(ITEM_KEY))) == 0


async def test_a_dynamodb_error_reaches_the_caller_unchanged_and_nothing_is_stored(
    caches: Caches,
    dynamodb: InstrumentedClient,
    raw_redis: redis.Redis,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    a = await caches.open()
    await connected(a)
    await raw_client.put_item(TableName=table, Item=item("v"))
    dynamodb.fail("get_item", "ValidationException")
    with pytest.raises(raw_client.exceptions.ClientError) as raised:
        await value_of(a, table)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    await until(lambda: a.cache.stats()["InFlight"] == 0)
    assert [key async for key in raw_redis.scan_iter(match=KEYS.prefix + "[il]:*")] == []
    assert await value_of(a, table) == "v"


# ------------------------------------------------------------ BatchGetItem


def batch_keys(table: str, *pks: str) -> dict[str, Any]:
    return {table: {"Keys": [{"pk": {"S": pk}} for pk in pks]}}


def batch_values(response: dict[str, Any], table: str) -> list[str]:
    return sorted(found["v"]["S"] for found in response["Responses"][table])


async def test_a_batch_takes_the_copies_there_are_and_reads_only_the_other_keys(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    for pk in "abc":
        await raw_client.put_item(TableName=table, Item=item(pk, pk=pk))
    await value_of(a, table, "a")  # a GetItem's copy answers a batch's key too
    response = await b.batch_get_item(RequestItems=batch_keys(table, "a", "b", "c", "z"))
    assert batch_values(response, table) == ["a", "b", "c"]
    [(_, sent)] = [call for call in dynamodb.requests if call[0] == "batch_get_item"]
    assert sorted(key["pk"]["S"] for key in sent["RequestItems"][table]["Keys"]) == ["b", "c", "z"]
    assert (stats(b)["L2Hits"], stats(b)["L2Stores"]) == (1, 3)  # z's absence is shared too
    c = await caches.open()
    await connected(c)
    response = await c.batch_get_item(RequestItems=batch_keys(table, "a", "b", "c", "z"))
    assert batch_values(response, table) == ["a", "b", "c"]
    assert dynamodb.calls["batch_get_item"] == 1
    assert stats(c)["L2Hits"] == 4


async def test_concurrent_batches_in_two_caches_read_each_key_once(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    for pk in "abcd":
        await raw_client.put_item(TableName=table, Item=item(pk, pk=pk))
    held = dynamodb.hold("batch_get_item")
    first = asyncio.create_task(a.batch_get_item(RequestItems=batch_keys(table, "a", "b", "c")))
    await until(lambda: dynamodb.in_flight["batch_get_item"] == 1)
    second = asyncio.create_task(b.batch_get_item(RequestItems=batch_keys(table, "b", "c", "d")))
    await until(lambda: stats(b)["LeaseWaits"] == 2)  # b and c: A holds them
    held.set()
    async with asyncio.timeout(5):
        assert batch_values(await first, table) == ["a", "b", "c"]
        assert batch_values(await second, table) == ["b", "c", "d"]
    sent = [call[1] for call in dynamodb.requests if call[0] == "batch_get_item"]
    read = sorted(
        key["pk"]["S"] for request in sent for key in request["RequestItems"][table]["Keys"]
    )
    assert read == ["a", "b", "c", "d"]


async def test_a_batch_s_unprocessed_keys_are_not_shared_and_are_read_again(
    caches: Caches, raw_client: DynamoDBClient, table: str
) -> None:
    refusing = Unprocessing(raw_client, refusals=1)
    caches.dynamodb = refusing
    a = await caches.open()
    await connected(a)
    for pk in "ab":
        await raw_client.put_item(TableName=table, Item=item(pk, pk=pk))
    response = await a.batch_get_item(RequestItems=batch_keys(table, "a", "b"))
    assert batch_values(response, table) == ["a", "b"]
    assert refusing.calls["batch_get_item"] == 2
    assert stats(a)["L2Stores"] == 2  # the second read's; the first left both unprocessed
    assert stats(a)["LeaseTakeovers"] == 0  # the first read's leases were given up


# ------------------------------------------------------ what a copy answers


async def _replace_copy(raw: redis.Redis, table: str, value: bytes) -> None:
    field = await the_copy_field(raw, table)
    await raw.hset(KEYS.item(table, key_digest(ITEM_KEY)), field, value)


@pytest.mark.parametrize("corruption", ["garbage", "version", "shape", "foreign"])
async def test_a_corrupt_or_foreign_copy_is_a_miss_never_an_answer(
    caches: Caches,
    dynamodb: InstrumentedClient,
    raw_redis: redis.Redis,
    raw_client: DynamoDBClient,
    table: str,
    corruption: str,
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("a"))
    await raw_client.put_item(TableName=table, Item=item("b", pk="b"))
    await value_of(a, table)
    await value_of(a, table, "b")
    other = KEYS.item(table, key_digest(("pk", "S", "b")))
    copy = await raw_redis.hget(other, await the_copy_field(raw_redis, table, ("pk", "S", "b")))
    assert isinstance(copy, bytes)
    fields = msgpack.unpackb(copy, raw=False)
    if corruption == "garbage":
        value = b"\x9b\x01garbage"
    elif corruption == "version":
        fields[0] = 99
        value = msgpack.packb(fields, use_bin_type=True)
    elif corruption == "shape":
        fields[10] = {"Item": {"pk": {"S": "a"}, "v": {"S": 1}}}
        value = msgpack.packb(fields, use_bin_type=True)
    else:
        value = copy  # item b's copy, under item a's key
    await _replace_copy(raw_redis, table, value)
    assert await value_of(b, table) == "a"
    assert stats(b)["L2Rejected"] == 1
    assert dynamodb.calls["get_item"] == 3


async def test_an_answer_bigger_than_the_limit_is_not_shared_and_nobody_queues_for_it(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    a = await caches.open(tier_options={"max_value_bytes": 1024})
    b = await caches.open(tier_options={"max_value_bytes": 1024})
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("big", blob={"S": "x" * 2048}))
    await raw_client.put_item(TableName=table, Item=item("small", pk="b"))
    assert await value_of(a, table) == "big"
    assert await value_of(b, table) == "big"
    assert dynamodb.calls["get_item"] == 2
    assert stats(a)["L2TooBig"] == 1
    assert (stats(b)["L2Hits"], stats(b)["LeaseWaits"]) == (0, 0)
    assert await value_of(a, table, "b") == "small"
    assert await value_of(b, table, "b") == "small"
    assert dynamodb.calls["get_item"] == 3  # a small item is shared all the same


async def test_a_consistent_fill_is_never_answered_by_an_eventually_consistent_copy(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    eventual = await caches.open()
    strong = await caches.open(fill_consistency="strong")
    another = await caches.open(fill_consistency="strong")
    await connected(eventual, strong, another)
    await raw_client.put_item(TableName=table, Item=item("v"))
    await value_of(eventual, table)
    assert await value_of(strong, table) == "v"
    assert dynamodb.calls["get_item"] == 2
    assert dynamodb.requests[-1][1]["ConsistentRead"] is True
    # The consistent read's copy, under the same generations, answers a fenced fill.
    assert await value_of(another, table) == "v"
    assert dynamodb.calls["get_item"] == 2
    assert stats(another)["L2Hits"] == 1


async def test_another_cache_s_write_fences_the_fills_here_against_eventual_copies(
    caches: Caches, dynamodb: InstrumentedClient, raw_client: DynamoDBClient, table: str
) -> None:
    writer, eventual, fenced = (
        await caches.open(),
        await caches.open(fill_consistency="eventual"),
        await caches.open(),
    )
    await connected(writer, eventual, fenced)
    await writer.put_item(TableName=table, Item=item("new"))
    await until(lambda: stats(fenced)["BusMessagesIn"] == 1)
    await value_of(eventual, table)  # an eventually consistent copy, read after the write
    assert await value_of(fenced, table) == "new"
    assert dynamodb.calls["get_item"] == 2
    assert dynamodb.requests[-1][1]["ConsistentRead"] is True


# ---------------------------------------------------------- Redis failing


async def test_with_redis_killed_every_read_still_answers(
    caches: Caches,
    dynamodb: InstrumentedClient,
    server: RedisServer,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    a, b = await caches.open(), await caches.open()
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("v"))
    await raw_client.put_item(TableName=table, Item=item("w", pk="b"))
    await value_of(a, table)
    server.kill()
    assert await value_of(b, table) == "v"  # before the bus has noticed
    await until(lambda: stats(b)["BusState"] == "degraded")
    assert await value_of(b, table, "b") == "w"  # after: Redis is not asked
    assert stats(b)["L2Errors"] <= 1  # the first read's, unless the bus was quicker


async def test_a_redis_that_answers_nothing_costs_a_read_its_timeout_then_nothing(
    caches: Caches, server: RedisServer, raw_client: DynamoDBClient, table: str
) -> None:
    async with TcpFaultProxy(server.host, server.port) as proxy:
        # liveness is long: the shared cache's own breaker, not the bus, stops asking.
        a = await caches.open(
            url=proxy.url("redis"), tier_options={"timeout": 0.05, "liveness": 5.0}
        )
        await connected(a)
        for pk in "abcdefgh":
            await raw_client.put_item(TableName=table, Item=item(pk, pk=pk))
        proxy.blackhole()  # a silent partition: sockets open, nothing answers
        started = time.monotonic()
        assert [await value_of(a, table, pk) for pk in "abcdefgh"] == list("abcdefgh")
        elapsed = time.monotonic() - started
        assert stats(a)["L2Errors"] == 5  # then the breaker skips Redis
        assert elapsed < 5.0
        proxy.pass_through()
        await caches.aclose()


# ------------------------------------------------------------------ security

#: The least-privilege user of docs/operations.md, for this namespace.
ACL_RULES = (
    "on",
    ">secret",
    f"~aiodax:v1:{{{NAMESPACE}}}:*",
    f"&aiodax:v1:{{{NAMESPACE}}}:*",
    "+@read",
    "+@write",
    "+@stream",
    "+@scripting",
    "+@pubsub",
    "+@connection",
    "+time",
    "-@dangerous",
)


async def test_the_documented_acl_user_runs_the_shared_cache_and_its_leases(
    caches: Caches,
    dynamodb: InstrumentedClient,
    server: RedisServer,
    raw_redis: redis.Redis,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await raw_redis.execute_command("ACL", "SETUSER", "app", *ACL_RULES)  # type: ignore[no-untyped-call]
    url = f"redis://app:secret@{server.host}:{server.port}/0"
    a, b = await caches.open(url=url), await caches.open(url=url)
    await connected(a, b)
    await raw_client.put_item(TableName=table, Item=item("v"))
    held = dynamodb.hold("get_item")
    reads = [asyncio.create_task(value_of(client, table)) for client in (a, b)]
    await until(lambda: stats(a)["LeaseWaits"] + stats(b)["LeaseWaits"] == 1)
    held.set()
    assert await asyncio.gather(*reads) == ["v", "v"]
    assert dynamodb.calls["get_item"] == 1
    assert stats(a)["L2Errors"] + stats(b)["L2Errors"] == 0

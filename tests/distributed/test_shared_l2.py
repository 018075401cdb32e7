"""The shared cache and its leases: one DynamoDB read for a key, however many processes.

DynamoDB's reads are counted at the ``CountingProxy`` every worker talks to, never by
aiodax's counters.  A *lease* makes the first process that misses a key the only one
that reads it; the others wait for its fill.  A holder killed with SIGKILL costs one
more read (after the lease time), and a corrupt or foreign copy in Redis is a miss.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
import redis.asyncio as aioredis

from aiodax.testing import CountingProxy
from tests.distributed.harness import (
    Background,
    Fleet,
    Item,
    Worker,
    WorkerConfig,
    WorkerGone,
    eventually,
    tier_reaches,
)

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

KEY = {"pk": {"S": "hot"}}
OTHER_KEY = {"pk": {"S": "other"}}


def item(key: Item, text: str) -> Item:
    return {**key, "v": {"S": text}}


async def all_connected(workers: list[Worker]) -> None:
    for worker in workers:
        await tier_reaches(worker, lambda t: t["BusState"] == "connected", what="connected")


async def test_a_stampede_of_four_processes_reads_dynamodb_once(
    fleet: Fleet, dynamodb: CountingProxy, raw: DynamoDBClient, table: str
) -> None:
    hot = item(KEY, "x")
    await raw.put_item(TableName=table, Item=hot)
    workers = await fleet.spawn(4)
    await all_connected(workers)

    results = await asyncio.gather(*(w.stampede(table, KEY, 200) for w in workers))

    for result in results:
        assert result == {"served": 200, "items": [hot], "errors": []}
    assert dynamodb.count("GetItem", table=table) == 1


async def test_later_processes_are_answered_from_the_shared_copy(
    fleet: Fleet, dynamodb: CountingProxy, raw: DynamoDBClient, table: str
) -> None:
    hot = item(KEY, "x")
    await raw.put_item(TableName=table, Item=hot)
    workers = await fleet.spawn(3)
    await all_connected(workers)

    for worker in workers:
        assert await worker.get(table, KEY) == hot

    assert dynamodb.count("GetItem", table=table) == 1


async def test_a_stampede_of_one_query_page_reads_dynamodb_once(
    fleet: Fleet, dynamodb: CountingProxy, raw: DynamoDBClient, sorted_table: str
) -> None:
    rows = [{"pk": {"S": "p"}, "sk": {"S": str(n)}} for n in range(3)]
    for row in rows:
        await raw.put_item(TableName=sorted_table, Item=row)
    request = {
        "TableName": sorted_table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p"}},
    }
    workers = await fleet.spawn(3)
    await all_connected(workers)

    async def stampede(worker: Worker) -> list[Any]:
        return list(await asyncio.gather(*(worker.call("query", **request) for _ in range(20))))

    answers = await asyncio.gather(*(stampede(w) for w in workers))

    assert all(answer["Items"] == rows for batch in answers for answer in batch)
    assert dynamodb.count("Query", table=sorted_table) == 1


async def test_a_stampede_of_one_batch_get_reads_each_key_once(
    fleet: Fleet, dynamodb: CountingProxy, raw: DynamoDBClient, table: str
) -> None:
    keys = [{"pk": {"S": f"b{n}"}} for n in range(3)]
    for key in keys:
        await raw.put_item(TableName=table, Item=item(key, "x"))
    request = {"RequestItems": {table: {"Keys": keys}}}
    workers = await fleet.spawn(3)
    await all_connected(workers)

    async def stampede(worker: Worker) -> list[Any]:
        calls = (worker.call("batch_get_item", **request) for _ in range(20))
        return list(await asyncio.gather(*calls))

    answers = await asyncio.gather(*(stampede(w) for w in workers))

    expected = sorted((item(key, "x") for key in keys), key=str)
    for batch in answers:
        for answer in batch:
            assert sorted(answer["Responses"][table], key=str) == expected
    # However the keys were split between processes' requests, each was read once.
    assert dynamodb.keys_read(table=table) == len(keys)


async def test_a_lease_holder_killed_costs_at_most_one_more_read_and_the_others_are_served(
    fleet: Fleet, config: WorkerConfig, dynamodb: CountingProxy, raw: DynamoDBClient, table: str
) -> None:
    hot = item(KEY, "x")
    await raw.put_item(TableName=table, Item=hot)
    holder, *waiters = await fleet.spawn(4, config.but(tier={"lease_time": 1.0}))
    await all_connected([holder, *waiters])

    async with Background() as background:
        # The holder's read reaches DynamoDB; its answer never reaches the holder.
        await holder.hold("get_item", when="after")
        holding = background.start(holder.get(table, KEY))
        await _reads(dynamodb, table, 1)
        waiting = [background.start(w.stampede(table, KEY, 50)) for w in waiters]
        for waiter in waiters:
            await tier_reaches(
                waiter, lambda t: t.get("LeaseWaits", 0) >= 1, what="waiting for the lease"
            )
        assert dynamodb.count("GetItem", table=table) == 1
        assert not any(task.done() for task in waiting)

        holder.kill()
        results = await asyncio.gather(*waiting)

        with pytest.raises(WorkerGone):
            await holding
    for result in results:
        assert result == {"served": 50, "items": [hot], "errors": []}
    assert dynamodb.count("GetItem", table=table) == 2


async def _reads(dynamodb: CountingProxy, table: str, count: int) -> None:
    async with asyncio.timeout(10):
        while dynamodb.count("GetItem", table=table) < count:
            await asyncio.sleep(0.005)


# Corrupt and foreign copies ---------------------------------------------------------------


async def copies_holding(
    redis: aioredis.Redis, namespace: str, needle: bytes
) -> list[tuple[bytes, bytes | None, bytes]]:
    """Every value of the namespace holding ``needle``: (key, hash field or None, value)."""
    found: list[tuple[bytes, bytes | None, bytes]] = []
    async for key in redis.scan_iter(match=f"aiodax:v1:{{{namespace}}}:*"):
        kind = await redis.type(key)
        if kind == b"hash":
            fields = await redis.hgetall(key)
            found.extend(
                (key, _bytes(f), _bytes(v)) for f, v in fields.items() if needle in _bytes(v)
            )
        elif kind == b"string":
            value = await redis.get(key)
            if value is not None and needle in _bytes(value):
                found.append((key, None, _bytes(value)))
    return found


def _bytes(value: bytes | str) -> bytes:
    # The client is built without decode_responses: this is for the type checker.
    return value if isinstance(value, bytes) else value.encode()


async def overwrite(redis: aioredis.Redis, key: bytes, field: bytes | None, value: bytes) -> None:
    """Replace a copy in place, keeping its expiry."""
    if field is None:
        await redis.set(key, value, keepttl=True)
    else:
        await redis.hset(key, field, value)


CORRUPTIONS = ["garbage bytes", "msgpack of another shape", "another key's copy"]


@pytest.mark.parametrize("corruption", CORRUPTIONS)
async def test_a_corrupt_or_foreign_shared_copy_is_a_miss_never_an_answer(
    corruption: str,
    fleet: Fleet,
    config: WorkerConfig,
    dynamodb: CountingProxy,
    raw: DynamoDBClient,
    redis_client: aioredis.Redis,
    table: str,
) -> None:
    needle, other_needle = (f"needle-{uuid.uuid4().hex}" for _ in range(2))
    hot, other = item(KEY, needle), item(OTHER_KEY, other_needle)
    for stored in (hot, other):
        await raw.put_item(TableName=table, Item=stored)
    filler, reader = await fleet.spawn(2)
    await all_connected([filler, reader])
    assert await filler.get(table, KEY) == hot
    assert await filler.get(table, OTHER_KEY) == other
    # A fill may reach Redis just after its callers were answered.
    copies, other_copies = await eventually(
        lambda: asyncio.gather(
            copies_holding(redis_client, config.namespace, needle.encode()),
            copies_holding(redis_client, config.namespace, other_needle.encode()),
        ),
        lambda found: all(found),
        what="the filler left shared copies of both items in Redis",
    )
    replacement = {
        "garbage bytes": b"\x00\xffnot msgpack\xc1",
        "msgpack of another shape": msgpack.packb({"Item": {"pk": {"S": "hot"}}, "v": 1}),
        "another key's copy": other_copies[0][2],
    }[corruption]

    for key, field, _ in copies:
        await overwrite(redis_client, key, field, replacement)
    reads = dynamodb.count("GetItem", table=table)
    answer = await reader.call("get_item", TableName=table, Key=KEY)

    assert answer["Item"] == hot
    assert dynamodb.count("GetItem", table=table) == reads + 1

"""The query cache (Query, Scan and their paginators) and its invalidation by writes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import strip_metadata, until

if TYPE_CHECKING:
    from aiobotocore.paginate import AioPageIterator
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable


def item(pk: str, sk: int, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, **extra}


def query(table: str, pk: str, **extra: Any) -> dict[str, Any]:
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": pk}},
        **extra,
    }


@pytest.fixture
async def orders(make_table: MakeTable, raw_client: DynamoDBClient) -> str:
    """Partitions A and B with 6 items each, and a GSI on ``status``."""
    table = await make_table(
        hash_key=("pk", "S"),
        range_key=("sk", "N"),
        gsis=[("by-status", ("status", "S"), ("sk", "N"))],
    )
    for pk in ("A", "B"):
        for sk in range(6):
            status = "open" if sk % 2 else "done"
            await raw_client.put_item(
                TableName=table, Item=item(pk, sk, status={"S": status}, n={"N": str(sk)})
            )
    return table


def reads(table: str) -> list[tuple[str, dict[str, Any]]]:
    """Every kind of cached read the write tests check against DynamoDB."""
    return [
        ("query", query(table, "A")),
        ("query", query(table, "A", ScanIndexForward=False, Limit=2)),
        (
            "query",
            query(
                table,
                "A",
                FilterExpression="#n > :min",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":p": {"S": "A"}, ":min": {"N": "2"}},
            ),
        ),
        (
            "query",
            query(
                table, "B", ProjectionExpression="sk, #s", ExpressionAttributeNames={"#s": "status"}
            ),
        ),
        ("scan", {"TableName": table}),
        (
            "query",
            {
                "TableName": table,
                "IndexName": "by-status",
                "KeyConditionExpression": "#s = :s",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":s": {"S": "open"}},
            },
        ),
    ]


async def assert_pages_agree(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str
) -> None:
    for operation, request in reads(table):
        direct = await getattr(raw_client, operation)(**request)
        through_cache = await getattr(cached, operation)(**request)
        assert normalized(through_cache) == normalized(direct), (operation, request)
    pages = [
        p
        async for p in cast(
            "AioPageIterator[Any]",
            cached.get_paginator("query").paginate(**query(table, "A", Limit=2)),
        )
    ]
    direct_pages = [
        p async for p in raw_client.get_paginator("query").paginate(**query(table, "A", Limit=2))
    ]
    assert [normalized(p) for p in pages] == [normalized(p) for p in direct_pages]


def normalized(page: Mapping[str, Any]) -> dict[str, Any]:
    """A page without metadata; a scan's item order is DynamoDB's to choose."""
    page = strip_metadata(page)
    if "Items" in page:
        page["Items"] = sorted(
            page["Items"], key=lambda i: (i.get("pk", {}).get("S", ""), i["sk"]["N"])
        )
    return page


async def test_repeated_query_and_scan_are_served_from_cache(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    orders: str,
) -> None:
    for operation, request in reads(orders):
        direct = await getattr(raw_client, operation)(**request)
        for _ in range(3):
            assert normalized(await getattr(cached, operation)(**request)) == normalized(direct)
    assert instrumented.calls["query"] == 5
    assert instrumented.calls["scan"] == 1
    stats = cached.cache.stats()
    assert (stats["QueryCacheHits"], stats["QueryCacheMisses"]) == (10, 5)
    assert (stats["ScanCacheHits"], stats["ScanCacheMisses"]) == (2, 1)


async def test_identical_concurrent_queries_send_one_request(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    pages = await asyncio.gather(*(cached.query(**query(orders, "A")) for _ in range(200)))

    assert instrumented.calls["query"] == 1
    assert all(p["Items"] == pages[0]["Items"] for p in pages)
    assert len(pages[0]["Items"]) == 6


async def test_empty_results_are_cached(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    for _ in range(2):
        page = await cached.query(**query(orders, "nobody"))
        assert (page["Items"], page["Count"]) == ([], 0)
    assert instrumented.calls["query"] == 1


async def test_consistent_reads_always_reach_dynamodb(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    for _ in range(2):
        await cached.query(**query(orders, "A", ConsistentRead=True))
        await cached.scan(TableName=orders, ConsistentRead=True)
    assert (instrumented.calls["query"], instrumented.calls["scan"]) == (2, 2)


async def test_query_ttl(raw_client: DynamoDBClient, orders: str, clock: Any) -> None:
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache(query_ttl=5, clock=clock) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        await cached.query(**query(orders, "A"))
        clock.advance(4.9)
        await cached.query(**query(orders, "A"))
        assert instrumented.calls["query"] == 1
        clock.advance(0.1)
        await cached.query(**query(orders, "A"))
        assert instrumented.calls["query"] == 2
    async with aiodax.Cache(query_ttl=0) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        await cached.query(**query(orders, "A"))
        await cached.query(**query(orders, "A"))
        assert instrumented.calls["query"] == 4


async def test_fingerprints_ignore_map_order_and_respect_types(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    names = {"#a": "n", "#b": "status"}
    base = query(orders, "A", ProjectionExpression="#a, #b", ExpressionAttributeNames=names)
    reordered = {
        "ExpressionAttributeNames": dict(reversed(names.items())),
        **{k: v for k, v in reversed(base.items()) if k != "ExpressionAttributeNames"},
    }
    await cached.query(**base)
    await cached.query(**reordered)
    await cached.query(**base, ReturnConsumedCapacity="TOTAL")  # not part of the key
    assert instrumented.calls["query"] == 1

    await cached.query(**base, Limit=1)
    await cached.query(**base, Limit=2)
    await cached.query(**base, ScanIndexForward=False)
    await cached.query(**{**base, "ExpressionAttributeValues": {":p": {"S": "B"}}})
    assert instrumented.calls["query"] == 5


async def test_a_write_in_partition_b_keeps_partition_a_cached(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    await cached.query(**query(orders, "A"))
    await cached.query(**query(orders, "B"))

    await cached.put_item(TableName=orders, Item=item("B", 9))
    await cached.query(**query(orders, "A"))
    page_b = await cached.query(**query(orders, "B"))

    assert instrumented.calls["query"] == 3  # only B was read again
    assert page_b["Count"] == 7


WRITES = ["put", "update_gsi_attribute", "delete", "batch_write", "transaction"]


async def write(cached: aiodax.CachedClient, table: str, kind: str) -> None:
    if kind == "put":
        await cached.put_item(TableName=table, Item=item("A", 10, status={"S": "open"}))
    elif kind == "update_gsi_attribute":
        await cached.update_item(
            TableName=table,
            Key={"pk": {"S": "A"}, "sk": {"N": "1"}},
            UpdateExpression="SET #s = :done, n = :n",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": {"S": "done"}, ":n": {"N": "100"}},
        )
    elif kind == "delete":
        await cached.delete_item(TableName=table, Key={"pk": {"S": "A"}, "sk": {"N": "3"}})
    elif kind == "batch_write":
        await cached.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": item("A", 11, status={"S": "open"})}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "B"}, "sk": {"N": "0"}}}},
                ]
            }
        )
    else:
        await cached.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item("B", 12, status={"S": "open"})}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "A"}, "sk": {"N": "5"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "50"}},
                    }
                },
            ]
        )


@pytest.mark.parametrize("kind", WRITES)
@pytest.mark.parametrize("mode", ["partition", "table"])
async def test_every_cached_read_agrees_with_dynamodb_after_a_write(
    raw_client: DynamoDBClient, orders: str, kind: str, mode: str
) -> None:
    async with aiodax.Cache(query_invalidation=mode) as cache:
        cached = cache.wrap(raw_client)
        await assert_pages_agree(cached, raw_client, orders)  # fills the cache

        await write(cached, orders, kind)

        await assert_pages_agree(cached, raw_client, orders)


async def test_none_mode_is_daxs_behaviour_stale_until_ttl(
    raw_client: DynamoDBClient, orders: str, clock: Any
) -> None:
    async with aiodax.Cache(query_invalidation="none", query_ttl=60, clock=clock) as cache:
        cached = cache.wrap(raw_client)
        before = await cached.query(**query(orders, "A"))

        await cached.put_item(TableName=orders, Item=item("A", 10))
        stale = await cached.query(**query(orders, "A"))
        clock.advance(60)
        fresh = await cached.query(**query(orders, "A"))

        assert stale["Items"] == before["Items"]
        assert fresh["Count"] == before["Count"] + 1
        # the item cache is still written through in this mode
        got = await cached.get_item(TableName=orders, Key={"pk": {"S": "A"}, "sk": {"N": "10"}})
        assert got["Item"] == item("A", 10)


async def test_table_mode_drops_every_page_of_the_table(
    raw_client: DynamoDBClient, orders: str
) -> None:
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache(query_invalidation="table") as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        await cached.query(**query(orders, "A"))
        await cached.put_item(TableName=orders, Item=item("B", 10))
        await cached.query(**query(orders, "A"))
        assert instrumented.calls["query"] == 2


async def test_a_page_read_overlapping_a_write_is_not_stored(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    orders: str,
) -> None:
    await cached.query(**query(orders, "B"))  # learns the key schema first
    release = instrumented.hold("query", when="after")
    slow = asyncio.create_task(cached.query(**query(orders, "A")))
    await until(lambda: instrumented.answered["query"] == 2)

    await cached.put_item(TableName=orders, Item=item("A", 10))
    release.set()
    overlapping = await slow
    after = await cached.query(**query(orders, "A"))

    assert overlapping["Count"] == 6
    assert after["Count"] == 7


async def test_paginator_pages_are_cached(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    orders: str,
) -> None:
    request = query(orders, "A", Limit=2)
    direct = [p async for p in raw_client.get_paginator("query").paginate(**request)]
    first = [
        p
        async for p in cast(
            "AioPageIterator[Any]", cached.get_paginator("query").paginate(**request)
        )
    ]
    sent = instrumented.calls["query"]
    second = [
        p
        async for p in cast(
            "AioPageIterator[Any]", cached.get_paginator("query").paginate(**request)
        )
    ]
    scanned = [
        p
        async for p in cast(
            "AioPageIterator[Any]", cached.get_paginator("scan").paginate(TableName=orders, Limit=5)
        )
    ]

    assert [normalized(p) for p in first] == [normalized(p) for p in direct]
    assert [normalized(p) for p in second] == [normalized(p) for p in direct]
    assert sent == len(direct) >= 3
    assert instrumented.calls["query"] == sent  # the second pass sent nothing
    assert sum(p["Count"] for p in scanned) == 12
    items = [
        i
        async for i in cast(
            "AioPageIterator[Any]", cached.get_paginator("query").paginate(**request)
        ).search("Items[]")
    ]
    assert len(items) == 6


async def test_query_results_never_seed_the_item_cache(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    await cached.query(**query(orders, "A"))
    await cached.get_item(TableName=orders, Key={"pk": {"S": "A"}, "sk": {"N": "1"}})
    assert instrumented.calls["get_item"] == 1


async def test_invalidate_drops_the_partitions_pages(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, orders: str
) -> None:
    await cached.put_item(TableName=orders, Item=item("A", 20))  # learns the schema
    await cached.query(**query(orders, "A"))
    await cached.query(**query(orders, "B"))

    cached.cache.invalidate(orders, {"pk": {"S": "A"}, "sk": {"N": "20"}})
    await cached.query(**query(orders, "A"))
    await cached.query(**query(orders, "B"))

    assert instrumented.calls["query"] == 3
    assert cached.cache.stats()["QueryInvalidations"] >= 1

"""The item cache (GetItem, BatchGetItem) against moto and DynamoDB Local."""

from __future__ import annotations

import copy
import pickle
from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import FakeClock, outcome, strip_metadata

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable

ITEM: dict[str, dict[str, Any]] = {
    "pk": {"S": "user#1"},
    "name": {"S": "Ada"},
    "age": {"N": "36"},
    "tags": {"SS": ["a", "b"]},
    "profile": {"M": {"city": {"S": "London"}, "langs": {"L": [{"S": "en"}, {"N": "2"}]}}},
    "active": {"BOOL": True},
    "blob": {"B": b"\x00\x01"},
    "nothing": {"NULL": True},
}


async def test_hit_after_miss_sends_one_request(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str
) -> None:
    await instrumented.wrapped.put_item(TableName=table, Item=ITEM)

    first = await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})
    second = await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    assert first["Item"] == ITEM
    assert second["Item"] == ITEM
    assert instrumented.calls["get_item"] == 1
    assert first["ResponseMetadata"]["CacheStatus"] == "miss"
    assert second["ResponseMetadata"]["CacheStatus"] == "hit"
    stats = cache_stats(cached)
    assert (stats["ItemCacheHits"], stats["ItemCacheMisses"]) == (1, 1)


async def test_hit_equals_dynamodb_answer(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str
) -> None:
    await raw_client.put_item(TableName=table, Item=ITEM)
    await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    hit = await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})
    direct = await raw_client.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    assert strip_metadata(hit) == strip_metadata(direct)


async def test_missing_item_is_cached_negatively(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str
) -> None:
    for _ in range(3):
        response = await cached.get_item(TableName=table, Key={"pk": {"S": "ghost"}})
        assert "Item" not in response

    assert instrumented.calls["get_item"] == 1
    assert cache_stats(cached)["NegativeCacheHits"] == 2


async def test_write_clears_negative_entry(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str
) -> None:
    await cached.get_item(TableName=table, Key={"pk": {"S": "new"}})
    await cached.put_item(TableName=table, Item={"pk": {"S": "new"}, "v": {"N": "1"}})

    response = await cached.get_item(TableName=table, Key={"pk": {"S": "new"}})

    assert response["Item"] == {"pk": {"S": "new"}, "v": {"N": "1"}}
    assert instrumented.calls["get_item"] == 1


async def test_entries_expire_at_ttl(
    raw_client: DynamoDBClient, make_table: MakeTable, clock: FakeClock
) -> None:
    table = await make_table()
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache(item_ttl=10, negative_ttl=2, clock=clock) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        await raw_client.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
        await cached.get_item(TableName=table, Key={"pk": {"S": "a"}})
        await cached.get_item(TableName=table, Key={"pk": {"S": "none"}})
        await raw_client.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "2"}})

        clock.advance(9.9)
        assert (await cached.get_item(TableName=table, Key={"pk": {"S": "a"}}))["Item"]["v"] == {
            "N": "1"
        }
        assert instrumented.calls["get_item"] == 2
        clock.advance(0.1)  # exactly at expiry: no longer fresh
        assert (await cached.get_item(TableName=table, Key={"pk": {"S": "a"}}))["Item"]["v"] == {
            "N": "2"
        }
        assert instrumented.calls["get_item"] == 3
        # the negative entry (TTL 2 s) expired long ago
        await cached.get_item(TableName=table, Key={"pk": {"S": "none"}})
        assert instrumented.calls["get_item"] == 4


async def test_zero_ttl_caches_nothing_and_none_never_expires(
    raw_client: DynamoDBClient, make_table: MakeTable, clock: FakeClock
) -> None:
    short, forever = await make_table(), await make_table()
    instrumented = InstrumentedClient(raw_client)
    tables = {short: aiodax.TableConfig(item_ttl=0), forever: aiodax.TableConfig(item_ttl=None)}
    async with aiodax.Cache(tables=tables, clock=clock) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        for _ in range(2):
            await cached.get_item(TableName=short, Key={"pk": {"S": "a"}})
            await cached.get_item(TableName=forever, Key={"pk": {"S": "a"}})
            clock.advance(10**9)
        assert [r["TableName"] for op, r in instrumented.requests if op == "get_item"] == [
            short,
            forever,
            short,
        ]


@pytest.mark.parametrize(
    "key_a, key_b",
    [
        ({"pk": {"N": "1"}}, {"pk": {"S": "1"}}),
        ({"pk": {"B": b"1"}}, {"pk": {"S": "1"}}),
    ],
)
async def test_key_types_never_mix(
    raw_client: DynamoDBClient,
    make_table: MakeTable,
    key_a: dict[str, Any],
    key_b: dict[str, Any],
) -> None:
    (type_a,) = key_a["pk"]
    (type_b,) = key_b["pk"]
    table_a = await make_table(hash_key=("pk", type_a))
    table_b = await make_table(hash_key=("pk", type_b))
    await raw_client.put_item(TableName=table_a, Item={**key_a, "v": {"S": "A"}})
    await raw_client.put_item(TableName=table_b, Item={**key_b, "v": {"S": "B"}})
    async with aiodax.Cache() as cache:
        cached = cache.wrap(raw_client)
        for _ in range(2):
            assert (await cached.get_item(TableName=table_a, Key=key_a))["Item"]["v"] == {"S": "A"}
            assert (await cached.get_item(TableName=table_b, Key=key_b))["Item"]["v"] == {"S": "B"}
            # the other type's key on each table gets DynamoDB's own answer (an error
            # on DynamoDB Local, no item on moto), never the cached item of the other
            assert await outcome(cached.get_item(TableName=table_a, Key=key_b)) == await outcome(
                raw_client.get_item(TableName=table_a, Key=key_b)
            )


async def test_tables_never_mix(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, make_table: MakeTable
) -> None:
    one, two = await make_table(), await make_table()
    await raw_client.put_item(TableName=one, Item={"pk": {"S": "k"}, "t": {"S": "one"}})

    assert (await cached.get_item(TableName=one, Key={"pk": {"S": "k"}}))["Item"]["t"] == {
        "S": "one"
    }
    assert "Item" not in await cached.get_item(TableName=two, Key={"pk": {"S": "k"}})


async def test_equal_numbers_are_one_item(
    raw_client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table(hash_key=("pk", "N"))
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache() as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        await cached.get_item(TableName=table, Key={"pk": {"N": "10"}})
        await cached.put_item(TableName=table, Item={"pk": {"N": "1E+1"}, "v": {"S": "x"}})
        # "10", "10.0" and "1E+1" name one item: the write must be visible under each
        for spelling in ("10", "10.0", "1E+1"):
            got = await cached.get_item(TableName=table, Key={"pk": {"N": spelling}})
            assert got["Item"]["v"] == {"S": "x"}


async def test_unknown_table_raises_every_time(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient
) -> None:
    for _ in range(3):
        with pytest.raises(ClientError) as error:
            await cached.get_item(TableName="no-such-table", Key={"pk": {"S": "a"}})
        assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert instrumented.calls["get_item"] == 3
    assert cache_stats(cached)["CurrentEntries"] == 0


@pytest.mark.parametrize(
    "key",
    [
        {"pk": {"S": ""}},
        {"pk": {"S": "a"}, "extra": {"S": "b"}},
        {"other": {"S": "a"}},
        {"pk": {"N": "NaN"}},
        {"pk": {"N": "not a number"}},
        {"pk": {"BOOL": True}},
    ],
)
async def test_malformed_key_gets_dynamodb_answer_and_changes_nothing(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
    key: dict[str, Any],
) -> None:
    await raw_client.put_item(TableName=table, Item={"pk": {"S": "a"}})
    await cached.get_item(TableName=table, Key={"pk": {"S": "a"}})
    before = cache_stats(cached)["CurrentEntries"]
    direct = await outcome(raw_client.get_item(TableName=table, Key=key))
    for attempt in range(2):
        assert await outcome(cached.get_item(TableName=table, Key=key)) == direct
        assert instrumented.calls["get_item"] == 2 + attempt
    assert cache_stats(cached)["CurrentEntries"] == before


async def test_consistent_read_always_reaches_dynamodb(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await raw_client.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    await cached.get_item(TableName=table, Key={"pk": {"S": "a"}})
    await raw_client.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "2"}})

    strong = await cached.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)

    assert strong["Item"]["v"] == {"N": "2"}
    assert instrumented.calls["get_item"] == 2


async def test_projection_is_answered_like_dynamodb(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await raw_client.put_item(TableName=table, Item=ITEM)
    requests: list[dict[str, Any]] = [
        {"ProjectionExpression": "#n, age", "ExpressionAttributeNames": {"#n": "name"}},
        {"ProjectionExpression": "profile.city, tags"},
        {"ProjectionExpression": "profile.langs[1]"},
        {"AttributesToGet": ["name", "missing"]},
    ]
    for extra in requests:
        request = {"TableName": table, "Key": {"pk": {"S": "user#1"}}, **extra}
        direct = await raw_client.get_item(**request)
        miss = await cached.get_item(**request)
        hit = await cached.get_item(**request)
        assert strip_metadata(miss) == strip_metadata(direct) == strip_metadata(hit)
    assert instrumented.calls["get_item"] == len(requests)


async def test_top_level_projection_of_a_cached_item_is_a_hit(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await raw_client.put_item(TableName=table, Item=ITEM)
    await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    projected = await cached.get_item(
        TableName=table, Key={"pk": {"S": "user#1"}}, ProjectionExpression="age, active, nope"
    )

    assert projected["Item"] == {"age": {"N": "36"}, "active": {"BOOL": True}}
    assert instrumented.calls["get_item"] == 1


async def test_unused_expression_names_are_dynamodb_errors_not_hits(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str
) -> None:
    await raw_client.put_item(TableName=table, Item=ITEM)
    await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    with pytest.raises(ClientError) as error:
        await cached.get_item(
            TableName=table,
            Key={"pk": {"S": "user#1"}},
            ProjectionExpression="age",
            ExpressionAttributeNames={"#unused": "name"},
        )
    assert error.value.response["Error"]["Code"] == "ValidationException"


async def test_returned_items_cannot_change_the_cache(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str
) -> None:
    await raw_client.put_item(TableName=table, Item=ITEM)
    first = (await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}}))["Item"]

    # the item dict is the caller's own
    first["name"] = {"S": "Grace"}
    del first["age"]
    # values are shared with the cache, so changing one in place is refused
    with pytest.raises(TypeError, match="read-only"):
        first["tags"]["SS"].append("c")
    with pytest.raises(TypeError, match="read-only"):
        first["profile"]["M"]["city"]["S"] = "Paris"
    # ...and copies of them are ordinary, mutable containers
    mutable = copy.deepcopy(first)
    mutable["profile"]["M"]["city"]["S"] = "Paris"
    assert type(pickle.loads(pickle.dumps(first))["profile"]) is dict

    again = (await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}}))["Item"]
    assert again == ITEM


async def test_put_item_caller_mutation_does_not_leak_into_cache(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str
) -> None:
    item = copy.deepcopy(ITEM)
    await cached.put_item(TableName=table, Item=item)
    item["name"]["S"] = "changed after the write"
    item["tags"]["SS"].append("z")

    got = await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    assert got["Item"] == ITEM
    assert instrumented.calls["get_item"] == 0


async def test_return_consumed_capacity_on_hit_is_zero(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str
) -> None:
    await raw_client.put_item(TableName=table, Item=ITEM)
    key = {"pk": {"S": "user#1"}}
    await cached.get_item(TableName=table, Key=key)

    hit = await cached.get_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")

    assert hit["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 0.0}
    assert hit["Item"] == ITEM


def cache_stats(cached: aiodax.CachedClient) -> dict[str, Any]:
    return cached.cache.stats()


@pytest.mark.parametrize("target", [object(), {"get_item": None}, "dynamodb"])
async def test_wrap_refuses_what_is_not_a_dynamodb_client(
    cache: aiodax.Cache, target: object
) -> None:
    with pytest.raises(aiodax.WrapError, match="DynamoDB client") as error:
        cache.wrap(target)  # type: ignore[call-overload]
    assert isinstance(error.value, TypeError)


async def test_wrap_refuses_a_cached_client_and_other_services(
    cache: aiodax.Cache, cached: aiodax.CachedClient
) -> None:
    with pytest.raises(aiodax.WrapError, match="already cached"):
        cache.wrap(cached)  # type: ignore[call-overload]
    async with aioboto3.Session().client(
        "s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9"
    ) as s3:
        with pytest.raises(aiodax.WrapError):
            cache.wrap(s3)


async def test_control_plane_calls_pass_through_and_forget_the_table(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str
) -> None:
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    description = await cached.describe_table(TableName=table)
    assert description["Table"]["TableName"] == table

    await cached.delete_table(TableName=table)

    assert cache_stats(cached)["CurrentEntries"] == 0
    with pytest.raises(ClientError) as error:
        await cached.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # the schema was asked for once (by the write) and counted like any request
    assert cache_stats(cached)["BackendRequests"]["describe_table"] == 1

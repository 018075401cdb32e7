"""The resource flavour (``CachedResource``, ``CachedTable``) against moto and DynamoDB Local.

Every answer is compared with a plain aioboto3 resource's answer on the same server;
what reached DynamoDB is read from ``Cache.stats()["BackendRequests"]``.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest
from boto3.dynamodb.conditions import Attr, Key  # type: ignore[import-untyped]
from boto3.dynamodb.types import Binary, TypeDeserializer  # type: ignore[import-untyped]
from botocore.exceptions import ClientError

import aiodax
from tests import servers
from tests.support import Unprocessing, outcome, strip_metadata

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.service_resource import DynamoDBServiceResource
    from types_aiobotocore_dynamodb.type_defs import KeysAndAttributesServiceResourceTypeDef

    from tests.servers import MakeTable

ITEM: dict[str, Any] = {
    "pk": "user#1",
    "name": "Ada",
    "age": Decimal(36),
    "ratio": Decimal("0.25"),
    "tags": {"a", "b"},
    "scores": {Decimal(1), Decimal("2.5")},
    "blobs": {Binary(b"\x00"), Binary(b"\x01")},
    "profile": {"city": "London", "langs": ["en", Decimal(2)], "deep": {"list": [{"x": True}]}},
    "active": True,
    "blob": Binary(b"\x00\x01"),
    "nothing": None,
}


def refuse_to_deserialize(*args: object) -> None:
    raise AssertionError("a hit ran TypeDeserializer")


@pytest.fixture
async def ddb(client_kwargs: servers.ClientKwargs) -> AsyncIterator[DynamoDBServiceResource]:
    """A plain aioboto3 DynamoDB resource: the answers the cached one must give."""
    async with aioboto3.Session().resource("dynamodb", **client_kwargs) as resource:
        yield resource


@pytest.fixture
def dynamodb(cache: aiodax.Cache, ddb: DynamoDBServiceResource) -> aiodax.CachedResource:
    """The resource under test: ``cache`` wrapped around ``ddb``."""
    return cache.wrap(ddb)


def sent(cache: aiodax.Cache, operation: str) -> int:
    """How many ``operation`` requests reached DynamoDB through ``cache``."""
    count: int = cache.stats()["BackendRequests"].get(operation, 0)
    return count


def by_key(page: dict[str, Any]) -> dict[str, Any]:
    """A response without metadata, its items in key order (a scan's order is DynamoDB's)."""
    page = strip_metadata(page)
    if "Items" in page:
        page["Items"] = sorted(page["Items"], key=lambda i: (i["pk"], i.get("sk", 0)))
    return page


async def same(cached: Awaitable[Mapping[str, Any]], plain: Awaitable[Mapping[str, Any]]) -> Any:
    """Both calls give the same answer (or the same DynamoDB error); return it."""
    through_cache = await outcome(cached)
    assert through_cache == await outcome(plain)
    return through_cache[1]


# ---------------------------------------------------------------------------
# GetItem


async def test_get_item_hit_equals_aioboto3(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)
    await plain.put_item(Item=ITEM)

    miss = await cached.get_item(Key={"pk": "user#1"})
    hit = await cached.get_item(Key={"pk": "user#1"})
    direct = await plain.get_item(Key={"pk": "user#1"})

    assert strip_metadata(miss) == strip_metadata(hit) == strip_metadata(direct)
    assert hit["Item"] == ITEM
    assert (miss["ResponseMetadata"]["CacheStatus"], hit["ResponseMetadata"]["CacheStatus"]) == (
        "miss",
        "hit",
    )
    assert sent(cache, "get_item") == 1
    assert (cache.stats()["ItemCacheHits"], cache.stats()["ItemCacheMisses"]) == (1, 1)


@pytest.mark.parametrize(
    ("schema", "item", "keys"),
    [
        ((("pk", "S"), None), {"pk": "s", "v": "s"}, [{"pk": "s"}]),
        ((("pk", "N"), None), {"pk": Decimal(7), "v": "n"}, [{"pk": 7}, {"pk": Decimal("7.00")}]),
        ((("pk", "B"), None), {"pk": Binary(b"k"), "v": "b"}, [{"pk": b"k"}, {"pk": Binary(b"k")}]),
        (
            (("pk", "S"), ("sk", "N")),
            {"pk": "a", "sk": Decimal(1), "v": "c"},
            [{"pk": "a", "sk": 1}, {"sk": Decimal(1), "pk": "a"}],
        ),
        (
            (("pk", "N"), ("sk", "S")),
            {"pk": Decimal(-3), "sk": "z", "v": "d"},
            [{"pk": -3, "sk": "z"}, {"sk": "z", "pk": Decimal("-3")}],
        ),
    ],
    ids=["string", "number", "binary", "string-number", "number-string"],
)
async def test_every_key_type_is_cached_once_and_never_deserialized_again(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    make_table: MakeTable,
    monkeypatch: pytest.MonkeyPatch,
    schema: tuple[servers.Key, servers.Key | None],
    item: dict[str, Any],
    keys: list[dict[str, Any]],
) -> None:
    name = await make_table(*schema)
    plain = await ddb.Table(name)
    cached = await dynamodb.Table(name)
    await plain.put_item(Item=item)

    for key in keys * 2:  # spellings of one key: all of them name one entry
        assert (await same(cached.get_item(Key=key), plain.get_item(Key=key)))["Item"] == item

    # A hit serves the entry's Python view, made once: boto3 deserializes nothing.
    monkeypatch.setattr(TypeDeserializer, "deserialize", refuse_to_deserialize)
    for key in keys:
        assert (await cached.get_item(Key=key))["Item"] == item
    assert sent(cache, "get_item") == 1


@pytest.mark.parametrize(
    "key",
    [
        {"pk": ""},
        {"pk": True},
        {"pk": Decimal("NaN")},
        {"pk": Decimal("sNaN")},
        {"pk": Decimal("-Infinity")},
        {"pk": Decimal("1." + "0" * 40)},
        {"pk": 10**40},
        {"pk": b""},
        {"pk": "a", "extra": "b"},
        {"other": "a"},
        {},
    ],
)
async def test_bad_keys_get_aioboto3s_answer_and_cache_nothing(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
    key: dict[str, Any],
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)
    await plain.put_item(Item={"pk": "a"})
    await cached.get_item(Key={"pk": "a"})

    async def answer(table: Any) -> tuple[str, Any]:
        try:
            return await outcome(table.get_item(Key=key))
        except Exception as error:  # boto3's own refusals: TypeError, decimal signals…
            return (type(error).__name__, str(error))

    direct = await answer(plain)  # an error, except that moto takes some bad keys
    for _ in range(2):
        assert await answer(cached) == direct
    assert cache.stats()["CurrentEntries"] == 1


async def test_missing_item_is_cached_negatively(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)

    for _ in range(3):
        answer = await same(
            cached.get_item(Key={"pk": "ghost"}), plain.get_item(Key={"pk": "ghost"})
        )
        assert answer == {}
        assert "Item" not in await cached.get_item(Key={"pk": "ghost"})

    assert sent(cache, "get_item") == 1
    assert cache.stats()["NegativeCacheHits"] == 5


async def test_python_views_count_toward_the_cache_size(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await (await ddb.Table(table)).put_item(Item=ITEM)
    cached = await dynamodb.Table(table)
    await cache.wrap(raw_client).get_item(TableName=table, Key={"pk": {"S": "user#1"}})
    wire_only = cache.stats()["CurrentSize"]  # filled by the client flavour

    await cached.get_item(Key={"pk": "user#1"})
    with_view = cache.stats()["CurrentSize"]
    await cached.get_item(Key={"pk": "user#1"})

    assert sent(cache, "get_item") == 1
    assert with_view > wire_only  # the first hit made the view, which takes room
    assert cache.stats()["CurrentSize"] == with_view  # made once per entry


async def test_a_resource_miss_keeps_its_python_view(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = await ddb.Table(table)
    await plain.put_item(Item=ITEM)
    await plain.put_item(Item={"pk": "user#2", "n": Decimal(2)})
    cached = await dynamodb.Table(table)
    keys = {table: {"Keys": [{"pk": "user#1"}, {"pk": "user#2"}]}}
    await cached.get_item(Key={"pk": "user#1"}, ReturnConsumedCapacity="TOTAL")
    await dynamodb.batch_get_item(RequestItems=keys)  # user#2 missed, user#1 hit

    monkeypatch.setattr(TypeDeserializer, "deserialize", refuse_to_deserialize)
    assert (await cached.get_item(Key={"pk": "user#1"}))["Item"] == ITEM
    assert (await cached.get_item(Key={"pk": "user#2"}))["Item"] == {"pk": "user#2", "n": 2}
    again = await dynamodb.batch_get_item(RequestItems=keys)
    assert sorted(again["Responses"][table], key=lambda item: item["pk"]) == [
        ITEM,
        {"pk": "user#2", "n": 2},
    ]
    assert (sent(cache, "get_item"), sent(cache, "batch_get_item")) == (1, 1)


async def test_python_views_of_pages_count_toward_the_cache_size(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await (await ddb.Table(table)).put_item(Item=ITEM)
    client = cache.wrap(raw_client)
    cached = await dynamodb.Table(table)
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "user#1"}},
    }
    await client.query(**request)  # the page filled by the client flavour: wire only
    wire_only = cache.stats()["CurrentSize"]

    python = await cached.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "user#1"}
    )
    with_view = cache.stats()["CurrentSize"]
    await cached.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "user#1"}
    )

    assert python["Items"] == [ITEM]
    assert sent(cache, "query") == 1
    assert with_view > wire_only  # the resource's first hit made the view
    assert cache.stats()["CurrentSize"] == with_view  # made once per page


@pytest.mark.parametrize(
    "extra",
    [
        {"ProjectionExpression": "#n, profile.city", "ExpressionAttributeNames": {"#n": "name"}},
        {"AttributesToGet": ["age", "tags"]},
        {"ReturnConsumedCapacity": "TOTAL"},
    ],
    ids=["projection", "attributes-to-get", "consumed-capacity"],
)
async def test_other_get_item_requests_are_cached_like_aioboto3(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
    extra: dict[str, Any],
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)
    await plain.put_item(Item=ITEM)

    for _ in range(2):
        answer = await same(
            cached.get_item(Key={"pk": "user#1"}, **extra),
            plain.get_item(Key={"pk": "user#1"}, **extra),
        )
        assert answer["Item"]

    assert sent(cache, "get_item") == 1


async def test_consistent_read_always_reaches_dynamodb(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)
    await plain.put_item(Item={"pk": "a", "v": 1})
    await cached.get_item(Key={"pk": "a"})
    await plain.put_item(Item={"pk": "a", "v": 2})

    strong = await cached.get_item(Key={"pk": "a"}, ConsistentRead=True)

    assert strong["Item"] == {"pk": "a", "v": 2}
    assert sent(cache, "get_item") == 2


# ---------------------------------------------------------------------------
# Writes


@pytest.fixture
async def twins(
    make_table: MakeTable, ddb: DynamoDBServiceResource, dynamodb: aiodax.CachedResource
) -> tuple[aiodax.CachedTable, Any]:
    """Two tables with the same items: one written through the cache, one directly."""
    cached = await dynamodb.Table(await make_table())
    plain = await ddb.Table(await make_table())
    for table in (cached.wrapped, plain):
        await table.put_item(Item=ITEM)
        await table.put_item(Item={"pk": "b", "n": Decimal(1)})
    await cached.get_item(Key={"pk": "user#1"})
    await cached.get_item(Key={"pk": "b"})
    return cached, plain


async def test_writes_answer_like_aioboto3_and_keep_the_cache_right(
    twins: tuple[aiodax.CachedTable, Any],
) -> None:
    cached, plain = twins
    operations: list[tuple[str, dict[str, Any]]] = [
        ("put_item", {"Item": {**ITEM, "age": Decimal(37)}, "ReturnValues": "ALL_OLD"}),
        ("put_item", {"Item": {"pk": "new", "l": [Decimal(1)]}}),
        *(
            (
                "update_item",
                {
                    "Key": {"pk": "b"},
                    "UpdateExpression": "SET n = n + :one, s = :s",
                    "ExpressionAttributeValues": {":one": Decimal(1), ":s": {"x", "y"}},
                    "ReturnValues": returns,
                },
            )
            for returns in ("NONE", "ALL_NEW", "UPDATED_OLD", "ALL_OLD", "UPDATED_NEW")
        ),
        (
            "update_item",
            {
                "Key": {"pk": "b"},
                "UpdateExpression": "REMOVE s",
                "ConditionExpression": Attr("n").lt(0),
            },
        ),
        (
            "put_item",
            {"Item": {"pk": "new", "x": "y"}, "ConditionExpression": Attr("pk").not_exists()},
        ),
        ("delete_item", {"Key": {"pk": "user#1"}, "ReturnValues": "ALL_OLD"}),
        ("delete_item", {"Key": {"pk": "b"}, "ConditionExpression": Attr("n").eq(6)}),
    ]
    for operation, request in operations:
        await same(
            getattr(cached, operation)(**copy.deepcopy(request)),
            getattr(plain, operation)(**copy.deepcopy(request)),
        )
        for name in ("user#1", "b", "new"):
            direct = await plain.get_item(Key={"pk": name}, ConsistentRead=True)
            assert strip_metadata(await cached.get_item(Key={"pk": name})) == strip_metadata(
                direct
            ), (operation, request, name)


async def test_write_through_is_served_without_reading(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, table: str
) -> None:
    cached = await dynamodb.Table(table)

    await cached.put_item(Item=ITEM)
    assert (await cached.get_item(Key={"pk": "user#1"}))["Item"] == ITEM
    await cached.update_item(
        Key={"pk": "user#1"},
        UpdateExpression="SET age = :age ADD tags :more",
        ExpressionAttributeValues={":age": 40, ":more": {"c"}},
    )
    updated = (await cached.get_item(Key={"pk": "user#1"}))["Item"]
    assert (updated["age"], updated["tags"]) == (40, {"a", "b", "c"})
    await cached.delete_item(Key={"pk": "user#1"})
    assert "Item" not in await cached.get_item(Key={"pk": "user#1"})

    assert sent(cache, "get_item") == 0
    assert cache.stats()["ItemCacheHits"] == 3


# ---------------------------------------------------------------------------
# Query and Scan


@pytest.fixture
async def orders(make_table: MakeTable, ddb: DynamoDBServiceResource) -> str:
    """Partitions A and B with 6 items each, and a GSI on ``status``."""
    name = await make_table(
        hash_key=("pk", "S"),
        range_key=("sk", "N"),
        gsis=[("by-status", ("status", "S"), ("sk", "N"))],
    )
    table = await ddb.Table(name)
    for pk in ("A", "B"):
        for sk in range(6):
            status = "open" if sk % 2 else "done"
            await table.put_item(Item={"pk": pk, "sk": sk, "status": status, "n": Decimal(sk)})
    return name


def reads() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("query", {"KeyConditionExpression": Key("pk").eq("A")}),
        ("query", {"KeyConditionExpression": Key("pk").eq("A") & Key("sk").between(1, 3)}),
        (
            "query",
            {
                "KeyConditionExpression": Key("pk").eq("A"),
                "FilterExpression": Attr("status").eq("open") & Attr("n").gt(Decimal(1)),
            },
        ),
        ("query", {"KeyConditionExpression": Key("pk").eq("B"), "ScanIndexForward": False}),
        (
            "query",
            {"IndexName": "by-status", "KeyConditionExpression": Key("status").eq("open")},
        ),
        ("scan", {}),
        ("scan", {"FilterExpression": Attr("n").gte(4) | Attr("status").begins_with("d")}),
    ]


async def test_query_and_scan_with_conditions_are_cached_and_invalidated(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    orders: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = await ddb.Table(orders)
    cached = await dynamodb.Table(orders)
    answers: dict[int, Any] = {}

    async def assert_agree() -> None:
        for index, (operation, request) in enumerate(reads()):
            direct = answers[index] = by_key(await getattr(plain, operation)(**request))
            assert by_key(await getattr(cached, operation)(**request)) == direct, request

    async def assert_agree_cached_only() -> None:
        for index, (operation, request) in enumerate(reads()):
            assert by_key(await getattr(cached, operation)(**request)) == answers[index], request

    await assert_agree()
    await assert_agree()
    assert (sent(cache, "query"), sent(cache, "scan")) == (5, 2)
    assert (cache.stats()["QueryCacheHits"], cache.stats()["ScanCacheHits"]) == (5, 2)

    # A page hit serves the Python view its fill or first hit made: nothing is
    # deserialized again.
    with monkeypatch.context() as patched:
        patched.setattr(TypeDeserializer, "deserialize", refuse_to_deserialize)
        await assert_agree_cached_only()
    assert (cache.stats()["QueryCacheHits"], cache.stats()["ScanCacheHits"]) == (10, 4)

    # A write through the resource drops what it may change; the next reads see it.
    await cached.put_item(Item={"pk": "A", "sk": 2, "status": "open", "n": Decimal(9)})
    await cached.delete_item(Key={"pk": "B", "sk": 5})
    await assert_agree()
    assert (sent(cache, "query"), sent(cache, "scan")) == (10, 4)


async def test_pages_of_a_query_follow_last_evaluated_key(
    dynamodb: aiodax.CachedResource, ddb: DynamoDBServiceResource, orders: str
) -> None:
    plain = await ddb.Table(orders)
    cached = await dynamodb.Table(orders)

    async def pages(table: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        start: dict[str, Any] = {}
        while True:
            page = await table.query(KeyConditionExpression=Key("pk").eq("A"), Limit=4, **start)
            found.append(strip_metadata(page))
            if "LastEvaluatedKey" not in page:
                return found
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    direct = await pages(plain)
    assert len(direct) >= 2
    assert await pages(cached) == direct
    assert await pages(cached) == direct


# ---------------------------------------------------------------------------
# Batches


async def test_batch_get_and_write_item_on_the_resource(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    make_table: MakeTable,
) -> None:
    one, two = await make_table(), await make_table()
    cached = await dynamodb.Table(one)
    await cached.get_item(Key={"pk": "gone"})  # a negative entry the batch must replace
    await (await ddb.Table(one)).put_item(Item={"pk": "gone"})

    writes = {
        one: [
            {"PutRequest": {"Item": ITEM}},
            {"PutRequest": {"Item": {"pk": "x", "n": Decimal(1)}}},
            {"DeleteRequest": {"Key": {"pk": "gone"}}},
        ],
        two: [{"PutRequest": {"Item": {"pk": "y", "s": {"a"}}}}],
    }
    written = await dynamodb.batch_write_item(RequestItems=writes)
    assert written["UnprocessedItems"] == {}

    keys: dict[str, KeysAndAttributesServiceResourceTypeDef] = {
        one: {"Keys": [{"pk": "user#1"}, {"pk": "x"}, {"pk": "gone"}]},
        two: {"Keys": [{"pk": "y"}, {"pk": "absent"}], "ProjectionExpression": "s"},
    }

    def ordered(response: Mapping[str, Any]) -> dict[str, Any]:
        response = strip_metadata(response)
        for items in response["Responses"].values():
            items.sort(key=lambda i: repr(sorted(i)))
        return response

    gets_before = sent(cache, "batch_get_item")
    for _ in range(2):
        through_cache = await dynamodb.batch_get_item(RequestItems=keys)
        direct = await ddb.batch_get_item(RequestItems=keys)
        assert ordered(through_cache) == ordered(direct)
    # what was written is served from the write; only the absent key went out, once
    assert sent(cache, "batch_get_item") == gets_before + 1
    assert (await cached.get_item(Key={"pk": "x"}))["Item"] == {"pk": "x", "n": 1}
    assert "Item" not in await cached.get_item(Key={"pk": "gone"})
    assert sent(cache, "get_item") == 1


async def test_unprocessed_keys_come_back_in_python_values(
    ddb: DynamoDBServiceResource, table: str
) -> None:
    await (await ddb.Table(table)).put_item(Item={"pk": "a", "n": Decimal(1)})
    await (await ddb.Table(table)).put_item(Item={"pk": "b", "n": Decimal(2)})
    async with aiodax.Cache(retry=aiodax.RetryPolicy(attempts=1, base=0.001, cap=0.002)) as cache:
        await _unprocessed_keys_in_python_values(cache.wrap(ddb), table)


async def _unprocessed_keys_in_python_values(dynamodb: aiodax.CachedResource, table: str) -> None:
    keys = {table: {"Keys": [{"pk": "a"}, {"pk": "b"}], "ProjectionExpression": "n"}}
    await dynamodb.batch_get_item(RequestItems={table: {"Keys": [{"pk": "b"}]}})  # cached
    dynamodb._backend = Unprocessing(dynamodb._backend, refusals=100)  # type: ignore[assignment]

    response = await dynamodb.batch_get_item(RequestItems=keys)

    # "b" answered from its cached whole item; "a" left unprocessed, as aioboto3
    # returns such keys: in Python values.
    assert response["Responses"] == {table: [{"n": 2}]}
    assert response["UnprocessedKeys"] == {
        table: {"Keys": [{"pk": "a"}], "ProjectionExpression": "n"}
    }


async def test_batch_writer_flushes_like_aioboto3_and_writes_through(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)
    await plain.put_item(Item={"pk": "old", "v": 1})
    await plain.put_item(Item={"pk": "k0", "v": -1})
    for name in ("old", "k0", "k29"):
        await cached.get_item(Key={"pk": name})  # cached before the batch

    async with cached.batch_writer(overwrite_by_pkeys=["pk"]) as batch:
        for i in range(25):
            await batch.put_item(Item={"pk": f"k{i}", "v": i, "l": [i]})
        assert sent(cache, "batch_write_item") == 1  # 25 buffered: flushed at once
        for i in range(25, 30):
            await batch.put_item(Item={"pk": f"k{i}", "v": i, "l": [i]})
        await batch.put_item(Item={"pk": "k29", "v": "last"})  # replaces the buffered k29
        await batch.delete_item(Key={"pk": "old"})
        assert sent(cache, "batch_write_item") == 1
    assert sent(cache, "batch_write_item") == 2  # the rest when the block ended

    reads_before = sent(cache, "get_item")
    for i in range(30):
        hit = await cached.get_item(Key={"pk": f"k{i}"})
        assert strip_metadata(hit) == strip_metadata(
            await plain.get_item(Key={"pk": f"k{i}"}, ConsistentRead=True)
        )
    assert (await cached.get_item(Key={"pk": "k29"}))["Item"] == {"pk": "k29", "v": "last"}
    assert "Item" not in await cached.get_item(Key={"pk": "old"})
    assert sent(cache, "get_item") == reads_before


# ---------------------------------------------------------------------------
# The caller's values


async def test_returned_items_are_the_callers(
    dynamodb: aiodax.CachedResource, ddb: DynamoDBServiceResource, table: str
) -> None:
    await (await ddb.Table(table)).put_item(Item=ITEM)
    cached = await dynamodb.Table(table)
    miss = (await cached.get_item(Key={"pk": "user#1"}))["Item"]
    first_hit = (await cached.get_item(Key={"pk": "user#1"}))["Item"]  # builds the view
    second_hit = (await cached.get_item(Key={"pk": "user#1"}))["Item"]  # reuses it
    for got in (miss, first_hit, second_hit):
        got["name"] = "Grace"
        del got["age"]
        got["profile"]["city"] = "Paris"
        got["profile"]["langs"].append("fr")
        got["profile"]["deep"]["list"][0]["x"] = False
        got["tags"].add("c")
        got["scores"].clear()
        got["blobs"].discard(Binary(b"\x00"))
        assert (await cached.get_item(Key={"pk": "user#1"}))["Item"] == ITEM

    for _ in range(2):
        batch = await dynamodb.batch_get_item(RequestItems={table: {"Keys": [{"pk": "user#1"}]}})
        (item,) = batch["Responses"][table]
        item["profile"]["deep"]["list"].append(1)
        item["scores"].clear()
        assert (await cached.get_item(Key={"pk": "user#1"}))["Item"] == ITEM

    # A page's miss, its first hit (which may make the view) and a later hit.
    for _ in range(3):
        page = await cached.query(KeyConditionExpression=Key("pk").eq("user#1"))
        item = page["Items"][0]
        item["profile"]["langs"].clear()
        item["profile"]["deep"]["list"][0]["x"] = False
        item["tags"].add("c")
        item["blobs"].clear()
        del item["name"]
        page["Items"].clear()
        again = await cached.query(KeyConditionExpression=Key("pk").eq("user#1"))
        assert again["Items"] == [ITEM]
        assert again["ResponseMetadata"]["CacheStatus"] == "hit"


async def test_the_dict_given_to_put_item_stays_the_callers(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, table: str
) -> None:
    cached = await dynamodb.Table(table)
    item = copy.deepcopy(ITEM)
    await cached.put_item(Item=item)
    item["name"] = "changed after the write"
    item["profile"]["langs"].append("de")
    item["tags"].add("z")

    assert (await cached.get_item(Key={"pk": "user#1"}))["Item"] == ITEM
    assert sent(cache, "get_item") == 0


BINARY_ITEM: dict[str, Any] = {
    "pk": Binary(b"key"),
    "blob": Binary(b"\x00\x01"),
    "blobs": {Binary(b"\x00"), Binary(b"\x01")},
    "nested": {"list": [Binary(b"deep")]},
}


def change_binaries(item: dict[str, Any]) -> None:
    """Change every ``Binary`` of ``item`` in place, a ``BS`` member included."""
    item["pk"].value = b"changed key"
    item["blob"].value = b"changed"
    member = next(m for m in item["blobs"] if m == Binary(b"\x00"))
    member.value = b"changed member"  # breaks that set's hashing: the caller's own set
    item["nested"]["list"][0].value = b"changed deep"


@pytest.fixture
async def binaries(make_table: MakeTable, ddb: DynamoDBServiceResource) -> str:
    """A table with a binary key, holding ``BINARY_ITEM``."""
    name = await make_table(hash_key=("pk", "B"))
    await (await ddb.Table(name)).put_item(Item=BINARY_ITEM)
    return name


async def test_returned_binaries_are_the_callers(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, binaries: str
) -> None:
    cached = await dynamodb.Table(binaries)
    for _ in range(3):  # the miss, the first hit (which makes the view), a later hit
        change_binaries((await cached.get_item(Key={"pk": b"key"}))["Item"])
        again = (await cached.get_item(Key={"pk": b"key"}))["Item"]
        assert again == BINARY_ITEM
        assert Binary(b"\x00") in again["blobs"]  # the cached set still finds its members
    assert sent(cache, "get_item") == 1


async def test_binaries_of_a_batch_get_item_are_the_callers(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, binaries: str
) -> None:
    request: dict[str, Any] = {binaries: {"Keys": [{"pk": Binary(b"key")}]}}
    for _ in range(3):  # the miss, the first hit, a later hit
        (item,) = (await dynamodb.batch_get_item(RequestItems=request))["Responses"][binaries]
        change_binaries(item)
        (again,) = (await dynamodb.batch_get_item(RequestItems=request))["Responses"][binaries]
        assert again == BINARY_ITEM
    assert sent(cache, "batch_get_item") == 1


async def test_binaries_of_a_query_page_are_the_callers(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, binaries: str
) -> None:
    cached = await dynamodb.Table(binaries)
    condition = Key("pk").eq(Binary(b"key"))
    for _ in range(3):  # a page's miss, its first hit (which may make the view), a later hit
        change_binaries((await cached.query(KeyConditionExpression=condition))["Items"][0])
        again = await cached.query(KeyConditionExpression=condition)
        assert again["ResponseMetadata"]["CacheStatus"] == "hit"
        assert again["Items"] == [BINARY_ITEM]
    assert sent(cache, "query") == 1


@pytest.mark.parametrize(
    ("operation", "request_"),
    [
        ("put_item", {"Item": {"pk": "f", "x": 1.5}}),
        ("get_item", {"Key": {"pk": 1.5}}),
        (
            "update_item",
            {
                "Key": {"pk": "f"},
                "UpdateExpression": "SET x = :x",
                "ExpressionAttributeValues": {":x": 0.1},
            },
        ),
        ("query", {"KeyConditionExpression": Key("pk").eq("f") & Key("sk").gt(2.5)}),
        ("scan", {"FilterExpression": Attr("x").eq(1.5)}),
    ],
)
async def test_float_raises_what_aioboto3_raises_and_caches_nothing(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
    operation: str,
    request_: dict[str, Any],
) -> None:
    with pytest.raises(TypeError) as direct:
        await getattr(await ddb.Table(table), operation)(**request_)
    cached = await dynamodb.Table(table)

    for _ in range(2):
        with pytest.raises(TypeError) as through_cache:
            await getattr(cached, operation)(**request_)
        assert str(through_cache.value) == str(direct.value)
        assert "Float types are not supported" in str(through_cache.value)

    stats = cache.stats()
    assert (stats["BackendRequestCount"], stats["CurrentEntries"]) == (0, 0)


async def test_float_in_a_batch_writer_raises_and_caches_nothing(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, table: str
) -> None:
    cached = await dynamodb.Table(table)
    with pytest.raises(TypeError, match="Float types are not supported"):
        async with cached.batch_writer() as batch:
            await batch.put_item(Item={"pk": "f", "x": 1.5})
    assert cache.stats()["CurrentEntries"] == 0
    assert "Item" not in await cached.get_item(Key={"pk": "f"})


# ---------------------------------------------------------------------------
# Both flavours on one Cache


async def test_client_and_resource_share_one_cache(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    raw_client: DynamoDBClient,
    orders: str,
) -> None:
    client = cache.wrap(raw_client)
    table = await dynamodb.Table(orders)
    key = {"pk": {"S": "A"}, "sk": {"N": "1"}}

    # cached by the client, written through the resource, read by the client
    await client.get_item(TableName=orders, Key=key)
    await table.update_item(
        Key={"pk": "A", "sk": 1},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": 100},
    )
    read = await client.get_item(TableName=orders, Key=key)
    assert (read["Item"]["n"], read["ResponseMetadata"]["CacheStatus"]) == ({"N": "100"}, "hit")

    # cached by the resource, written through the client, read by the resource
    assert (await table.get_item(Key={"pk": "B", "sk": 2}))["Item"]["status"] == "done"
    await client.put_item(
        TableName=orders,
        Item={"pk": {"S": "B"}, "sk": {"N": "2"}, "status": {"S": "open"}, "m": {"M": {}}},
    )
    read = await table.get_item(Key={"pk": "B", "sk": 2})
    assert read["Item"] == {"pk": "B", "sk": 2, "status": "open", "m": {}}
    assert read["ResponseMetadata"]["CacheStatus"] == "hit"
    await client.delete_item(TableName=orders, Key={"pk": {"S": "B"}, "sk": {"N": "2"}})
    assert "Item" not in await table.get_item(Key={"pk": "B", "sk": 2})
    assert sent(cache, "get_item") == 2

    # a page cached by the resource, a write through the client, the page again
    before = await table.query(KeyConditionExpression=Key("pk").eq("A"))
    await client.put_item(TableName=orders, Item={"pk": {"S": "A"}, "sk": {"N": "99"}})
    after = await table.query(KeyConditionExpression=Key("pk").eq("A"))
    assert after["Count"] == before["Count"] + 1


# ---------------------------------------------------------------------------
# Everything else: attributes, loading, waiters, tables


async def test_table_attributes_load_and_waiters_are_aioboto3s(
    dynamodb: aiodax.CachedResource, ddb: DynamoDBServiceResource, table: str
) -> None:
    plain = await ddb.Table(table)
    cached = await dynamodb.Table(table)

    assert cached.name == plain.name == table
    for attribute in ("key_schema", "table_status", "item_count", "attribute_definitions"):
        assert await getattr(cached, attribute) == await getattr(plain, attribute), attribute
    await cached.wait_until_exists()
    await cached.load()
    assert cached.meta.data["TableName"] == table
    # aioboto3 forgets loaded attributes after every action: so do misses, hits, writes
    actions: list[Callable[[Any], Awaitable[Any]]] = [
        lambda t: t.get_item(Key={"pk": "a"}),
        lambda t: t.get_item(Key={"pk": "a"}),
        lambda t: t.put_item(Item={"pk": "a"}),
        lambda t: t.get_item(Key={"pk": "a"}),
        lambda t: t.query(KeyConditionExpression=Key("pk").eq("a")),
    ]
    for action in actions:
        for table_ in (plain, cached):
            await table_.load()
            await action(table_)
        assert plain.meta.data is None
        assert cached.meta.data is None

    assert dynamodb.meta.client is ddb.meta.client
    assert table in [t.name async for t in dynamodb.tables.all()]
    assert isinstance(await dynamodb.Table(table), aiodax.CachedTable)


async def test_create_table_gives_a_cached_table_and_delete_forgets_it(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    old = await dynamodb.Table(table)
    await old.put_item(Item={"pk": "a", "v": "old"})
    await raw_client.delete_table(TableName=table)  # behind the cache's back
    await old.wait_until_not_exists()

    new = await dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    assert isinstance(new, aiodax.CachedTable)
    assert new.meta.data["TableName"] == table  # aioboto3's: the creation's description
    await new.wait_until_exists()
    assert "Item" not in await new.get_item(Key={"pk": "a"})  # the old table's item is gone
    await new.put_item(Item={"pk": "a", "v": "new"})
    assert (await old.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a", "v": "new"}
    assert sent(cache, "get_item") == 1

    await new.delete()

    assert cache.stats()["CurrentEntries"] == 0
    with pytest.raises(ClientError) as error:
        await new.get_item(Key={"pk": "a"})
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_update_table_gives_a_cached_table_and_forgets_the_old(
    cache: aiodax.Cache, dynamodb: aiodax.CachedResource, table: str
) -> None:
    cached = await dynamodb.Table(table)
    await cached.put_item(Item={"pk": "a"})

    updated = await cached.update(
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )

    assert isinstance(updated, aiodax.CachedTable)
    assert updated.meta.data["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert (await updated.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a"}
    assert (await cached.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a"}
    assert sent(cache, "get_item") == 1  # read again once after the change, then cached


async def test_wrap_refuses_tables_and_what_is_already_cached(
    cache: aiodax.Cache,
    dynamodb: aiodax.CachedResource,
    ddb: DynamoDBServiceResource,
    table: str,
) -> None:
    with pytest.raises(aiodax.WrapError, match=r"service resource, not one of its tables"):
        cache.wrap(await ddb.Table(table))
    cached: Any
    for cached in (dynamodb, await dynamodb.Table(table)):
        with pytest.raises(aiodax.WrapError, match="already cached"):
            cache.wrap(cached)
    # The resource's own client takes Python values: a CachedClient must not wrap it.
    with pytest.raises(aiodax.WrapError, match=r"resource.meta.client"):
        cache.wrap(ddb.meta.client)
    assert isinstance(cache.wrap(dynamodb.wrapped), aiodax.CachedResource)

"""Every common key shape hits, through both flavours, and batches of hits need no request.

The hit paths look a key up as the caller spelled it; the store holds canonical
spellings only, so another spelling of the same value (``"1E4"`` for ``10000``, a
``str`` for a binary, a ``Decimal`` for an ``int``) must still find the entry,
through the general path, and a key of another type must never find it.
"""

from __future__ import annotations

from decimal import Decimal, DecimalException, Inexact
from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest
from boto3.dynamodb.types import Binary  # type: ignore[import-untyped]
from botocore.exceptions import ClientError, ParamValidationError

import aiodax
from aiodax.testing import InstrumentedClient
from tests import servers
from tests.servers import Key, MakeTable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from types_aiobotocore_dynamodb import DynamoDBClient

#: (hash key, range key, a wire key of each, the same key in Python values)
SHAPES: list[tuple[Key, Key | None, dict[str, Any], dict[str, Any]]] = [
    (("pk", "S"), None, {"pk": {"S": "user#1"}}, {"pk": "user#1"}),
    (
        ("pk", "S"),
        ("sk", "S"),
        {"pk": {"S": "user#1"}, "sk": {"S": "order#7"}},
        {"pk": "user#1", "sk": "order#7"},
    ),
    (("id", "N"), None, {"id": {"N": "10000"}}, {"id": 10000}),
    (
        ("pk", "S"),
        ("at", "N"),
        {"at": {"N": "1700000000"}, "pk": {"S": "user#1"}},
        {"at": 1700000000, "pk": "user#1"},
    ),
    (("digest", "B"), None, {"digest": {"B": b"\x00hash"}}, {"digest": b"\x00hash"}),
    (
        ("id", "N"),
        ("blob", "B"),
        {"id": {"N": "-3.5"}, "blob": {"B": b"x"}},
        {"id": Decimal("-3.5"), "blob": Binary(b"x")},
    ),
]
SHAPE_IDS = ["S", "S+S", "N", "S+N", "B", "N+B"]


@pytest.fixture(params=SHAPES, ids=SHAPE_IDS)
async def shaped(
    request: pytest.FixtureRequest, make_table: MakeTable, raw_client: DynamoDBClient
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A table of one key shape holding one item; its name and the item's two keys."""
    hash_key, range_key, wire_key, python_key = request.param
    table = await make_table(hash_key, range_key)
    await raw_client.put_item(TableName=table, Item={**wire_key, "v": {"S": "stored"}})
    return table, wire_key, python_key


@pytest.fixture
async def resource(client_kwargs: servers.ClientKwargs) -> AsyncIterator[Any]:
    async with aioboto3.Session().resource("dynamodb", **client_kwargs) as resource:
        yield resource


async def test_every_key_shape_hits_through_the_client(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    shaped: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    table, wire_key, _ = shaped
    first = await cached.get_item(TableName=table, Key=wire_key)
    second = await cached.get_item(TableName=table, Key=wire_key)

    assert second["Item"] == first["Item"]
    assert second["Item"]["v"] == {"S": "stored"}
    assert second["ResponseMetadata"]["CacheStatus"] == "hit"
    assert instrumented.calls["get_item"] == 1


async def test_every_key_shape_hits_through_the_resource(
    cache: aiodax.Cache, resource: Any, shaped: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    table_name, _, python_key = shaped
    table = await cache.wrap(resource).Table(table_name)
    first = await table.get_item(Key=python_key)
    second = await table.get_item(Key=python_key)

    assert second["Item"] == first["Item"]
    assert second["Item"]["v"] == "stored"
    assert second["ResponseMetadata"]["CacheStatus"] == "hit"
    assert cache.stats()["BackendRequests"]["get_item"] == 1


@pytest.mark.parametrize("spelling", ["10000.0", "1E4", "1.0e+4", "010000", "+10000"])
async def test_a_number_key_hits_under_every_spelling_of_its_value(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    make_table: MakeTable,
    raw_client: DynamoDBClient,
    spelling: str,
) -> None:
    table = await make_table(("id", "N"))
    await raw_client.put_item(TableName=table, Item={"id": {"N": "10000"}, "v": {"S": "x"}})
    await cached.get_item(TableName=table, Key={"id": {"N": "10000"}})

    answer = await cached.get_item(TableName=table, Key={"id": {"N": spelling}})

    assert answer["Item"]["v"] == {"S": "x"}
    assert instrumented.calls["get_item"] == 1


async def test_a_number_key_never_finds_the_string_of_the_same_text(
    cache: aiodax.Cache, instrumented: InstrumentedClient, make_table: MakeTable
) -> None:
    numbers, strings = await make_table(("k", "N")), await make_table(("k", "S"))
    cached = cache.wrap(cast("DynamoDBClient", instrumented))
    await cached.put_item(TableName=numbers, Item={"k": {"N": "7"}, "v": {"S": "number"}})
    await cached.put_item(TableName=strings, Item={"k": {"S": "7"}, "v": {"S": "string"}})

    by_number = await cached.get_item(TableName=numbers, Key={"k": {"N": "7"}})
    by_string = await cached.get_item(TableName=strings, Key={"k": {"S": "7"}})

    assert (by_number["Item"]["v"], by_string["Item"]["v"]) == ({"S": "number"}, {"S": "string"})
    assert instrumented.calls["get_item"] == 0  # both written through


async def test_a_binary_key_hits_whether_spelled_as_bytes_or_str(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    make_table: MakeTable,
    raw_client: DynamoDBClient,
) -> None:
    table = await make_table(("digest", "B"))
    await raw_client.put_item(TableName=table, Item={"digest": {"B": b"abc"}, "v": {"S": "x"}})
    await cached.get_item(TableName=table, Key={"digest": {"B": b"abc"}})

    # botocore sends a str blob as its UTF-8 bytes: the same key.
    answer = await cached.get_item(TableName=table, Key={"digest": {"B": "abc"}})

    assert answer["Item"]["v"] == {"S": "x"}
    assert instrumented.calls["get_item"] == 1


@pytest.mark.parametrize(
    "spelling", [10000, Decimal("10000"), Decimal("1E+4"), Decimal("10000.00")]
)
async def test_a_resource_number_key_hits_as_int_or_decimal(
    cache: aiodax.Cache, resource: Any, make_table: MakeTable, spelling: Any
) -> None:
    table = await cache.wrap(resource).Table(await make_table(("id", "N")))
    await table.put_item(Item={"id": 10000, "v": "x"})  # written through: cached

    answer = await table.get_item(Key={"id": spelling})

    assert answer["Item"] == {"id": Decimal(10000), "v": "x"}
    assert cache.stats()["BackendRequests"].get("get_item", 0) == 0


async def test_resource_number_keys_hit_past_the_texts_the_hit_path_remembers(
    cache: aiodax.Cache, resource: Any, make_table: MakeTable
) -> None:
    # The hit path remembers 1,024 integer keys' texts at a time: more keys than that,
    # hit twice over, must each find their own item (the memory is cleared, not wrong).
    table = await cache.wrap(resource).Table(await make_table(("pk", "S"), ("n", "N")))
    count = 1_100
    async with table.batch_writer() as writer:
        for n in range(count):
            await writer.put_item(Item={"pk": "p", "n": n, "v": f"item {n}"})

    for _ in range(2):
        for n in range(count):
            answer = await table.get_item(Key={"n": n, "pk": "p"})
            assert answer["Item"]["v"] == f"item {n}"
    assert cache.stats()["BackendRequests"].get("get_item", 0) == 0


@pytest.mark.parametrize(
    "key",
    [
        {"pk": {"S": ["user#1"]}},
        {"pk": "user#1"},
        {"pk": {"S": "user#1"}, "sk": {"S": "a"}, "third": {"S": "b"}},
    ],
    ids=["list-value", "bare-value", "three-attributes"],
)
async def test_a_malformed_wire_key_gets_botocore_s_error_not_a_cached_item(
    cached: aiodax.CachedClient, make_table: MakeTable, raw_client: DynamoDBClient, key: Any
) -> None:
    table = await make_table(("pk", "S"))
    await raw_client.put_item(TableName=table, Item={"pk": {"S": "user#1"}, "v": {"S": "x"}})
    await cached.get_item(TableName=table, Key={"pk": {"S": "user#1"}})

    with pytest.raises((ParamValidationError, ClientError)):
        await cached.get_item(TableName=table, Key=key)


async def test_a_resource_key_of_a_type_boto3_refuses_gets_boto3_s_error(
    cache: aiodax.Cache, resource: Any, make_table: MakeTable
) -> None:
    table = await cache.wrap(resource).Table(await make_table(("id", "N")))
    await table.put_item(Item={"id": 1, "v": "x"})

    with pytest.raises(TypeError, match="Float types are not supported"):
        await table.get_item(Key={"id": 1.0})
    with pytest.raises(Inexact):  # more than 38 digits
        await table.get_item(Key={"id": 10**40 + 1})
    with pytest.raises(DecimalException):  # past the hit path's texts and DynamoDB's range
        await table.get_item(Key={"id": 10**130 + 1})
    assert (await table.get_item(Key={"id": 1}))["Item"] == {"id": 1, "v": "x"}


# ---------------------------------------------------------------------------
# Batches


@pytest.fixture
async def composite(make_table: MakeTable, raw_client: DynamoDBClient) -> str:
    """A table keyed by a string partition and a number sort key, holding five items."""
    table = await make_table(("pk", "S"), ("sk", "N"))
    for n in range(5):
        item = {"pk": {"S": "user#1"}, "sk": {"N": str(n)}, "v": {"S": f"item {n}"}}
        await raw_client.put_item(TableName=table, Item=item)
    return table


def _wire_keys(count: int) -> list[dict[str, Any]]:
    return [{"pk": {"S": "user#1"}, "sk": {"N": str(n)}} for n in range(count)]


async def test_a_batch_of_cached_keys_is_answered_without_dynamodb(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    composite: str,
) -> None:
    table = composite
    missing = {"pk": {"S": "user#1"}, "sk": {"N": "99"}}
    for key in [*_wire_keys(5), missing]:
        await cached.get_item(TableName=table, Key=key)

    answer = await cached.batch_get_item(RequestItems={table: {"Keys": [*_wire_keys(5), missing]}})

    assert sorted(item["v"]["S"] for item in answer["Responses"][table]) == [
        f"item {n}" for n in range(5)
    ]
    assert answer["UnprocessedKeys"] == {}
    assert answer["ResponseMetadata"]["CacheStatus"] == "hit"
    assert instrumented.calls["batch_get_item"] == 0
    assert cached.cache.stats()["NegativeCacheHits"] == 1


async def test_a_batch_with_one_key_uncached_asks_dynamodb_for_that_key_alone(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    composite: str,
) -> None:
    table = composite
    for key in _wire_keys(4):
        await cached.get_item(TableName=table, Key=key)

    answer = await cached.batch_get_item(RequestItems={table: {"Keys": _wire_keys(5)}})

    assert len(answer["Responses"][table]) == 5
    sent = [
        request for operation, request in instrumented.requests if operation == "batch_get_item"
    ]
    assert [spec["Keys"] for spec in sent[0]["RequestItems"].values()] == [_wire_keys(5)[4:]]


async def test_a_batch_naming_a_cached_key_twice_is_judged_by_dynamodb(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    composite: str,
) -> None:
    table = composite
    key = _wire_keys(1)[0]
    await cached.get_item(TableName=table, Key=key)

    with pytest.raises(ClientError) as error:
        await cached.batch_get_item(RequestItems={table: {"Keys": [key, key]}})

    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert instrumented.calls["batch_get_item"] == 1


async def test_a_resource_batch_of_hits_hands_each_caller_its_own_items(
    cache: aiodax.Cache, resource: Any, composite: str
) -> None:
    table_name = composite
    dynamodb = cache.wrap(resource)
    table = await dynamodb.Table(table_name)
    keys = [{"pk": "user#1", "sk": n} for n in range(5)]
    for key in keys:
        await table.get_item(Key=key)

    first = await dynamodb.batch_get_item(RequestItems={table_name: {"Keys": keys}})
    first["Responses"][table_name][0]["v"] = "spoiled"
    second = await dynamodb.batch_get_item(RequestItems={table_name: {"Keys": keys}})

    assert sorted(item["v"] for item in second["Responses"][table_name]) == [
        f"item {n}" for n in range(5)
    ]
    assert second["Responses"][table_name][0]["sk"] == Decimal(0)
    assert cache.stats()["BackendRequests"].get("batch_get_item", 0) == 0

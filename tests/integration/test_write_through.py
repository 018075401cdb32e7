"""Awaited write-through: after a write returns, the cache agrees with DynamoDB."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import InstrumentedClient
from tests import servers
from tests.support import strip_metadata, until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


async def assert_cache_agrees(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str, *names: str
) -> None:
    """Every cached read of ``names`` equals DynamoDB's strongly consistent answer."""
    for name in names:
        direct = await raw_client.get_item(TableName=table, Key=key(name), ConsistentRead=True)
        through_cache = await cached.get_item(TableName=table, Key=key(name))
        assert strip_metadata(through_cache) == strip_metadata(direct), name


@pytest.fixture
async def warm(cached: aiodax.CachedClient, raw_client: DynamoDBClient, table: str) -> str:
    """The table with items a, b, c, all cached (and "none" cached as missing)."""
    for name in ("a", "b", "c"):
        await raw_client.put_item(TableName=table, Item={**key(name), "v": {"N": "1"}})
        await cached.get_item(TableName=table, Key=key(name))
    await cached.get_item(TableName=table, Key=key("none"))
    return table


async def test_put_item_is_written_through(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
) -> None:
    item = {**key("a"), "v": {"N": "2"}, "extra": {"L": [{"S": "x"}]}}
    response = await cached.put_item(TableName=warm, Item=item)

    assert "Attributes" not in response
    assert (await cached.get_item(TableName=warm, Key=key("a")))["Item"] == item
    assert instrumented.calls["get_item"] == 4  # served from the write, not re-read
    await assert_cache_agrees(cached, raw_client, warm, "a")


async def test_put_item_return_values_reach_the_caller(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, warm: str
) -> None:
    response = await cached.put_item(
        TableName=warm, Item={**key("a"), "v": {"N": "3"}}, ReturnValues="ALL_OLD"
    )

    assert response["Attributes"] == {**key("a"), "v": {"N": "1"}}
    await assert_cache_agrees(cached, raw_client, warm, "a")


@pytest.mark.parametrize("return_values", [None, "NONE", "ALL_NEW", "UPDATED_NEW", "ALL_OLD"])
async def test_update_item_answers_as_asked_and_updates_the_cache(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
    return_values: str | None,
) -> None:
    request: dict[str, Any] = {
        "TableName": warm,
        "Key": key("a"),
        "UpdateExpression": "SET v = v + :one, added = :s",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":s": {"S": "yes"}},
    }
    if return_values is not None:
        request["ReturnValues"] = return_values

    response = await cached.update_item(**request)

    expected_attributes = {
        None: None,
        "NONE": None,
        "ALL_NEW": {**key("a"), "v": {"N": "2"}, "added": {"S": "yes"}},
        "UPDATED_NEW": {"v": {"N": "2"}, "added": {"S": "yes"}},
        "ALL_OLD": {**key("a"), "v": {"N": "1"}},
    }[return_values]
    assert response.get("Attributes") == expected_attributes
    await assert_cache_agrees(cached, raw_client, warm, "a")
    # with the new image in hand (NONE, ALL_NEW) the cache needed no re-read
    rereads = instrumented.calls["get_item"] - 4
    assert rereads == (0 if return_values in (None, "NONE", "ALL_NEW") else 1)


async def test_delete_item_leaves_a_negative_entry(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
) -> None:
    await cached.delete_item(TableName=warm, Key=key("a"))

    assert "Item" not in await cached.get_item(TableName=warm, Key=key("a"))
    assert instrumented.calls["get_item"] == 4
    await assert_cache_agrees(cached, raw_client, warm, "a")


async def test_batch_write_item_is_written_through(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
) -> None:
    response = await cached.batch_write_item(
        RequestItems={
            warm: [
                {"PutRequest": {"Item": {**key("a"), "v": {"N": "9"}}}},
                {"PutRequest": {"Item": {**key("none"), "v": {"N": "9"}}}},
                {"DeleteRequest": {"Key": key("b")}},
            ]
        }
    )

    assert response["UnprocessedItems"] == {}
    await assert_cache_agrees(cached, raw_client, warm, "a", "none", "b", "c")
    assert instrumented.calls["get_item"] == 4


async def test_unprocessed_batch_writes_leave_their_keys_as_they_were(
    raw_client: DynamoDBClient, table: str
) -> None:
    class LeavesLastUnprocessed(InstrumentedClient):
        async def batch_write_item(self, **request: Any) -> Any:
            ((name, writes),) = request["RequestItems"].items()
            await self.wrapped.batch_write_item(RequestItems={name: writes[:-1]})
            return {"UnprocessedItems": {name: writes[-1:]}}

    for name in ("a", "b"):
        await raw_client.put_item(TableName=table, Item={**key(name), "v": {"N": "1"}})
    async with aiodax.Cache() as cache:
        cached = cache.wrap(cast("DynamoDBClient", LeavesLastUnprocessed(raw_client)))
        await cached.get_item(TableName=table, Key=key("b"))
        await cached.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {**key("a"), "v": {"N": "2"}}}},
                    {"PutRequest": {"Item": {**key("b"), "v": {"N": "2"}}}},
                ]
            }
        )
        await assert_cache_agrees(cached, raw_client, table, "a", "b")


async def test_transact_write_items_updates_every_key_before_returning(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, warm: str
) -> None:
    await cached.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": warm, "Item": {**key("a"), "v": {"N": "5"}}}},
            {
                "Update": {
                    "TableName": warm,
                    "Key": key("b"),
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": "6"}},
                }
            },
            {"Delete": {"TableName": warm, "Key": key("c")}},
            {
                "ConditionCheck": {
                    "TableName": warm,
                    "Key": key("none"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )

    await assert_cache_agrees(cached, raw_client, warm, "a", "b", "c", "none")


async def test_a_cancelled_transaction_invalidates_its_keys(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
) -> None:
    await raw_client.put_item(TableName=warm, Item={**key("a"), "v": {"N": "7"}})  # bypass

    with pytest.raises(ClientError) as error:
        await cached.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": warm,
                        "Item": {**key("a"), "v": {"N": "8"}},
                        "ConditionExpression": "v = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    # the failed condition says the cached item was wrong: it is re-read
    await assert_cache_agrees(cached, raw_client, warm, "a")
    assert instrumented.calls["get_item"] == 5


async def test_a_failed_condition_invalidates_the_key(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
) -> None:
    await raw_client.put_item(TableName=warm, Item={**key("a"), "v": {"N": "7"}})  # bypass

    with pytest.raises(raw_client.exceptions.ConditionalCheckFailedException):
        await cached.put_item(
            TableName=warm,
            Item={**key("a"), "v": {"N": "8"}},
            ConditionExpression="v = :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    await assert_cache_agrees(cached, raw_client, warm, "a")
    assert instrumented.calls["get_item"] == 5


async def test_a_rejected_write_leaves_the_cache_untouched(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, warm: str
) -> None:
    with pytest.raises(ClientError) as error:
        await cached.put_item(TableName=warm, Item={"pk": {"N": "1"}, "v": {"S": "wrong key"}})
    assert error.value.response["Error"]["Code"] == "ValidationException"

    await cached.get_item(TableName=warm, Key=key("a"))
    assert instrumented.calls["get_item"] == 4  # still a hit


@pytest.mark.parametrize("code", ["InternalServerError", "ServiceUnavailable"])
async def test_an_ambiguous_failure_invalidates_the_key(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    warm: str,
    code: str,
) -> None:
    instrumented.fail("put_item", code, when="after")  # applied, then the answer was lost

    with pytest.raises(ClientError) as error:
        await cached.put_item(TableName=warm, Item={**key("a"), "v": {"N": "2"}})

    assert error.value.response["Error"]["Code"] == code
    await assert_cache_agrees(cached, raw_client, warm, "a")
    assert (await cached.get_item(TableName=warm, Key=key("a")))["Item"]["v"] == {"N": "2"}


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
async def test_a_throttled_write_leaves_the_cache_and_raises_dynamodb_error(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, warm: str, code: str
) -> None:
    instrumented.fail("put_item", code)

    with pytest.raises(ClientError) as error:
        await cached.put_item(TableName=warm, Item={**key("a"), "v": {"N": "2"}})

    assert error.value.response["Error"]["Code"] == code
    assert (await cached.get_item(TableName=warm, Key=key("a")))["Item"]["v"] == {"N": "1"}
    assert instrumented.calls["get_item"] == 4


async def test_a_read_overlapping_a_write_never_stores_the_older_value(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    await raw_client.put_item(TableName=table, Item={**key("a"), "v": {"S": "old"}})
    release = instrumented.hold("get_item", when="after")
    slow_read = asyncio.create_task(cached.get_item(TableName=table, Key=key("a")))
    await until(lambda: instrumented.answered["get_item"] == 1)  # it has read "old"

    await cached.put_item(TableName=table, Item={**key("a"), "v": {"S": "new"}})
    # read-your-writes: a read after the write does not join the old read
    after_write = await cached.get_item(TableName=table, Key=key("a"))
    release.set()
    overlapping = await slow_read

    assert after_write["Item"]["v"] == {"S": "new"}
    assert overlapping["Item"]["v"] == {"S": "old"}  # it overlapped the write: fine
    assert (await cached.get_item(TableName=table, Key=key("a")))["Item"]["v"] == {"S": "new"}
    assert instrumented.calls["get_item"] == 1


async def test_overlapping_writes_to_one_key_leave_dynamodb_final_value(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
) -> None:
    # the first write's answer arrives last, though DynamoDB applied it first
    release = instrumented.hold("put_item", when="after")
    first = asyncio.create_task(
        cached.put_item(TableName=table, Item={**key("a"), "v": {"S": "first"}})
    )
    await until(lambda: instrumented.answered["put_item"] == 1)
    await cached.put_item(TableName=table, Item={**key("a"), "v": {"S": "second"}})
    release.set()
    await first

    await assert_cache_agrees(cached, raw_client, table, "a")
    assert (await cached.get_item(TableName=table, Key=key("a")))["Item"]["v"] == {"S": "second"}


async def test_composite_keys_are_written_through(
    raw_client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table(hash_key=("pk", "S"), range_key=("sk", "N"))
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache() as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        item_key = {"sk": {"N": "2"}, "pk": {"S": "p"}}
        await cached.get_item(TableName=table, Key=item_key)
        await cached.put_item(TableName=table, Item={**item_key, "v": {"S": "x"}})

        got = await cached.get_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"N": "2.0"}})

        assert got["Item"] == {"pk": {"S": "p"}, "sk": {"N": "2"}, "v": {"S": "x"}}
        assert instrumented.calls["get_item"] == 1


async def test_writes_bypassing_the_cache_are_seen_after_invalidate(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, warm: str
) -> None:
    await raw_client.put_item(TableName=warm, Item={**key("a"), "v": {"N": "42"}})
    await raw_client.put_item(TableName=warm, Item={**key("b"), "v": {"N": "42"}})
    assert (await cached.get_item(TableName=warm, Key=key("a")))["Item"]["v"] == {"N": "1"}

    cached.cache.invalidate(warm, key("a"))
    assert (await cached.get_item(TableName=warm, Key=key("a")))["Item"]["v"] == {"N": "42"}
    assert (await cached.get_item(TableName=warm, Key=key("b")))["Item"]["v"] == {"N": "1"}
    cached.cache.invalidate_table(warm)
    assert (await cached.get_item(TableName=warm, Key=key("b")))["Item"]["v"] == {"N": "42"}
    cached.cache.clear()
    assert cached.cache.stats()["CurrentEntries"] == 0
    with pytest.raises(ValueError, match="wire-format key"):
        cached.cache.invalidate(warm, {"pk": "a"})


@pytest.mark.dynamodb_local
async def test_written_numbers_are_cached_as_dynamodb_stores_them(
    dynamodb_local_endpoint: str,
) -> None:
    # moto keeps numbers as sent; DynamoDB (and DynamoDB Local) normalizes them
    async with aioboto3.Session().client(
        "dynamodb", **servers.client_kwargs(dynamodb_local_endpoint)
    ) as raw_client:
        table = "aiodax-numbers"
        await raw_client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        try:
            async with aiodax.Cache() as cache:
                cached = cache.wrap(raw_client)
                numbers = ["1.50", "01", "1e2", "-0", "0.0", "1E-3", "-1.2300e5"]
                item = {
                    **key("n"),
                    **{f"n{i}": {"N": n} for i, n in enumerate(numbers)},
                    "set": {"NS": ["1.0", "2e1"]},
                    "nested": {"M": {"deep": {"L": [{"N": "3.000"}]}, "m": {"N": "4.0"}}},
                    "list": {"L": [{"N": "5.0"}, {"NS": ["6.0"]}]},
                }
                await cached.put_item(TableName=table, Item=item)
                await assert_cache_agrees(cached, raw_client, table, "n")
        finally:
            await raw_client.delete_table(TableName=table)

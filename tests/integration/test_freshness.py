"""Freshness policies against a server: stale-if-error on injected DynamoDB faults
(client flavour), stale-while-revalidate per table through a resource's table.

Faults are injected on the client side and the clock is fake, so one server
suffices: moto only (``endpoint`` is overridden below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import InstrumentedClient
from tests import servers
from tests.support import FakeClock, until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TTL = 10.0


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def item(pk: str, value: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": value}}


def sent(cache: aiodax.Cache, operation: str) -> int:
    count: int = cache.stats()["BackendRequests"].get(operation, 0)
    return count


async def test_stale_if_error_stands_in_for_throttling_but_not_for_a_bad_request(
    raw_client: DynamoDBClient, table: str, clock: FakeClock
) -> None:
    await raw_client.put_item(TableName=table, Item=item("a", "old"))
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache(item_ttl=TTL, clock=clock, stale_if_error=60) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        assert (await cached.get_item(TableName=table, Key=key("a")))["Item"] == item("a", "old")
        clock.advance(TTL + 1)
        instrumented.fail("get_item", "ProvisionedThroughputExceededException")
        stale = await cached.get_item(TableName=table, Key=key("a"))
        assert stale["Item"] == item("a", "old")
        assert cache.stats()["StaleServed"] == 1
        instrumented.fail("get_item", "ValidationException")
        with pytest.raises(ClientError, match="ValidationException"):
            await cached.get_item(TableName=table, Key=key("a"))
        # A write through the cache wins: the stale entry is gone.
        await cached.put_item(TableName=table, Item=item("a", "new"))
        clock.advance(TTL + 1)
        instrumented.fail("get_item", "ThrottlingException")
        assert (await cached.get_item(TableName=table, Key=key("a")))["Item"] == item("a", "new")
        assert cache.stats()["StaleServed"] == 2


async def test_a_resource_table_serves_stale_while_one_reload_runs(
    raw_client: DynamoDBClient,
    table: str,
    clock: FakeClock,
    client_kwargs: servers.ClientKwargs,
) -> None:
    await raw_client.put_item(TableName=table, Item=item("a", "old"))
    options = aiodax.TableConfig(stale_while_revalidate=30)
    async with (
        aioboto3.Session().resource("dynamodb", **client_kwargs) as plain,
        aiodax.Cache(item_ttl=TTL, clock=clock, tables={table: options}) as cache,
    ):
        cached = await cache.wrap(plain).Table(table)
        assert (await cached.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a", "v": "old"}
        await raw_client.put_item(TableName=table, Item=item("a", "new"))
        clock.advance(TTL + 1)
        assert (await cached.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a", "v": "old"}
        await until(lambda: cache.stats()["InFlight"] == 0 and sent(cache, "get_item") == 2)
        assert (await cached.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a", "v": "new"}
        assert sent(cache, "get_item") == 2
        assert cache.stats()["StaleServed"] == 1


async def test_stale_if_error_stands_in_for_batch_keys_and_projections_on_throttling(
    raw_client: DynamoDBClient, table: str, clock: FakeClock
) -> None:
    for pk in ("a", "b"):
        await raw_client.put_item(TableName=table, Item=item(pk, "old"))
    instrumented = InstrumentedClient(raw_client)
    async with aiodax.Cache(item_ttl=TTL, clock=clock, stale_if_error=60) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        both = {table: {"Keys": [key("a"), key("b")]}}
        await cached.batch_get_item(RequestItems=both)
        projected = await cached.get_item(TableName=table, Key=key("a"), ProjectionExpression="v")
        assert projected["Item"] == {"v": {"S": "old"}}
        for pk in ("a", "b", "c"):
            await raw_client.put_item(TableName=table, Item=item(pk, "new"))
        clock.advance(TTL + 1)

        instrumented.fail("batch_get_item", "ProvisionedThroughputExceededException")
        stale = await cached.batch_get_item(
            RequestItems={table: {"Keys": [key("a"), key("b"), key("c")]}}
        )
        assert stale["Responses"][table] == [item("a", "old"), item("b", "old")]
        # "c" was never cached: it comes back unprocessed, as DynamoDB returns a key it
        # could not read in a batch it partly answered.
        assert stale["UnprocessedKeys"] == {table: {"Keys": [key("c")]}}
        instrumented.fail("get_item", "ThrottlingException")
        stale = await cached.get_item(TableName=table, Key=key("a"), ProjectionExpression="v")
        assert stale["Item"] == {"v": {"S": "old"}}
        assert cache.stats()["StaleServed"] == 3

        instrumented.fail("batch_get_item", "ValidationException")
        with pytest.raises(ClientError, match="ValidationException"):
            await cached.batch_get_item(RequestItems=both)
        # Unfailed, the batch reads DynamoDB's current items.
        fresh = await cached.batch_get_item(RequestItems=both)
        assert fresh["Responses"][table] == [item("a", "new"), item("b", "new")]
        assert cache.stats()["StaleServed"] == 3

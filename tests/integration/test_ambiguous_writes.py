"""Writes whose outcome the caller cannot tell: the cache never serves what they hide.

- A ``TransactWriteItems`` whose ``ClientRequestToken`` was used in the last 10
  minutes is answered with success and applies nothing: its images are not cached
  (DynamoDB Local implements the token; moto does not).
- A write that timed out or was cancelled while its request was out may still
  land: what it names stays uncached for the client's own window (its
  ``connect_timeout + read_timeout``), so that a read before the landing cannot
  cache the value from before it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ReadTimeoutError

import aiodax
from aiodax.testing import InstrumentedClient
from tests import servers
from tests.support import FakeClock, gather_all

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEY = {"pk": {"S": "a"}}


def item(value: str) -> dict[str, Any]:
    return {**KEY, "v": {"N": value}}


# ------------------------------------------------------ a replayed transaction


@pytest.mark.dynamodb_local
async def test_a_replayed_transaction_does_not_cache_the_images_it_did_not_write(
    dynamodb_local_endpoint: str,
) -> None:
    async with aioboto3.Session().client(
        "dynamodb", **servers.client_kwargs(dynamodb_local_endpoint)
    ) as raw_client:
        table = f"aiodax-replay-{uuid.uuid4().hex[:12]}"
        await raw_client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        try:
            async with aiodax.Cache() as cache:
                cached = cache.wrap(raw_client)
                transaction: Any = {
                    "TransactItems": [{"Put": {"TableName": table, "Item": item("1")}}],
                    "ClientRequestToken": uuid.uuid4().hex,
                }
                await cached.transact_write_items(**transaction)
                await cached.put_item(TableName=table, Item=item("2"))
                await cached.transact_write_items(**transaction)  # a replay: applies nothing

                consistent = await raw_client.get_item(
                    TableName=table, Key=KEY, ConsistentRead=True
                )
                assert consistent["Item"] == item("2")  # DynamoDB kept the put
                assert (await cached.get_item(TableName=table, Key=KEY))["Item"] == item("2")
        finally:
            await raw_client.delete_table(TableName=table)


# ------------------------------------------------------- a write landing late


class LateWrites(InstrumentedClient):
    """While ``land`` is clear, a PutItem reaches DynamoDB only once it is set,
    whatever became of its caller: the request was on its way when the caller
    gave up.

    With ``read_timeout``, the caller of such a PutItem gets botocore's
    ``ReadTimeoutError`` after that many seconds, as from a client whose read
    timed out.
    """

    def __init__(self, client: Any, *, read_timeout: float | None = None) -> None:
        super().__init__(client)
        self.read_timeout = read_timeout
        self.land = asyncio.Event()
        self.landings: list[asyncio.Task[Any]] = []

    async def put_item(self, **request: Any) -> Any:
        if self.land.is_set():
            return await self.wrapped.put_item(**request)
        landing = asyncio.create_task(self._land(request))
        self.landings.append(landing)
        if self.read_timeout is None:
            return await asyncio.shield(landing)
        try:
            async with asyncio.timeout(self.read_timeout):
                return await asyncio.shield(landing)
        except TimeoutError:
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1") from None

    async def _land(self, request: dict[str, Any]) -> Any:
        await self.land.wait()
        return await self.wrapped.put_item(**request)


def partition_query(table: str) -> dict[str, Any]:
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": KEY["pk"]},
    }


@pytest.mark.parametrize("failure", ["cancelled", "read-timeout"])
async def test_a_write_landing_after_its_failure_is_not_hidden_by_a_read_before(
    raw_client: DynamoDBClient, table: str, clock: FakeClock, failure: str
) -> None:
    late = LateWrites(raw_client, read_timeout=0.05 if failure == "read-timeout" else None)
    async with aiodax.Cache(clock=clock) as cache:
        cached = cache.wrap(cast("DynamoDBClient", late))
        late.land.set()
        await cached.put_item(TableName=table, Item=item("1"))  # cached, schema known
        assert (await cached.query(**partition_query(table)))["Items"] == [item("1")]
        late.land.clear()

        if failure == "cancelled":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await cached.put_item(TableName=table, Item=item("2"))
        else:
            with pytest.raises(ReadTimeoutError):
                await cached.put_item(TableName=table, Item=item("2"))
        # Read right after: DynamoDB has not applied the write (yet).
        assert (await cached.get_item(TableName=table, Key=KEY))["Item"] == item("1")
        assert (await cached.query(**partition_query(table)))["Items"] == [item("1")]

        late.land.set()
        await late.landings[-1]  # now DynamoDB applies it

        consistent = await raw_client.get_item(TableName=table, Key=KEY, ConsistentRead=True)
        assert consistent["Item"] == item("2")
        assert (await cached.get_item(TableName=table, Key=KEY))["Item"] == item("2")
        assert (await cached.query(**partition_query(table)))["Items"] == [item("2")]
        assert cache.stats()["AmbiguousWrites"] == 1


# -------------------------------------------------------------- the hold's window


@pytest.mark.parametrize("flavour", ["client", "resource"])
async def test_the_hold_lasts_the_client_s_connect_and_read_timeouts_then_ends(
    client_kwargs: servers.ClientKwargs, table: str, clock: FakeClock, flavour: str
) -> None:
    timeouts = AioConfig(connect_timeout=1.5, read_timeout=2)
    kwargs: Any = {**client_kwargs, "config": client_kwargs["config"].merge(timeouts)}
    window = 3.5
    session = aioboto3.Session()
    sent = asyncio.Event()
    never = asyncio.Event()

    async def stall(**_: Any) -> None:
        sent.set()  # the request is going out; it never comes back
        await never.wait()

    async with (
        session.client("dynamodb", **kwargs) as client,
        session.resource("dynamodb", **kwargs) as resource,
        aiodax.Cache(clock=clock) as cache,
    ):
        await client.put_item(TableName=table, Item=item("1"))
        raw: Any = client if flavour == "client" else resource.meta.client
        raw.meta.events.register("before-send.dynamodb.PutItem", stall)
        if flavour == "client":
            cached_client = cache.wrap(client)

            async def get() -> Any:
                return (await cached_client.get_item(TableName=table, Key=KEY))["Item"]

            put = cached_client.put_item(TableName=table, Item=item("2"))
        else:
            cached_table = await cache.wrap(resource).Table(table)

            async def get() -> Any:
                return (await cached_table.get_item(Key={"pk": "a"}))["Item"]

            put = cached_table.put_item(Item={"pk": "a", "v": 2})

        write = asyncio.create_task(put)
        await sent.wait()
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write

        def sent_gets() -> int:
            backend_requests: dict[str, int] = cache.stats()["BackendRequests"]
            return backend_requests.get("get_item", 0)

        clock.advance(window - 0.01)
        before = sent_gets()
        answers = await gather_all(*(get() for _ in range(5)))
        assert sent_gets() == before + 1  # held: not cached, but coalesced
        await get()
        assert sent_gets() == before + 2

        clock.advance(0.01)  # the hold has ended by itself
        first = await get()
        await get()
        assert sent_gets() == before + 3  # cached again
        assert answers == [first] * 5

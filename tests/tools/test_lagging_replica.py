"""``aiodax.testing.LaggingReplica``: eventually consistent reads that lag behind writes.

Each integration test runs against a pair of moto servers and a pair of DynamoDB Local
instances: the session's server is the primary, a second instance (started here) the
replica.  moto keeps its tables per process, so the replica's moto runs in a child
process.  Tests hold the replica back with a lag no test waits out (``LONG``) and catch
it up by setting the lag to 0, except the one that waits for the lag itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import aioboto3
import aiohttp
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import LaggingReplica, ReplicaDiverged
from aiodax.testing import _replication as replication
from aiodax.testing.servers import HOST, client_kwargs, string_key_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import CreateTableInputTypeDef

#: A lag no test waits out.
LONG = 60.0

Item: TypeAlias = dict[str, Any]
MakeTable: TypeAlias = Callable[[], Awaitable[str]]


@pytest.fixture
async def proxy(upstreams: tuple[str, str]) -> AsyncIterator[LaggingReplica]:
    async with LaggingReplica(*upstreams, lag=LONG) as proxy:
        yield proxy


@pytest.fixture
async def client(proxy: LaggingReplica) -> AsyncIterator[DynamoDBClient]:
    """A plain aiobotocore client of the proxy."""
    async with aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as c:
        yield c


@pytest.fixture
async def replica_client(upstreams: tuple[str, str]) -> AsyncIterator[DynamoDBClient]:
    """A client of the replica itself, bypassing the proxy."""
    async with aioboto3.Session().client("dynamodb", **client_kwargs(upstreams[1])) as c:
        yield c


@pytest.fixture
async def make_table(client: DynamoDBClient) -> AsyncIterator[MakeTable]:
    """Tables keyed by ``pk`` and ``sk`` with a GSI ``by_g`` on ``g``, made through the proxy."""
    created: list[str] = []

    async def make() -> str:
        name = f"aiodax-lag-{uuid.uuid4().hex[:12]}"
        request: CreateTableInputTypeDef = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g")
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by_g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        }
        await client.create_table(**request)
        created.append(name)
        return name

    yield make

    for name in created:
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            await client.delete_table(TableName=name)


def item(v: str, *, pk: str = "p", sk: str = "s") -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "g": {"S": "G"}, "v": {"S": v}}


def key(pk: str = "p", sk: str = "s") -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


async def catch_up(proxy: LaggingReplica) -> None:
    proxy.lag = 0
    await proxy.settled()


async def reads(client: DynamoDBClient, table: str, *, consistent: bool) -> dict[str, Any]:
    """What every read API answers about item ``p``/``s``, read one way."""
    partition: dict[str, Any] = {
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p"}},
    }
    batch = await client.batch_get_item(
        RequestItems={table: {"Keys": [key()], "ConsistentRead": consistent}}
    )
    select = await client.execute_statement(
        Statement=f"SELECT * FROM \"{table}\" WHERE pk = 'p' AND sk = 's'",
        ConsistentRead=consistent,
    )
    answers = {
        "GetItem": (
            await client.get_item(TableName=table, Key=key(), ConsistentRead=consistent)
        ).get("Item"),
        "Query": (await client.query(TableName=table, ConsistentRead=consistent, **partition))[
            "Items"
        ],
        "Scan": (await client.scan(TableName=table, ConsistentRead=consistent))["Items"],
        "BatchGetItem": batch["Responses"][table],
        "ExecuteStatement": select["Items"],
    }
    if consistent:
        transact = await client.transact_get_items(
            TransactItems=[{"Get": {"TableName": table, "Key": key()}}]
        )
        answers["TransactGetItems"] = transact["Responses"][0].get("Item")
    else:
        # A GSI cannot be read consistently (DynamoDB refuses it).
        gsi = await client.query(
            TableName=table,
            IndexName="by_g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "G"}},
        )
        answers["GSI Query"] = gsi["Items"]
    return answers


def seen(state: Item | None, *, consistent: bool) -> dict[str, Any]:
    """What :func:`reads` answers when item ``p``/``s`` is ``state``."""
    many = [state] if state is not None else []
    answers: dict[str, Any] = {
        "GetItem": state,
        "Query": many,
        "Scan": many,
        "BatchGetItem": many,
        "ExecuteStatement": many,
    }
    if consistent:
        answers["TransactGetItems"] = state
    else:
        answers["GSI Query"] = many
    return answers


# What eventually consistent reads see -------------------------------------------


async def test_eventual_reads_see_the_state_before_the_write_until_settled(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    proxy.lag = 0
    await client.put_item(TableName=table, Item=item("old"))
    proxy.lag = LONG
    await client.put_item(TableName=table, Item=item("new"))

    assert await reads(client, table, consistent=False) == seen(item("old"), consistent=False)
    assert await reads(client, table, consistent=True) == seen(item("new"), consistent=True)
    assert proxy.pending == 1

    await catch_up(proxy)

    assert await reads(client, table, consistent=False) == seen(item("new"), consistent=False)
    assert proxy.pending == 0


async def test_a_new_item_is_missing_from_eventual_reads_until_settled(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("new"))

    assert await reads(client, table, consistent=False) == seen(None, consistent=False)
    assert await reads(client, table, consistent=True) == seen(item("new"), consistent=True)

    await catch_up(proxy)

    assert await reads(client, table, consistent=False) == seen(item("new"), consistent=False)


async def test_the_replica_applies_a_write_once_the_lag_has_passed(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    proxy.lag = 1.0
    before = time.monotonic()
    await client.put_item(TableName=table, Item=item("new"))

    assert "Item" not in await client.get_item(TableName=table, Key=key())
    await proxy.settled()

    assert time.monotonic() - before >= 1.0
    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("new")


async def test_a_batch_get_reads_each_table_its_own_way(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    eventual, consistent = await make_table(), await make_table()
    for table in (eventual, consistent):
        await client.put_item(TableName=table, Item=item("new"))

    answer = await client.batch_get_item(
        RequestItems={
            eventual: {"Keys": [key()]},
            consistent: {"Keys": [key()], "ConsistentRead": True},
        },
        ReturnConsumedCapacity="TOTAL",
    )

    assert answer["Responses"] == {eventual: [], consistent: [item("new")]}
    assert answer["UnprocessedKeys"] == {}
    assert {c["TableName"] for c in answer["ConsumedCapacity"]} == {eventual, consistent}
    assert proxy.counts["BatchGetItem", "consistent"] == 1
    assert proxy.counts["BatchGetItem", "eventual"] == 1


# What the replica replays -------------------------------------------------------


async def test_a_failed_conditional_write_is_not_replayed(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("old"))

    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        await client.put_item(
            TableName=table, Item=item("new"), ConditionExpression="attribute_not_exists(pk)"
        )
    await catch_up(proxy)  # would raise ReplicaDiverged had the replica refused it too

    assert proxy.replayed == Counter({"CreateTable": 1, "PutItem": 1})
    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("old")


async def test_a_conditional_write_that_succeeded_is_replayed_as_is(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("old"))
    answer = await client.update_item(
        TableName=table,
        Key=key(),
        UpdateExpression="SET v = :new",
        ConditionExpression="v = :old",
        ExpressionAttributeValues={":new": {"S": "new"}, ":old": {"S": "old"}},
        ReturnValues="ALL_OLD",
    )
    assert answer["Attributes"] == item("old")

    await catch_up(proxy)

    assert proxy.replayed == Counter({"CreateTable": 1, "PutItem": 1, "UpdateItem": 1})
    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("new")


async def test_every_kind_of_write_is_replayed_in_the_primarys_order(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("1"))
    await client.update_item(
        TableName=table,
        Key=key(),
        UpdateExpression="SET v = :v ADD n :one",
        ExpressionAttributeValues={":v": {"S": "2"}, ":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    await client.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": item("b", sk="b")}},
                {"PutRequest": {"Item": item("c", sk="c")}},
            ]
        }
    )
    await client.transact_write_items(
        TransactItems=[
            {"Delete": {"TableName": table, "Key": key(sk="b")}},
            {
                "Update": {
                    "TableName": table,
                    "Key": key(sk="c"),
                    "UpdateExpression": "SET v = :v",
                    "ConditionExpression": "v = :c",
                    "ExpressionAttributeValues": {":v": {"S": "c2"}, ":c": {"S": "c"}},
                }
            },
        ]
    )
    await client.execute_statement(
        Statement=f"INSERT INTO \"{table}\" VALUE {{'pk': 'p', 'sk': 'd', 'v': 'd'}}"
    )
    await client.execute_statement(
        Statement=f"UPDATE \"{table}\" SET v = 'd2' WHERE pk = 'p' AND sk = 'd'"
    )
    await client.batch_execute_statement(
        Statements=[
            {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'p', 'sk': 'e', 'v': 'e'}}"},
            {"Statement": f"DELETE FROM \"{table}\" WHERE pk = 'p' AND sk = 'c'"},
        ]
    )
    await client.execute_transaction(
        TransactStatements=[
            {"Statement": f"UPDATE \"{table}\" SET v = 'e2' WHERE pk = 'p' AND sk = 'e'"},
        ]
    )
    # Concurrent writes to one item: the replica must apply them in the primary's order.
    await asyncio.gather(
        *(
            client.update_item(
                TableName=table,
                Key=key(sk=f"z{i % 2}"),
                UpdateExpression="ADD n :one SET m = :i",
                ExpressionAttributeValues={":one": {"N": "1"}, ":i": {"N": str(i)}},
            )
            for i in range(20)
        )
    )
    await client.delete_item(TableName=table, Key=key(sk="z1"))
    primary = (await client.scan(TableName=table, ConsistentRead=True))["Items"]
    assert len(primary) == 4  # s, d, e, z0: b, c and z1 were deleted
    assert (await client.scan(TableName=table))["Items"] == []

    await catch_up(proxy)

    assert _sorted((await client.scan(TableName=table))["Items"]) == _sorted(primary)
    assert proxy.replayed == Counter(
        {
            "CreateTable": 1,
            "PutItem": 1,
            "UpdateItem": 21,
            "BatchWriteItem": 1,
            "TransactWriteItems": 1,
            "ExecuteStatement": 2,
            "BatchExecuteStatement": 1,
            "ExecuteTransaction": 1,
            "DeleteItem": 1,
        }
    )


class Relay:
    """A relay to a server that holds back the requests naming ``marker``, or their answers.

    ``before=False``: the server has applied such a request when its answer is held, so
    a later request reaches the server first and is answered first.  ``before=True``:
    the server gets the request ``delay`` seconds late.
    """

    def __init__(self, upstream: str, marker: bytes, *, delay: float, before: bool) -> None:
        self.upstream, self.marker, self.delay, self.before = upstream, marker, delay, before
        self.held = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/", self._relay)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        async with aiohttp.ClientSession(auto_decompress=False) as self._session:
            try:
                yield f"http://{HOST}:{runner.addresses[0][1]}"
            finally:
                await runner.cleanup()

    async def _relay(self, request: web.Request) -> web.Response:
        body = await request.read()
        held = self.marker in body
        if held and self.before:
            self.held.set()
            await asyncio.sleep(self.delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with self._session.post(self.upstream, data=body, headers=headers) as answer:
            data = await answer.read()
            status, returned = answer.status, dict(answer.headers)
        if held and not self.before:
            self.held.set()
            await asyncio.sleep(self.delay)
        returned.pop("Content-Length", None)
        return web.Response(status=status, body=data, headers=returned)


async def test_concurrent_writes_reach_the_replica_in_the_order_the_primary_applied_them(
    upstreams: tuple[str, str], make_table: MakeTable, client: DynamoDBClient
) -> None:
    table = await make_table()
    relay = Relay(upstreams[0], marker=b'"first"', delay=0.3, before=False)
    async with (
        relay.running() as primary,
        LaggingReplica(primary, upstreams[1], lag=LONG) as proxy,
        aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as writer,
    ):
        first = asyncio.create_task(writer.put_item(TableName=table, Item=item("first")))
        await relay.held.wait()  # applied by the primary, its answer not yet back
        await writer.put_item(TableName=table, Item=item("second"))
        await first

        await catch_up(proxy)

    assert (await client.get_item(TableName=table, Key=key(), ConsistentRead=True))["Item"] == item(
        "second"
    )
    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("second")


def _sorted(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: str(sorted(i.items())))


async def test_a_table_change_applies_the_writes_before_it_first(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("new"))
    assert proxy.pending == 1

    await client.update_table(
        TableName=table,
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        BillingMode="PROVISIONED",
    )

    assert proxy.pending == 0
    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("new")
    assert proxy.replayed == Counter({"CreateTable": 1, "PutItem": 1, "UpdateTable": 1})
    await client.delete_table(TableName=table)
    assert proxy.replayed["DeleteTable"] == 1
    await proxy.settled(within=1)


async def test_a_replay_the_replica_refuses_is_reported_by_settled(
    proxy: LaggingReplica,
    client: DynamoDBClient,
    replica_client: DynamoDBClient,
    make_table: MakeTable,
) -> None:
    table = await make_table()
    await client.put_item(
        TableName=table, Item=item("new"), ConditionExpression="attribute_not_exists(pk)"
    )
    # Behind the proxy's back: the replica's history is no longer the primary's.
    await replica_client.put_item(TableName=table, Item=item("elsewhere"))

    with pytest.raises(ReplicaDiverged) as diverged:
        await catch_up(proxy)

    assert len(diverged.value.failures) == 1
    assert "PutItem" in diverged.value.failures[0]
    assert "ConditionalCheckFailed" in diverged.value.failures[0]
    assert proxy.failures == diverged.value.failures


async def test_settled_gives_up_after_its_bound(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("new"))

    with pytest.raises(TimeoutError):
        await proxy.settled(within=0.05)

    assert proxy.pending == 1


# Counting and lag 0 -------------------------------------------------------------


async def test_requests_are_counted_by_operation_and_route(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    proxy.counts.clear()

    await client.put_item(TableName=table, Item=item("new"))
    await client.get_item(TableName=table, Key=key())
    await client.get_item(TableName=table, Key=key(), ConsistentRead=False)
    await client.get_item(TableName=table, Key=key(), ConsistentRead=True)
    await client.query(
        TableName=table,
        IndexName="by_g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "G"}},
    )
    await client.scan(TableName=table, ConsistentRead=True)
    await client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key()}}])
    await client.execute_statement(Statement=f'SELECT * FROM "{table}"')
    await client.describe_table(TableName=table)

    assert proxy.counts == Counter(
        {
            ("PutItem", "write"): 1,
            ("GetItem", "eventual"): 2,
            ("GetItem", "consistent"): 1,
            ("Query", "eventual"): 1,
            ("Scan", "consistent"): 1,
            ("TransactGetItems", "consistent"): 1,
            ("ExecuteStatement", "eventual"): 1,
            ("DescribeTable", "control"): 1,
        }
    )


async def test_with_no_lag_every_read_sees_every_write(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    proxy.lag = 0
    for value in ("1", "2", "3"):
        await client.put_item(TableName=table, Item=item(value))
        assert await reads(client, table, consistent=False) == seen(item(value), consistent=False)
    await client.update_item(
        TableName=table,
        Key=key(),
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "4"}},
    )
    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("4")
    await client.delete_item(TableName=table, Key=key())
    assert await reads(client, table, consistent=False) == seen(None, consistent=False)
    assert proxy.pending == 0


async def test_with_no_lag_a_write_is_answered_once_the_replica_has_it(
    upstreams: tuple[str, str], make_table: MakeTable
) -> None:
    table = await make_table()
    slow_replica = Relay(upstreams[1], marker=b'"late"', delay=0.3, before=True)
    async with (
        slow_replica.running() as replica,
        LaggingReplica(upstreams[0], replica, lag=0) as proxy,
        aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as client,
    ):
        await client.put_item(TableName=table, Item=item("late"))

        assert slow_replica.held.is_set()
        assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("late")


async def test_lowering_the_lag_releases_the_replays_already_waiting(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    await client.put_item(TableName=table, Item=item("new"))
    assert proxy.pending == 1

    proxy.lag = 0.01
    await proxy.settled(within=5)

    assert (await client.get_item(TableName=table, Key=key()))["Item"] == item("new")


async def test_errors_pass_through_unchanged(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    table = await make_table()
    with pytest.raises(ClientError) as direct:
        await client.query(
            TableName=table,
            IndexName="by_g",
            ConsistentRead=True,
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "G"}},
        )
    assert direct.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await client.get_item(TableName="aiodax-lag-no-such-table", Key=key())
    await proxy.settled(within=1)


# The proxy's own life -----------------------------------------------------------


async def test_it_listens_on_loopback_only_while_open(upstreams: tuple[str, str]) -> None:
    proxy = LaggingReplica(*upstreams)
    with pytest.raises(RuntimeError):
        _ = proxy.url
    async with proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        assert host == "127.0.0.1"
        with socket.create_connection((host, int(port)), timeout=1):
            pass
    with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), 1):
        pass
    with pytest.raises(RuntimeError):
        await proxy.settled()
    with pytest.raises(RuntimeError):
        await proxy.__aenter__()


async def test_leaving_drops_the_replays_still_waiting(
    upstreams: tuple[str, str], replica_client: DynamoDBClient
) -> None:
    name = f"aiodax-lag-{uuid.uuid4().hex[:12]}"
    async with (
        LaggingReplica(*upstreams, lag=LONG) as proxy,
        aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as client,
    ):
        await client.create_table(**string_key_table(name))
        await client.put_item(TableName=name, Item={"pk": {"S": "a"}})
        assert proxy.pending == 1

    async with aioboto3.Session().client("dynamodb", **client_kwargs(upstreams[0])) as primary:
        try:
            assert len((await primary.scan(TableName=name))["Items"]) == 1
            assert (await replica_client.scan(TableName=name))["Items"] == []
        finally:
            await primary.delete_table(TableName=name)
            await replica_client.delete_table(TableName=name)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_server_that_does_not_answer_gets_the_client_a_502() -> None:
    dead = f"http://{HOST}:{_closed_port()}"
    async with (
        LaggingReplica(dead, f"http://{HOST}:{_closed_port()}", lag=0) as proxy,
        aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as client,
    ):
        with pytest.raises(ClientError) as read:
            await client.get_item(TableName="t", Key=key(), ConsistentRead=True)
        with pytest.raises(ClientError) as write:
            await client.put_item(TableName="t", Item=item("x"))

        for error in (read.value, write.value):
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 502
            assert error.response["Error"]["Code"] == "LaggingReplicaUpstreamError"
            assert dead in error.response["Error"]["Message"]
        with pytest.raises(ReplicaDiverged, match="no answer from the primary"):
            await proxy.settled()


async def test_a_request_larger_than_max_body_is_refused(upstreams: tuple[str, str]) -> None:
    async with (
        LaggingReplica(*upstreams, max_body=1000) as proxy,
        aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as client,
    ):
        with pytest.raises(ClientError) as refused:
            await client.put_item(TableName="t", Item=item("x" * 2000))

        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert proxy.counts == Counter()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"primary": "http://127.0.0.1:1", "replica": "http://127.0.0.1:1"}, ValueError),
        ({"primary": "http://10.0.0.1:1", "replica": "http://127.0.0.1:2"}, ValueError),
        ({"primary": "https://127.0.0.1:1", "replica": "http://127.0.0.1:2"}, ValueError),
        ({"primary": "http://127.0.0.1", "replica": "http://127.0.0.1:2"}, ValueError),
        ({"primary": "http://127.0.0.1:1/x", "replica": "http://127.0.0.1:2"}, ValueError),
        ({"lag": -1}, ValueError),
        ({"lag": float("nan")}, ValueError),
        ({"lag": "1"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"max_pending": 0}, ValueError),
        ({"max_body": True}, TypeError),
        ({"port": 70000}, ValueError),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any], error: type[Exception]) -> None:
    given = {"primary": "http://127.0.0.1:1", "replica": "http://localhost:2", **arguments}
    with pytest.raises(error):
        LaggingReplica(**given)


def test_the_lag_is_validated_when_changed() -> None:
    proxy = LaggingReplica("http://127.0.0.1:1", "http://127.0.0.1:2")
    with pytest.raises(ValueError, match="lag"):
        proxy.lag = -0.5
    proxy.lag = 0
    assert proxy.lag == 0.0


# The rules, for what the local servers never do ---------------------------------


@pytest.mark.parametrize(
    ("operation", "body", "route", "replayed"),
    [
        ("GetItem", {"ConsistentRead": True}, "consistent", False),
        ("GetItem", {"ConsistentRead": False}, "eventual", False),
        ("GetItem", "not json", "eventual", False),
        ("Query", {"IndexName": "g"}, "eventual", False),
        ("Scan", {"ConsistentRead": True}, "consistent", False),
        ("TransactGetItems", {}, "consistent", False),
        ("BatchGetItem", {"RequestItems": {"t": {"ConsistentRead": True}}}, "consistent", False),
        ("BatchGetItem", {"RequestItems": {"t": {}}}, "eventual", False),
        ("ExecuteStatement", {"Statement": " select * from t"}, "eventual", False),
        (
            "ExecuteStatement",
            {"Statement": "SELECT 1", "ConsistentRead": True},
            "consistent",
            False,
        ),
        ("ExecuteStatement", {"Statement": "UPDATE t SET a = 1"}, "write", True),
        ("BatchExecuteStatement", {"Statements": [{"Statement": "SELECT 1"}]}, "eventual", False),
        (
            "BatchExecuteStatement",
            {"Statements": [{"Statement": "SELECT 1"}, {"Statement": "DELETE FROM t"}]},
            "write",
            True,
        ),
        (
            "ExecuteTransaction",
            {"TransactStatements": [{"Statement": "SELECT 1"}]},
            "consistent",
            False,
        ),
        ("ExecuteTransaction", {"TransactStatements": [{"Statement": "INSERT"}]}, "write", True),
        ("PutItem", {}, "write", True),
        ("TransactWriteItems", {}, "write", True),
        ("CreateTable", {}, "control", True),
        ("UpdateTimeToLive", {}, "control", True),
        ("DescribeTable", {}, "control", False),
        ("ListTables", {}, "control", False),
        (None, {}, "control", False),
    ],
)
def test_routes(operation: str | None, body: object, route: str, replayed: bool) -> None:
    plan = replication.plan(operation, body)
    assert (plan.route, plan.replayed, plan.split) == (route, replayed, None)


def test_a_mixed_batch_get_is_split_by_table() -> None:
    plan = replication.plan(
        "BatchGetItem",
        {
            "RequestItems": {"a": {"Keys": [1], "ConsistentRead": True}, "b": {"Keys": [2]}},
            "ReturnConsumedCapacity": "TOTAL",
        },
    )
    assert plan.split == (
        {
            "RequestItems": {"a": {"Keys": [1], "ConsistentRead": True}},
            "ReturnConsumedCapacity": "TOTAL",
        },
        {"RequestItems": {"b": {"Keys": [2]}}, "ReturnConsumedCapacity": "TOTAL"},
    )


def test_merged_batch_get_answers() -> None:
    merged = replication.merged(
        b'{"Responses":{"a":[1]},"UnprocessedKeys":{"a":{"Keys":[3]}},"ConsumedCapacity":[{"TableName":"a"}]}',
        b'{"Responses":{"b":[2]},"UnprocessedKeys":{},"ConsumedCapacity":[{"TableName":"b"}]}',
    )
    assert merged == (
        b'{"Responses":{"b":[2],"a":[1]},"UnprocessedKeys":{"a":{"Keys":[3]}},'
        b'"ConsumedCapacity":[{"TableName":"a"},{"TableName":"b"}]}'
    )


def test_what_the_primary_left_unprocessed_is_not_replayed() -> None:
    request = b'{"RequestItems":{"t":[{"PutRequest":1},{"PutRequest":2}],"u":[{"PutRequest":3}]}}'

    assert replication.replay_body("BatchWriteItem", request, b'{"UnprocessedItems":{}}') == request
    assert (
        replication.replay_body(
            "BatchWriteItem", request, b'{"UnprocessedItems":{"t":[{"PutRequest":2}]}}'
        )
        == b'{"RequestItems":{"t":[{"PutRequest":1}],"u":[{"PutRequest":3}]}}'
    )
    everything = (
        b'{"UnprocessedItems":{"t":[{"PutRequest":1},{"PutRequest":2}],"u":[{"PutRequest":3}]}}'
    )
    assert replication.replay_body("BatchWriteItem", request, everything) is None


def test_statements_that_failed_on_the_primary_are_not_replayed() -> None:
    request = b'{"Statements":[{"Statement":"A"},{"Statement":"B"}]}'

    assert (
        replication.replay_body("BatchExecuteStatement", request, b'{"Responses":[{},{}]}')
        == request
    )
    assert (
        replication.replay_body(
            "BatchExecuteStatement", request, b'{"Responses":[{"Error":{}},{}]}'
        )
        == b'{"Statements":[{"Statement":"B"}]}'
    )
    assert (
        replication.replay_body(
            "BatchExecuteStatement", request, b'{"Responses":[{"Error":{}},{"Error":{}}]}'
        )
        is None
    )


# aiodax through the proxy -------------------------------------------------------


async def test_a_cache_fill_right_after_a_write_reads_the_replicas_old_page(
    proxy: LaggingReplica, client: DynamoDBClient, make_table: MakeTable
) -> None:
    """What the tool exists to show, reproduced on local servers: an eventual fill.

    With ``fill_consistency="eventual"`` (DAX's behaviour), a write through the cache
    drops the partition's cached Query page; the next Query is a miss filled with an
    eventually consistent read, which the replica answers with the page from before
    the write, and the cache keeps that page after the replica caught up.  aiodax's
    default fences such fills (``tests/integration/test_fences.py``).
    """
    table = await make_table()
    partition: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p"}},
    }
    async with aiodax.Cache(fill_consistency="eventual") as cache:
        cached = cache.wrap(client)
        await cached.put_item(TableName=table, Item=item("old"))
        await catch_up(proxy)
        assert (await cached.query(**partition))["Items"] == [item("old")]
        proxy.lag = LONG
        proxy.counts.clear()

        await cached.put_item(TableName=table, Item=item("new"))
        refilled = await cached.query(**partition)

        assert refilled["ResponseMetadata"]["CacheStatus"] == "miss"
        assert refilled["Items"] == [item("old")]
        assert proxy.counts["Query", "eventual"] == 1
        assert proxy.counts["Query", "consistent"] == 0

        await catch_up(proxy)
        later = await cached.query(**partition)
        assert (later["ResponseMetadata"]["CacheStatus"], later["Items"]) == ("hit", [item("old")])
        assert (await client.query(**partition))["Items"] == [item("new")]

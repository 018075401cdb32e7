"""Writes that bypass every cache, seen through DynamoDB Streams: on moto and DynamoDB Local.

Two caching processes share a namespace on a private Redis and hold an item and a
Query page; a plain client (no aiodax) writes: put, update, delete, batch write,
transaction.  Without an invalidator the processes keep serving the old value (the
TTL is 300 s); with one, every process stops serving it.  The invalidator also runs
as the ``aiodax streams`` command in a subprocess, SIGKILLed and restarted while
writes land, and two of them share one table.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest

import aiodax
from aiodax.testing import RedisServer
from aiodax.testing.servers import client_kwargs, string_key_table
from tests.distributed.harness import Fleet, Item, Worker, WorkerConfig, eventually

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

PK = {"pk": {"S": "p"}}
#: how long a change may take to reach every process (far below the 300 s TTL)
WITHIN = 15.0


@pytest.fixture(params=["moto", pytest.param("dynamodb-local", marks=pytest.mark.dynamodb_local)])
def upstream(request: pytest.FixtureRequest) -> str:
    """Each server in turn: moto's (in a child process) and DynamoDB Local."""
    name = "moto_child" if request.param == "moto" else "dynamodb_local_endpoint"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def plain(upstream: str) -> AsyncIterator[DynamoDBClient]:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(upstream)) as client:
        yield client


@pytest.fixture
async def streams_client(upstream: str) -> AsyncIterator[Any]:
    async with aioboto3.Session().client("dynamodbstreams", **client_kwargs(upstream)) as client:
        yield client


@pytest.fixture
async def streamed_table(plain: DynamoDBClient) -> AsyncIterator[str]:
    """A table keyed by ``pk`` and ``sk`` with a KEYS_ONLY stream."""
    name = f"aiodax-streams-{uuid.uuid4().hex[:10]}"
    spec = string_key_table(name, range_key="sk")
    spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    await plain.create_table(**spec)
    yield name
    with contextlib.suppress(Exception):
        await plain.delete_table(TableName=name)


@pytest.fixture
def namespace() -> str:
    return f"streams-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def workers(
    upstream: str, redis_server: RedisServer, namespace: str
) -> AsyncIterator[list[Worker]]:
    config = WorkerConfig(dynamodb=upstream, redis=redis_server.url, namespace=namespace)
    async with Fleet(config) as fleet:
        yield await fleet.spawn(2)


def _item(sk: str, value: str) -> Item:
    return {**PK, "sk": {"S": sk}, "v": {"S": value}}


def _key(sk: str) -> Item:
    return {**PK, "sk": {"S": sk}}


async def _page(worker: Worker, table: str) -> list[str]:
    """The values of the Query page of partition ``p``, as the worker's cache serves it."""
    answer = await worker.call(
        "query",
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )
    return [item["v"]["S"] for item in answer["Items"]]


async def _value(worker: Worker, table: str, sk: str) -> str | None:
    item = await worker.get(table, _key(sk))
    return None if item is None else str(item["v"]["S"])


async def _everywhere(workers: list[Worker], table: str, sk: str, value: str | None) -> None:
    for worker in workers:
        await eventually(
            lambda w=worker: _value(w, table, sk),  # type: ignore[misc]
            lambda seen: seen == value,
            within=WITHIN,
            what=f"{worker.name} serving {sk}={value}",
        )


async def _hold(workers: list[Worker], table: str, sks: list[str]) -> None:
    """Every worker caches the items ``sks`` and the partition's page (a hit each)."""
    for worker in workers:
        for sk in sks:
            await worker.get(table, _key(sk))
            assert (await worker.call("get_item", TableName=table, Key=_key(sk)))[
                "CacheStatus"
            ] == "hit"
        await _page(worker, table)


async def test_bypassing_writes_stop_being_served_everywhere(
    plain: DynamoDBClient,
    streams_client: Any,
    streamed_table: str,
    workers: list[Worker],
    redis_server: RedisServer,
    namespace: str,
) -> None:
    table = streamed_table
    for sk in ("a", "b", "c", "d", "e"):
        await plain.put_item(TableName=table, Item=_item(sk, "old"))
    await _hold(workers, table, ["a", "b", "c", "d", "e"])

    # Without an invalidator the caches serve the old value for the whole TTL.
    await plain.put_item(TableName=table, Item=_item("a", "new"))
    await asyncio.sleep(0.5)
    assert [await _value(w, table, "a") for w in workers] == ["old", "old"]

    async with aiodax.StreamsInvalidator(
        [table],
        client=streams_client,
        redis=redis_server.url,
        namespace=namespace,
        poll_interval=0.05,
    ) as invalidator:
        # It starts at the trim horizon: the write before it started is dropped too.
        await _everywhere(workers, table, "a", "new")
        await plain.update_item(
            TableName=table,
            Key=_key("b"),
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "new"}},
        )
        await plain.delete_item(TableName=table, Key=_key("c"))
        await plain.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": _item("d", "new")}}]}
        )
        await plain.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": _item("e", "new")}}]
        )
        await _everywhere(workers, table, "b", "new")
        await _everywhere(workers, table, "c", None)
        await _everywhere(workers, table, "d", "new")
        await _everywhere(workers, table, "e", "new")
        for worker in workers:
            await eventually(
                lambda w=worker: _page(w, table),  # type: ignore[misc]
                lambda values: values == ["new", "new", "new", "new"],
                within=WITHIN,
                what=f"{worker.name}'s page",
            )
        assert invalidator.stats()["Records"] >= 10

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
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest
import redis.asyncio as aioredis

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
        await eventually(
            lambda: _bus_length(redis_server, namespace),
            lambda length: length >= 6,
            what="the records before it started replayed",
        )
        # Held again (old values, hits), so that each drop below is the stream's doing.
        await _hold(workers, table, ["b", "c", "d", "e"])
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
        # Five puts before, then one of each write kind: each a record.
        await eventually(
            lambda: asyncio.sleep(0, invalidator.stats()["Records"]),
            lambda records: records >= 10,
            what="every record counted",
        )


@contextlib.asynccontextmanager
async def _command(
    upstream: str, redis_url: str, namespace: str, table: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``aiodax streams`` in a subprocess, once it follows ``table``; killed on leaving."""
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiodax",
            "streams",
            "--table",
            table,
            "--redis",
            redis_url,
            "--namespace",
            namespace,
            "--endpoint-url",
            upstream,
            "--region",
            "us-east-1",
            "--poll-interval",
            "0.05",
            "--lease-time",
            "1",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        )
    try:
        await eventually(
            lambda: asyncio.to_thread(log.read_text),
            lambda text: "following" in text or process.returncode is not None,
            within=60,
            what="aiodax streams starting",
        )
        assert process.returncode is None, await asyncio.to_thread(log.read_text)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_a_killed_invalidator_restarted_resumes_while_writes_land(
    upstream: str,
    plain: DynamoDBClient,
    streamed_table: str,
    workers: list[Worker],
    redis_server: RedisServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    table, log = streamed_table, tmp_path / "streams.log"
    sks = [f"k{at:02d}" for at in range(12)]
    for sk in sks:
        await plain.put_item(TableName=table, Item=_item(sk, "old"))
    async with _command(upstream, redis_server.url, namespace, table, log):
        # It starts at the trim horizon: the twelve puts first, before anything is held.
        await eventually(
            lambda: _bus_length(redis_server, namespace),
            lambda length: length >= len(sks),
            what="the first puts replayed",
        )
        await _hold(workers, table, sks)
        await plain.put_item(TableName=table, Item=_item(sks[0], "new"))
        await _everywhere(workers, table, sks[0], "new")

        async def writes() -> None:
            for sk in sks[1:]:
                await plain.put_item(TableName=table, Item=_item(sk, "new"))
                await asyncio.sleep(0.05)

        landing = asyncio.create_task(writes())
        await asyncio.sleep(0.2)
    # SIGKILLed: no lease let go, no goodbye; the writes go on meanwhile.
    checkpoints = await _checkpoints(redis_server, namespace, table)
    assert checkpoints, "the killed invalidator had written a checkpoint"
    async with _command(upstream, redis_server.url, namespace, table, log):
        await landing
        for sk in sks:
            await _everywhere(workers, table, sk, "new")


async def test_two_invalidators_share_a_table(
    plain: DynamoDBClient,
    streams_client: Any,
    streamed_table: str,
    workers: list[Worker],
    redis_server: RedisServer,
    namespace: str,
) -> None:
    table = streamed_table
    for sk in ("a", "b"):
        await plain.put_item(TableName=table, Item=_item(sk, "old"))

    def invalidator() -> aiodax.StreamsInvalidator:
        return aiodax.StreamsInvalidator(
            [table],
            client=streams_client,
            redis=redis_server.url,
            namespace=namespace,
            poll_interval=0.05,
            lease_time=1.0,
            describe_interval=0.2,
        )

    async with invalidator() as one, invalidator() as two:
        await eventually(
            lambda: asyncio.sleep(0, (one.stats()["ShardsReading"], two.stats()["ShardsReading"])),
            lambda reading: sum(reading) >= 1 and (one.stats()["Polls"] + two.stats()["Polls"]) > 0,
            what="a reader",
        )
        await eventually(
            lambda: _bus_length(redis_server, namespace),
            lambda length: length >= 2,
            what="the first puts replayed",
        )
        await _hold(workers, table, ["a", "b"])
        await plain.put_item(TableName=table, Item=_item("a", "new"))
        await _everywhere(workers, table, "a", "new")
        # One reader a shard: each record was read by one of them only.
        polls = [one.stats()["Polls"] > 0, two.stats()["Polls"] > 0]
        assert polls.count(True) == 1
        records = one.stats()["Records"] + two.stats()["Records"]
        assert records == 3  # the two puts before, the one after
        reader, standby = (one, two) if polls[0] else (two, one)
        await reader.aclose()  # lets its lease go: the other takes over
        await plain.put_item(TableName=table, Item=_item("b", "new"))
        await _everywhere(workers, table, "b", "new")
        assert standby.stats()["Records"] >= 1


async def _bus_length(server: RedisServer, namespace: str) -> int:
    """How many messages the namespace's bus holds."""
    client = aioredis.Redis.from_url(server.url)
    try:
        return int(await client.xlen(f"aiodax:v1:{{{namespace}}}:bus"))
    finally:
        await client.aclose()


async def _checkpoints(server: RedisServer, namespace: str, table: str) -> dict[Any, Any]:
    """The shards' checkpoints the invalidators of ``namespace`` wrote for ``table``."""
    client = aioredis.Redis.from_url(server.url)
    try:
        found: dict[Any, Any] = await client.hgetall(f"aiodax:v1:{{{namespace}}}:s:c:{table}")
        return found
    finally:
        await client.aclose()

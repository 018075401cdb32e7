"""``aiodax.testing.CountingProxy``: what reached the server, from every process."""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aioboto3
import aiohttp
import pytest

from aiodax.testing import CountedRequest, CountingProxy
from aiodax.testing.servers import client_kwargs, string_key_table
from tests.support import strip_metadata

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


@pytest.fixture
async def proxy(endpoint: str) -> AsyncIterator[CountingProxy]:
    async with CountingProxy(endpoint) as proxy:
        yield proxy


@pytest.fixture
async def client(proxy: CountingProxy) -> AsyncIterator[DynamoDBClient]:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(proxy.url)) as client:
        yield client


@pytest.fixture
async def table(client: DynamoDBClient, raw_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"aiodax-count-{uuid.uuid4().hex[:12]}"
    await client.create_table(**string_key_table(name))
    yield name
    await raw_client.delete_table(TableName=name)


async def test_it_counts_each_operation_per_table_and_passes_answers_unchanged(
    proxy: CountingProxy, client: DynamoDBClient, raw_client: DynamoDBClient, table: str
) -> None:
    item = {"pk": {"S": "a"}, "v": {"N": "1"}}
    await client.put_item(TableName=table, Item=item)
    through = await client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    await client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
    await client.batch_get_item(
        RequestItems={table: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]}}
    )
    direct = await raw_client.get_item(TableName=table, Key={"pk": {"S": "a"}})

    assert strip_metadata(through) == strip_metadata(direct) == {"Item": item}
    assert proxy.count("CreateTable") == 1
    assert proxy.count("PutItem", table=table) == 1
    assert proxy.count("GetItem") == proxy.count("GetItem", table=table) == 2
    assert proxy.count("GetItem", table="another") == 0
    assert proxy.count("BatchGetItem", table=table) == 1
    assert [(r.operation, r.consistent) for r in proxy.log if r.operation == "GetItem"] == [
        ("GetItem", False),
        ("GetItem", True),
    ]
    assert all(r.status == 200 and r.tables == (table,) for r in proxy.log)
    assert proxy.keys_read(table=table) == 2 + 2
    assert proxy.keys_read(table="another") == 0


_CHILD = """
import asyncio, sys
import aioboto3
from aiodax.testing.servers import client_kwargs

async def main(url, table):
    async with aioboto3.Session().client("dynamodb", **client_kwargs(url)) as client:
        for _ in range(3):
            await client.get_item(TableName=table, Key={"pk": {"S": "a"}})

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_it_counts_requests_from_other_processes(
    proxy: CountingProxy, client: DynamoDBClient, table: str
) -> None:
    children = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD, proxy.url, table)
        for _ in range(2)
    ]
    async with asyncio.timeout(60):
        codes = [await child.wait() for child in children]

    assert codes == [0, 0]
    assert proxy.count("GetItem", table=table) == 6


@pytest.mark.parametrize("endpoint", ["moto"], indirect=True)
async def test_reset_forgets_the_counts(
    proxy: CountingProxy, client: DynamoDBClient, table: str
) -> None:
    await client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    proxy.reset()
    assert proxy.count("GetItem") == 0
    assert not proxy.log
    await client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert proxy.count("GetItem", table=table) == 1


async def test_a_silent_upstream_is_a_502_and_still_counted() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    async with (
        CountingProxy(f"http://127.0.0.1:{port}") as proxy,
        aiohttp.ClientSession() as session,
        session.post(
            proxy.url,
            data=b'{"TableName": "t", "Key": {}}',
            headers={"X-Amz-Target": "DynamoDB_20120810.GetItem"},
        ) as answer,
    ):
        body = await answer.json(content_type=None)

    assert answer.status == 502
    assert body["__type"] == "CountingProxyUpstreamError"
    assert proxy.count("GetItem", table="t") == 1
    assert list(proxy.log) == [CountedRequest("GetItem", ("t",), False, 502, keys=1)]


def test_only_a_loopback_http_upstream_is_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        CountingProxy("http://10.0.0.1:8000")
    with pytest.raises(ValueError, match="port"):
        CountingProxy("http://127.0.0.1")
    with pytest.raises(ValueError, match="log_size"):
        CountingProxy("http://127.0.0.1:8000", log_size=-1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = CountingProxy("http://127.0.0.1:8000").url

"""Fixtures of the multi-process tests: moto, a counting proxy, a private Redis, workers.

- ``moto_child`` (session): moto's server in a child process, so that its request
  handling does not compete with the test's event loop for this process's GIL;
- ``dynamodb`` (per test): a ``CountingProxy`` in front of it, the endpoint every
  worker uses, so the test counts what reached DynamoDB from all of them;
- ``raw``: a plain client of moto itself (no cache, no proxy) for setup, for writes
  that bypass aiodax, and for the truth a test compares with;
- ``redis_server`` (per test): a private, empty ``redis-server`` on a free port
  (the shared one on 6379 is left alone), and ``redis_client`` to inspect or
  damage it;
- ``fleet``: a :class:`~tests.distributed.harness.Fleet` of workers configured with
  ``config``, all ended when the test ends, whatever happened;
- ``module_fleet``: one fleet for a whole module, of workers that talk to moto
  directly and to a Redis of the module's own, for tests that need no counts and
  break nothing (each on tables of its own).  Proxies run tasks in the test's loop
  for every connection, which the per-test check for leaked tasks would catch
  between tests; processes and a redis-server do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import aioboto3
import pytest
import redis.asyncio as aioredis

from aiodax.testing import CountingProxy, RedisServer
from aiodax.testing.servers import ServerUnavailable, client_kwargs, string_key_table
from tests import servers
from tests.distributed.harness import Fleet, WorkerConfig

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


@pytest.fixture(scope="session")
def moto_child() -> Iterator[str]:
    with servers.moto_in_child_process() as url:
        yield url


@pytest.fixture
async def dynamodb(moto_child: str) -> AsyncIterator[CountingProxy]:
    async with CountingProxy(moto_child) as proxy:
        yield proxy


@pytest.fixture
async def raw(moto_child: str) -> AsyncIterator[DynamoDBClient]:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(moto_child)) as client:
        yield client


@contextlib.asynccontextmanager
async def _private_redis() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    try:
        await asyncio.to_thread(server.start)
    except ServerUnavailable as exc:
        servers.require(exc.reason)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with _private_redis() as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


async def _table(raw: DynamoDBClient, range_key: str | None) -> str:
    name = f"aiodax-dist-{uuid.uuid4().hex[:12]}"
    await raw.create_table(**string_key_table(name, range_key=range_key))
    return name


@pytest.fixture
async def table(raw: DynamoDBClient) -> AsyncIterator[str]:
    """A fresh table keyed by the string ``pk``."""
    name = await _table(raw, None)
    yield name
    with contextlib.suppress(raw.exceptions.ResourceNotFoundException):
        await raw.delete_table(TableName=name)


@pytest.fixture
async def sorted_table(raw: DynamoDBClient) -> AsyncIterator[str]:
    """A fresh table keyed by the strings ``pk`` and ``sk`` (for Query pages)."""
    name = await _table(raw, "sk")
    yield name
    with contextlib.suppress(raw.exceptions.ResourceNotFoundException):
        await raw.delete_table(TableName=name)


@pytest.fixture
def config(dynamodb: CountingProxy, redis_server: RedisServer) -> WorkerConfig:
    """Workers of the counting proxy and the private Redis, in a namespace of their own."""
    return WorkerConfig(
        dynamodb=dynamodb.url,
        redis=redis_server.url,
        namespace=f"test-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
async def fleet(config: WorkerConfig) -> AsyncIterator[Fleet]:
    async with Fleet(config) as fleet:
        yield fleet


@pytest.fixture(scope="module")
async def module_redis() -> AsyncIterator[RedisServer]:
    async with _private_redis() as server:
        yield server


@pytest.fixture(scope="module")
async def module_fleet(moto_child: str, module_redis: RedisServer) -> AsyncIterator[Fleet]:
    config = WorkerConfig(
        dynamodb=moto_child, redis=module_redis.url, namespace=f"test-{uuid.uuid4().hex[:8]}"
    )
    async with Fleet(config) as fleet:
        yield fleet

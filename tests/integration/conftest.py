"""Fixtures of the Redis tier's integration tests: a private Redis and a raw client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis

from aiodax.testing import RedisServer


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A private ``redis-server`` on a free loopback port, for one test."""
    with RedisServer() as running:
        yield running


@pytest.fixture
async def raw_redis(server: RedisServer) -> AsyncIterator[redis.Redis]:
    """A plain redis-py client of ``server``, to look at or tamper with what the tier keeps."""
    client = redis.Redis.from_url(server.url)
    yield client
    await client.aclose()

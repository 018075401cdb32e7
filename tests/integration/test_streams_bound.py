"""The stream bound: a cache stops serving a table from memory while the streams
invalidator's watermark of it is older than the bound, and serves as usual otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest

import aiodax
from aiodax.testing import InstrumentedClient, RedisServer
from aiodax.testing.streams import FakeStreams

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

NAMESPACE = "bound-test"
KEY = {"pk": {"S": "a"}}
BOUND = 0.5


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture
async def bounded(make_table: Any) -> tuple[str, str]:
    """A table with a stream bound and one without."""
    return await make_table(), await make_table()


@pytest.fixture
async def cache(server: RedisServer, bounded: tuple[str, str]) -> AsyncIterator[aiodax.Cache]:
    tier = aiodax.RedisTier(
        server.url, namespace=NAMESPACE, shared_l2=False, stream_bounds={bounded[0]: BOUND}
    )
    async with aiodax.Cache(redis=tier) as cache:
        yield cache


async def _status(client: aiodax.CachedClient, table: str) -> str:
    answer: dict[str, Any] = await client.get_item(TableName=table, Key=KEY)
    return str(answer["ResponseMetadata"]["CacheStatus"])


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within 10 s") from None


async def test_the_bound_bypasses_a_table_whose_watermark_is_old(
    server: RedisServer,
    cache: aiodax.Cache,
    raw_client: DynamoDBClient,
    bounded: tuple[str, str],
) -> None:
    table, other = bounded
    for name in bounded:
        await raw_client.put_item(TableName=name, Item={**KEY, "v": {"S": "x"}})
    raw = InstrumentedClient(raw_client)
    client = cache.wrap(cast("DynamoDBClient", raw))

    async def bypassed() -> bool:
        return bool(cache.stats()["Tier"]["StreamBypassedTables"] == [table])

    # No invalidator has ever run: no watermark, so nothing of the table is kept.
    await _until(bypassed, "the bypass")
    assert [await _status(client, table) for _ in range(3)] == ["miss", "miss", "miss"]
    assert [await _status(client, other) for _ in range(2)] == ["miss", "hit"]
    # Reads through it are coalesced like any miss.
    before = raw.calls["get_item"]
    await asyncio.gather(*(client.get_item(TableName=table, Key=KEY) for _ in range(20)))
    assert raw.calls["get_item"] - before == 1
    assert cache.stats()["StreamBypassedReads"] >= 4

    streams = FakeStreams(table)
    invalidator = aiodax.StreamsInvalidator(
        [table], client=streams, redis=server.url, namespace=NAMESPACE, poll_interval=0.05
    )
    async with invalidator:

        async def served() -> bool:
            return await _status(client, table) == "hit"

        await _until(served, "hits with a fresh watermark")
        assert cache.stats()["Tier"]["StreamBypassedTables"] == []
    # Stopped: its watermark ages past the bound, and the table is bypassed again.
    await _until(bypassed, "the bypass after the invalidator stopped")
    assert await _status(client, table) == "miss"
    assert await _status(client, other) == "hit"
    assert cache.stats()["Tier"]["StreamBypassPeriods"] == 2


def test_stream_bounds_are_validated() -> None:
    with pytest.raises(aiodax.ConfigurationError, match="stream_bounds"):
        aiodax.RedisTier("redis://127.0.0.1", stream_bounds={"t": 0})
    with pytest.raises(aiodax.ConfigurationTypeError, match="stream_bounds"):
        aiodax.RedisTier("redis://127.0.0.1", stream_bounds={"t": "2"})  # type: ignore[dict-item]
    with pytest.raises(aiodax.ConfigurationTypeError, match="stream_bounds"):
        aiodax.RedisTier("redis://127.0.0.1", stream_bounds=[("t", 2.0)])  # type: ignore[arg-type]
    bounds = {"t": 2.0}
    tier = aiodax.RedisTier("redis://127.0.0.1", stream_bounds=bounds)
    bounds["u"] = 1.0
    assert dict(tier.stream_bounds) == {"t": 2.0}

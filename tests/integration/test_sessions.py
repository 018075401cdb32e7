"""``aiodax.resource(session)`` and ``aiodax.client(session)``: what they open, they close."""

from __future__ import annotations

from typing import Any

import aioboto3
import pytest

import aiodax
from tests import servers


def open_http_sessions(client: Any) -> list[Any]:
    """The aiohttp sessions an aiobotocore client opened so far (one per proxy)."""
    http = client._endpoint.http_session
    sessions = getattr(http, "_sessions", None)
    if sessions is not None:
        return list(sessions.values())
    # aiobotocore before 2.14 opens a single session on entering the client.
    return [http._session] if http._session is not None else []


def underlying_client(cached: aiodax.CachedClient | aiodax.CachedResource) -> Any:
    if isinstance(cached, aiodax.CachedResource):
        return cached.wrapped.meta.client
    return cached.wrapped


async def use(cached: aiodax.CachedClient | aiodax.CachedResource, table: str) -> None:
    """One write and two reads through ``cached``: the second read must be a hit."""
    if isinstance(cached, aiodax.CachedResource):
        resource_table = await cached.Table(table)
        await resource_table.put_item(Item={"pk": "a", "v": 1})
        await resource_table.get_item(Key={"pk": "b"})
        read = await resource_table.get_item(Key={"pk": "b"})
    else:
        await cached.put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
        await cached.get_item(TableName=table, Key={"pk": {"S": "b"}})
        read = await cached.get_item(TableName=table, Key={"pk": {"S": "b"}})
    assert read["ResponseMetadata"]["CacheStatus"] == "hit"


OPENERS = [aiodax.resource, aiodax.client]


@pytest.mark.parametrize("opener", OPENERS, ids=["resource", "client"])
async def test_without_a_cache_both_its_cache_and_its_client_close(
    client_kwargs: servers.ClientKwargs, table: str, opener: Any
) -> None:
    async with opener(aioboto3.Session(), **client_kwargs) as cached:
        assert isinstance(cached, aiodax.CachedResource | aiodax.CachedClient)
        await use(cached, table)
        cache = cached.cache
        http = open_http_sessions(underlying_client(cached))
        assert http and not any(session.closed for session in http)
        assert not cache.closed

    assert cache.closed
    assert all(session.closed for session in http)


@pytest.mark.parametrize("opener", OPENERS, ids=["resource", "client"])
async def test_a_given_cache_stays_open_and_keeps_its_entries(
    cache: aiodax.Cache, client_kwargs: servers.ClientKwargs, table: str, opener: Any
) -> None:
    async with opener(aioboto3.Session(), cache, **client_kwargs) as cached:
        assert cached.cache is cache
        await use(cached, table)
        http = open_http_sessions(underlying_client(cached))

    assert all(session.closed for session in http)
    assert not cache.closed
    entries = cache.stats()["CurrentEntries"]
    assert entries > 0

    # the next client on the same cache is served from what the first one cached
    async with opener(aioboto3.Session(), cache=cache, **client_kwargs) as cached:
        await use(cached, table)
    assert cache.stats()["BackendRequests"]["get_item"] == 1


@pytest.mark.parametrize("opener", OPENERS, ids=["resource", "client"])
async def test_an_error_in_the_block_still_closes_and_propagates(
    client_kwargs: servers.ClientKwargs, table: str, opener: Any
) -> None:
    with pytest.raises(LookupError, match="in the block"):
        async with opener(aioboto3.Session(), **client_kwargs) as cached:
            await use(cached, table)
            cache = cached.cache
            http = open_http_sessions(underlying_client(cached))
            raise LookupError("in the block")

    assert cache.closed
    assert all(session.closed for session in http)


async def test_the_flavours_agree_on_one_cache(
    cache: aiodax.Cache, client_kwargs: servers.ClientKwargs, table: str
) -> None:
    session = aioboto3.Session()
    async with (
        aiodax.resource(session, cache, **client_kwargs) as dynamodb,
        aiodax.client(session, cache, **client_kwargs) as client,
    ):
        resource_table = await dynamodb.Table(table)
        await client.get_item(TableName=table, Key={"pk": {"S": "a"}})
        await resource_table.put_item(Item={"pk": "a", "v": 2})
        read = await client.get_item(TableName=table, Key={"pk": {"S": "a"}})

        assert read["Item"] == {"pk": {"S": "a"}, "v": {"N": "2"}}
        assert read["ResponseMetadata"]["CacheStatus"] == "hit"
        assert (await resource_table.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a", "v": 2}
        assert cache.stats()["BackendRequests"]["get_item"] == 1

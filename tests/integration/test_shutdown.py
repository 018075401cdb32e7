"""Closing the cache while calls wait on a table's first ``DescribeTable``.

A write, a Query miss and a BatchGetItem ask for the table's key schema before
anything else; ``Cache.aclose()`` cancels that lookup.  A caller nobody cancelled
must then see ``CacheClosedError``, an ordinary exception, and not the
``CancelledError`` that asyncio (``TaskGroup``, ``gather``, timeouts, a web
framework) would take for a cancellation of the caller's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEY = {"pk": {"S": "k"}}
Call = Callable[[aiodax.CachedClient, str], Coroutine[Any, Any, Any]]


async def put(cached: aiodax.CachedClient, table: str) -> Any:
    return await cached.put_item(TableName=table, Item={**KEY, "v": {"S": "new"}})


async def query(cached: aiodax.CachedClient, table: str) -> Any:
    return await cached.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "k"}},
    )


async def batch_get(cached: aiodax.CachedClient, table: str) -> Any:
    return await cached.batch_get_item(RequestItems={table: {"Keys": [KEY]}})


CALLS = pytest.mark.parametrize("call", [put, query, batch_get], ids=lambda c: c.__name__)


@contextlib.contextmanager
def loop_reports() -> Iterator[list[dict[str, Any]]]:
    """What the loop reports meanwhile ("Task was destroyed but it is pending!"…)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        yield reported
    finally:
        gc.collect()
        loop.set_exception_handler(previous)


async def waiting_on_describe(
    raw_client: DynamoDBClient, table: str, call: Call, callers: int
) -> tuple[aiodax.Cache, InstrumentedClient, list[asyncio.Task[Any]]]:
    """A cache whose ``callers`` calls all wait on the table's one held ``DescribeTable``."""
    instrumented = InstrumentedClient(raw_client)
    instrumented.hold("describe_table")
    cache = aiodax.Cache()
    cached = cache.wrap(cast("DynamoDBClient", instrumented))
    tasks = [asyncio.create_task(call(cached, table)) for _ in range(callers)]
    await until(lambda: instrumented.in_flight["describe_table"] == 1)
    await asyncio.sleep(0)  # let every caller join the lookup
    return cache, instrumented, tasks


@CALLS
async def test_a_call_waiting_on_the_schema_fails_with_cache_closed_error(
    raw_client: DynamoDBClient, table: str, call: Call
) -> None:
    with loop_reports() as reported:
        cache, instrumented, tasks = await waiting_on_describe(raw_client, table, call, 2)

        await cache.aclose()

        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [type(result) for result in results] == [aiodax.CacheClosedError] * 2
        assert not any(task.cancelled() for task in tasks)
        # the held lookup was cancelled before it reached DynamoDB, and nothing followed it
        assert instrumented.in_flight["describe_table"] == 0
        assert instrumented.calls == {}
        del tasks, results
    assert reported == []


@CALLS
async def test_a_caller_cancelled_as_the_cache_closes_is_still_cancelled(
    raw_client: DynamoDBClient, table: str, call: Call
) -> None:
    with loop_reports() as reported:
        cache, _, (cancelled, other) = await waiting_on_describe(raw_client, table, call, 2)

        cancelled.cancel()
        await cache.aclose()

        with pytest.raises(asyncio.CancelledError):
            await cancelled
        with pytest.raises(aiodax.CacheClosedError):
            await other
        del cancelled, other
    assert reported == []


@CALLS
async def test_a_task_group_sees_the_closed_cache_as_an_error_not_a_cancellation(
    raw_client: DynamoDBClient, table: str, call: Call
) -> None:
    instrumented = InstrumentedClient(raw_client)
    instrumented.hold("describe_table")
    cache = aiodax.Cache()
    cached = cache.wrap(cast("DynamoDBClient", instrumented))

    async def request_handler() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(call(cached, table))

    handler = asyncio.create_task(request_handler())
    await until(lambda: instrumented.in_flight["describe_table"] == 1)
    await cache.aclose()

    # A cancelled child would have ended the group quietly, as if nothing failed.
    with pytest.raises(ExceptionGroup) as raised:
        await handler
    assert raised.group_contains(aiodax.CacheClosedError)


@CALLS
async def test_a_closed_cache_describes_no_table(
    raw_client: DynamoDBClient, table: str, call: Call
) -> None:
    instrumented = InstrumentedClient(raw_client)
    cache = aiodax.Cache()
    cached = cache.wrap(cast("DynamoDBClient", instrumented))
    await cache.aclose()

    with pytest.raises(aiodax.CacheClosedError):
        await call(cached, table)
    assert instrumented.calls == {}

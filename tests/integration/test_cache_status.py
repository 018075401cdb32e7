"""``CacheStatus`` on every read's answer, per-table ``stats()``, the ``aiodax`` logger."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from types_aiobotocore_dynamodb import DynamoDBClient

import aiodax
from aiodax._observe import BackendCall, CoalescedWait
from aiodax.testing import InstrumentedClient
from tests.servers import MakeTable
from tests.support import Unprocessing


def status(answer: Any) -> str:
    found: str = answer["ResponseMetadata"]["CacheStatus"]
    return found


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


async def test_reads_the_cache_does_not_serve_are_marked_bypass(
    cached: aiodax.CachedClient, table: str
) -> None:
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert status(await cached.get_item(TableName=table, Key=key("a"))) == "hit"
    consistent = await cached.get_item(TableName=table, Key=key("a"), ConsistentRead=True)
    assert consistent["Item"] == {"pk": {"S": "a"}}
    assert status(consistent) == "bypass"
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :a",
        "ExpressionAttributeValues": {":a": {"S": "a"}},
    }
    assert status(await cached.query(**query, ConsistentRead=True)) == "bypass"
    assert status(await cached.query(**query)) == "miss"
    assert status(await cached.query(**query)) == "hit"
    batch = {table: {"Keys": [key("a")], "ConsistentRead": True}}
    assert status(await cached.batch_get_item(RequestItems=batch)) == "bypass"


async def test_transactional_reads_and_partiql_selects_are_marked_bypass(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, table: str
) -> None:
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    answer = await cached.transact_get_items(
        TransactItems=[{"Get": {"TableName": table, "Key": key("a")}}]
    )
    assert answer["Responses"] == [{"Item": {"pk": {"S": "a"}}}]
    assert status(answer) == "bypass"
    assert cached.cache.stats()["BackendRequests"]["transact_get_items"] == 1
    select = await cached.execute_statement(
        Statement=f'SELECT * FROM "{table}" WHERE pk = ?', Parameters=[{"S": "a"}]
    )
    assert select["Items"] == [{"pk": {"S": "a"}}]
    assert status(select) == "bypass"
    # A SELECT drops nothing: the item is still a hit.
    assert status(await cached.get_item(TableName=table, Key=key("a"))) == "hit"


async def test_a_pages_time_to_live_of_zero_makes_every_page_a_bypass(
    instrumented: InstrumentedClient, table: str
) -> None:
    async with aiodax.Cache(query_ttl=0) as cache:
        cached = cache.wrap(instrumented)  # type: ignore[call-overload]
        assert status(await cached.scan(TableName=table)) == "bypass"


async def test_stats_per_table_sum_to_the_totals(
    cached: aiodax.CachedClient, make_table: MakeTable
) -> None:
    first, second = await make_table(), await make_table()
    for name in (first, second):
        await cached.put_item(TableName=name, Item={"pk": {"S": "a"}})
    for _ in range(3):
        await cached.get_item(TableName=first, Key=key("a"))
    await cached.get_item(TableName=second, Key=key("a"))
    await cached.get_item(TableName=second, Key=key("absent"))
    await cached.get_item(TableName=second, Key=key("absent"))
    await cached.batch_get_item(RequestItems={second: {"Keys": [key("a"), key("b")]}})
    await cached.scan(TableName=first)
    await cached.scan(TableName=first)

    stats = cached.cache.stats()
    tables = stats["Tables"]
    assert tables[first]["ItemCacheHits"] == 3
    assert tables[first]["ScanCacheMisses"] == tables[first]["ScanCacheHits"] == 1
    assert tables[second]["ItemCacheHits"] == 3  # a, absent (negative) and a in the batch
    assert tables[second]["NegativeCacheHits"] == 1
    assert tables[second]["ItemCacheMisses"] == 2  # absent, then b
    assert tables[second]["ScanCacheMisses"] == 0
    for counter in tables[first]:
        assert stats[counter] == tables[first][counter] + tables[second][counter]


async def test_the_logger_is_quiet_by_default() -> None:
    logger = logging.getLogger("aiodax")
    assert any(isinstance(handler, logging.NullHandler) for handler in logger.handlers)


async def test_unprocessed_keys_and_their_retries_are_logged(
    raw_client: DynamoDBClient, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    retry = aiodax.RetryPolicy(attempts=2, base=0.001, cap=0.002)
    async with aiodax.Cache(retry=retry) as cache:
        cached = cache.wrap(Unprocessing(raw_client, refusals=100))  # type: ignore[call-overload]
        with caplog.at_level(logging.INFO, logger="aiodax"):
            answer = await cached.batch_get_item(RequestItems={table: {"Keys": [key("a")]}})
    assert answer["UnprocessedKeys"] == {table: {"Keys": [key("a")]}}
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    retries = [m for level, m in messages if level == logging.INFO and "retrying" in m]
    assert len(retries) == 2
    assert any(level == logging.WARNING and "after every retry" in m for level, m in messages), (
        messages
    )


async def test_a_write_dropping_a_whole_table_is_logged(
    cached: aiodax.CachedClient, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    with caplog.at_level(logging.INFO, logger="aiodax"):
        await cached.get_item(TableName=table, Key=key("a"))  # a hit: nothing logged
        assert not caplog.records
        await cached.execute_statement(
            Statement=f'UPDATE "{table}" SET v = ? WHERE pk = ?',
            Parameters=[{"S": "new"}, {"S": "a"}],
        )
    assert any(
        table in record.getMessage() and "entries dropped" in record.getMessage()
        for record in caplog.records
    ), caplog.records


class Failing:
    """An observer that raises on everything it is told."""

    def backend_call(self, call: BackendCall) -> None:
        raise RuntimeError("observer broke")

    def coalesced_wait(self, wait: CoalescedWait) -> None:
        raise RuntimeError("observer broke")


class Recording:
    def __init__(self) -> None:
        self.calls: list[BackendCall] = []

    def backend_call(self, call: BackendCall) -> None:
        self.calls.append(call)

    def coalesced_wait(self, wait: CoalescedWait) -> None:
        raise AssertionError("no wait expected")


async def test_an_observer_that_fails_fails_no_request(
    cached: aiodax.CachedClient, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cached.cache
    recording = Recording()
    cache.add_observer(Failing())
    cache.add_observer(recording)
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert (await cached.get_item(TableName=table, Key=key("b")))["ResponseMetadata"][
        "CacheStatus"
    ] == "miss"
    assert [(call.operation, call.kind) for call in recording.calls] == [
        ("describe_table", "other"),
        ("put_item", "write"),
        ("get_item", "miss"),
    ]
    assert all(call.error is None and call.seconds >= 0 for call in recording.calls)
    assert any("observer" in record.getMessage() for record in caplog.records)
    instrumented: InstrumentedClient = cached.wrapped  # type: ignore[assignment]
    instrumented.fail("get_item", "ValidationException")
    with pytest.raises(Exception, match="ValidationException"):
        await cached.get_item(TableName=table, Key=key("c"))
    assert recording.calls[-1].error is not None
    assert recording.calls[-1].answer is None

"""The baseline: processes whose caches share nothing (no ``redis=``).

What the Redis tier exists to fix, measured with the same harness, proxy and counts
as the tier's tests: another process's write stays invisible until the TTL ends, and
every process pays its own miss.  These pass without the tier; the tier's tests make
the opposite assertions on the same setups, so they fail without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from aiodax.testing import CountingProxy
from tests.distributed.harness import Fleet, WorkerConfig

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

KEY = {"pk": {"S": "k"}}


async def test_another_process_keeps_serving_the_old_value_after_a_write(
    fleet: Fleet, config: WorkerConfig, raw: DynamoDBClient, table: str
) -> None:
    await raw.put_item(TableName=table, Item={**KEY, "v": {"S": "old"}})
    writer, reader = await fleet.spawn(2, config.but(redis=None))
    assert await reader.get(table, KEY) == {**KEY, "v": {"S": "old"}}

    await writer.put(table, {**KEY, "v": {"S": "new"}})

    again = await reader.call("get_item", TableName=table, Key=KEY)
    assert again["Item"] == {**KEY, "v": {"S": "old"}}
    assert again["CacheStatus"] == "hit"


async def test_every_process_pays_its_own_miss(
    fleet: Fleet, config: WorkerConfig, raw: DynamoDBClient, dynamodb: CountingProxy, table: str
) -> None:
    await raw.put_item(TableName=table, Item={**KEY, "v": {"S": "x"}})
    workers = await fleet.spawn(3, config.but(redis=None))

    for worker in workers:
        result = await worker.stampede(table, KEY, 50)
        assert result == {"served": 50, "items": [{**KEY, "v": {"S": "x"}}], "errors": []}

    assert dynamodb.count("GetItem", table=table) == 3

"""Fences travel: another process's write makes this process's next fill consistent.

A fill right after a write may meet a replica that has not applied it yet, and would
then cache the old value for the whole TTL; within the fence (``Cache(fence=...)``)
after a drop, aiodax fills with ``ConsistentRead``.  A drop that comes over the bus
fences like a local one.  The proxy's log says how each GetItem reached DynamoDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from aiodax.testing import CountingProxy
from tests.distributed.harness import Fleet, WorkerConfig, eventually, tier_reaches

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

KEY = {"pk": {"S": "k"}}


def get_items(dynamodb: CountingProxy, table: str) -> list[bool]:
    """Whether each GetItem of ``table`` so far was consistent, in order."""
    return [r.consistent for r in dynamodb.log if r.operation == "GetItem" and table in r.tables]


async def test_another_process_s_write_fences_this_process_s_next_fill(
    fleet: Fleet, config: WorkerConfig, dynamodb: CountingProxy, raw: DynamoDBClient, table: str
) -> None:
    await raw.put_item(TableName=table, Item={**KEY, "v": {"S": "old"}})
    # A fence long enough that no scheduling delay outlasts it.
    writer, reader = await fleet.spawn(2, config.but(cache={"fence": 30.0}))
    for worker in (writer, reader):
        await tier_reaches(worker, lambda t: t["BusState"] == "connected", what="connected")
    assert await reader.get(table, KEY) == {**KEY, "v": {"S": "old"}}
    assert get_items(dynamodb, table) == [False]

    await writer.put(table, {**KEY, "v": {"S": "new"}})
    await eventually(
        lambda: reader.get(table, KEY),
        lambda item: item == {**KEY, "v": {"S": "new"}},
        what="the reader dropped the old value",
    )

    assert get_items(dynamodb, table)[1:] == [True]

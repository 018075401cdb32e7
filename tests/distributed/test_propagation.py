"""A write through one process stops the others serving the old value: every kind.

Each test caches the old value in a *reader* process (and checks that it is a hit, so
that it would be served for the whole 300 s TTL), writes through a *writer* process,
then polls the reader until it answers DynamoDB's new value, and goes on polling to
check that it never goes back.  The bound of each wait (10 s) is far below the TTL:
without the tier the reader keeps the old value (``test_without_the_tier.py``).

The two workers serve the whole module (starting processes is most of a test's
time); every test has tables of its own, and counters are compared before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.distributed.harness import Background, Fleet, Item, Worker, eventually, tier_reaches

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

KEY = {"pk": {"S": "k"}}
OLD = {**KEY, "v": {"S": "old"}}
NEW = {**KEY, "v": {"S": "new"}}


@dataclass(frozen=True)
class WriteKind:
    """A way to change ``KEY``: through the writer's cache, or around it plus a drop."""

    name: str
    write: Callable[[Worker, str, DynamoDBClient], Awaitable[Any]]
    #: the item DynamoDB holds afterwards (``None``: deleted)
    expected: Item | None

    def __str__(self) -> str:
        return self.name


async def _put(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call("put_item", TableName=table, Item=NEW)


async def _update(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call(
        "update_item",
        TableName=table,
        Key=KEY,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
    )


async def _update_returning_old(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    # The writer cannot know the new item from this answer: it drops instead of storing.
    return await w.call(
        "update_item",
        TableName=table,
        Key=KEY,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
        ReturnValues="UPDATED_OLD",
    )


async def _delete(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call("delete_item", TableName=table, Key=KEY)


async def _batch_put(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call("batch_write_item", RequestItems={table: [{"PutRequest": {"Item": NEW}}]})


async def _batch_delete(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call("batch_write_item", RequestItems={table: [{"DeleteRequest": {"Key": KEY}}]})


async def _transact_update(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call(
        "transact_write_items",
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": KEY,
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "new"}},
                }
            }
        ],
    )


async def _transact_delete(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call(
        "transact_write_items", TransactItems=[{"Delete": {"TableName": table, "Key": KEY}}]
    )


async def _partiql_update(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call(
        "execute_statement", Statement=f"UPDATE \"{table}\" SET v = 'new' WHERE pk = 'k'"
    )


async def _partiql_batch_update(w: Worker, table: str, raw: DynamoDBClient) -> Any:
    return await w.call(
        "batch_execute_statement",
        Statements=[{"Statement": f"UPDATE \"{table}\" SET v = 'new' WHERE pk = 'k'"}],
    )


async def _invalidate(w: Worker, table: str, raw: DynamoDBClient) -> None:
    await raw.put_item(TableName=table, Item=NEW)
    await w.invalidate(table, KEY)


async def _invalidate_table(w: Worker, table: str, raw: DynamoDBClient) -> None:
    await raw.put_item(TableName=table, Item=NEW)
    await w.invalidate_table(table)


async def _clear(w: Worker, table: str, raw: DynamoDBClient) -> None:
    await raw.put_item(TableName=table, Item=NEW)
    await w.clear()


WRITE_KINDS = [
    WriteKind("put_item", _put, NEW),
    WriteKind("update_item", _update, NEW),
    WriteKind("update_item returning UPDATED_OLD", _update_returning_old, NEW),
    WriteKind("delete_item", _delete, None),
    WriteKind("batch_write_item put", _batch_put, NEW),
    WriteKind("batch_write_item delete", _batch_delete, None),
    WriteKind("transact_write_items update", _transact_update, NEW),
    WriteKind("transact_write_items delete", _transact_delete, None),
    WriteKind("PartiQL execute_statement", _partiql_update, NEW),
    WriteKind("PartiQL batch_execute_statement", _partiql_batch_update, NEW),
    WriteKind("invalidate", _invalidate, NEW),
    WriteKind("invalidate_table", _invalidate_table, NEW),
    WriteKind("clear", _clear, NEW),
]


async def cached_in(reader: Worker, table: str, key: Item, item: Item | None) -> None:
    """``reader`` holds ``item`` for ``key``: its second read is a hit with it."""
    first = await reader.call("get_item", TableName=table, Key=key)
    assert first.get("Item") == item
    again = await reader.call("get_item", TableName=table, Key=key)
    assert (again.get("Item"), again["CacheStatus"]) == (item, "hit")


async def consistent_item(raw: DynamoDBClient, table: str, key: Item) -> Item | None:
    answer = await raw.get_item(TableName=table, Key=key, ConsistentRead=True)
    item: Item | None = answer.get("Item")
    return item


@pytest.fixture(scope="module")
async def pair(module_fleet: Fleet) -> tuple[Worker, Worker]:
    """Two workers for the module: (writer, reader), both connected to the bus."""
    writer, reader = await module_fleet.spawn(2)
    for worker in (writer, reader):
        await tier_reaches(worker, lambda t: t["BusState"] == "connected", what="connected")
    return writer, reader


async def messages_in(worker: Worker) -> int:
    count: int = (await worker.tier())["BusMessagesIn"]
    return count


async def hears_more(worker: Worker, than: int) -> None:
    """Wait until ``worker`` has applied more remote messages than ``than``."""
    await eventually(
        lambda: messages_in(worker), lambda n: n > than, what=f"{worker.name} heard the write"
    )


@pytest.mark.parametrize("kind", WRITE_KINDS, ids=str)
async def test_a_write_through_one_process_stops_another_serving_the_old_value(
    kind: WriteKind, pair: tuple[Worker, Worker], raw: DynamoDBClient, table: str
) -> None:
    writer, reader = pair
    await raw.put_item(TableName=table, Item=OLD)
    await cached_in(reader, table, KEY, OLD)
    before = await messages_in(reader)

    await kind.write(writer, table, raw)

    assert await consistent_item(raw, table, KEY) == kind.expected
    seen = await reader.watch("get_item", {"TableName": table, "Key": KEY}, kind.expected)
    assert seen["reverted"] == 0
    assert await messages_in(reader) > before


async def test_a_process_keeps_its_own_write_through_when_its_message_comes_back(
    pair: tuple[Worker, Worker], table: str
) -> None:
    writer, other = pair
    before = await messages_in(writer)
    await writer.put(table, NEW)
    # The stream is one order for all: once the writer hears of the other's later
    # write, it has read its own message too.
    await other.put(table, {"pk": {"S": "later"}})
    await hears_more(writer, before)

    again = await writer.call("get_item", TableName=table, Key=KEY)
    assert (again["Item"], again["CacheStatus"]) == (NEW, "hit")


# Query pages ---------------------------------------------------------------------------

PARTITION = "p"


def row(sk: str, v: str = "x", pk: str = PARTITION) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "v": {"S": v}}


def query(table: str, pk: str = PARTITION) -> dict[str, Any]:
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": pk}},
    }


async def page_cached_in(reader: Worker, request: dict[str, Any], items: list[Item]) -> None:
    first = await reader.call("query", **request)
    assert first["Items"] == items
    again = await reader.call("query", **request)
    assert (again["Items"], again["CacheStatus"]) == (items, "hit")


PAGE_WRITES = [
    pytest.param(lambda w, t: w.put(t, row("3")), [row("1"), row("2"), row("3")], id="put into it"),
    pytest.param(
        lambda w, t: w.call("delete_item", TableName=t, Key={"pk": {"S": "p"}, "sk": {"S": "1"}}),
        [row("2")],
        id="delete from it",
    ),
    pytest.param(
        lambda w, t: w.call(
            "update_item",
            TableName=t,
            Key={"pk": {"S": "p"}, "sk": {"S": "2"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "y"}},
        ),
        [row("1"), row("2", "y")],
        id="update in it",
    ),
]


@pytest.mark.parametrize(("write", "expected"), PAGE_WRITES)
async def test_a_write_through_one_process_drops_the_query_pages_it_changes_in_another(
    write: Callable[[Worker, str], Awaitable[Any]],
    expected: list[Item],
    pair: tuple[Worker, Worker],
    raw: DynamoDBClient,
    sorted_table: str,
) -> None:
    writer, reader = pair
    for sk in ("1", "2"):
        await raw.put_item(TableName=sorted_table, Item=row(sk))
    await page_cached_in(reader, query(sorted_table), [row("1"), row("2")])

    await write(writer, sorted_table)

    seen = await reader.watch("query", query(sorted_table), expected, field="Items")
    assert seen["reverted"] == 0


async def test_a_write_to_another_partition_leaves_the_page_cached_in_another_process(
    pair: tuple[Worker, Worker], raw: DynamoDBClient, sorted_table: str
) -> None:
    writer, reader = pair
    await raw.put_item(TableName=sorted_table, Item=row("1"))
    await page_cached_in(reader, query(sorted_table), [row("1")])
    before = await messages_in(reader)

    await writer.put(sorted_table, row("1", pk="elsewhere"))
    await hears_more(reader, before)

    again = await reader.call("query", **query(sorted_table))
    assert (again["Items"], again["CacheStatus"]) == ([row("1")], "hit")


# Two processes writing one key ------------------------------------------------------------


async def test_a_local_write_overlapped_by_a_remote_one_does_not_store_the_older_value(
    pair: tuple[Worker, Worker], raw: DynamoDBClient, table: str
) -> None:
    first, second = pair
    older, newer = {**KEY, "v": {"S": "older"}}, {**KEY, "v": {"S": "newer"}}
    answered = (await first.backend_calls())["answered"].get("put_item", 0)
    before = await messages_in(first)

    async with Background() as background:
        # The first write is applied by DynamoDB, its answer held in the first process...
        await first.hold("put_item", when="after")
        held = background.start(first.put(table, older))
        await eventually(
            first.backend_calls,
            lambda calls: calls["answered"].get("put_item", 0) > answered,
            what="DynamoDB applied the first write",
        )
        # ...while the second one is applied after it, and acknowledged.
        await second.put(table, newer)
        assert await consistent_item(raw, table, KEY) == newer
        await hears_more(first, before)

        await first.release("put_item")
        await held

    for worker in (first, second):
        assert await worker.get(table, KEY) == newer, worker.name


async def test_two_processes_writing_one_key_end_absent_or_at_the_newer_value(
    pair: tuple[Worker, Worker], raw: DynamoDBClient, table: str
) -> None:
    workers = pair
    for round_ in range(15):
        await asyncio.gather(
            *(w.put(table, {**KEY, "v": {"S": f"{w.name}-{round_}"}}) for w in workers)
        )
        final = await consistent_item(raw, table, KEY)
        for worker in workers:
            seen = await worker.watch(
                "get_item", {"TableName": table, "Key": KEY}, final, confirm=5
            )
            assert seen["reverted"] == 0, (round_, worker.name)

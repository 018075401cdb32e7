"""PartiQL through the cached client: reads pass through, writes invalidate their tables."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax._backend import ambiguous_write_window
from aiodax.testing import InstrumentedClient
from tests.support import FakeClock, until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


async def value_through(cached: aiodax.CachedClient, table: str, name: str) -> str | None:
    item = (await cached.get_item(TableName=table, Key=key(name))).get("Item")
    return None if item is None else item["v"]["S"]


async def value_in_dynamodb(raw_client: DynamoDBClient, table: str, name: str) -> str | None:
    answer = await raw_client.get_item(TableName=table, Key=key(name), ConsistentRead=True)
    item = answer.get("Item")
    return None if item is None else item["v"]["S"]


@pytest.fixture
async def seeded(raw_client: DynamoDBClient, table: str) -> str:
    for name in ("a", "b"):
        await raw_client.put_item(TableName=table, Item={**key(name), "v": {"S": f"old {name}"}})
    return table


def update_a(table: str) -> dict[str, Any]:
    return {
        "Statement": f'UPDATE "{table}" SET v = ? WHERE pk = ?',
        "Parameters": [{"S": "new a"}, {"S": "a"}],
    }


# Literals rather than parameters: moto's PartiQL takes none in these statements.


def writes(table: str) -> dict[str, tuple[str, dict[str, Any], dict[str, str | None]]]:
    """Each PartiQL write operation: (method, request, values of a/b/c it leaves)."""
    insert_c = {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'c', 'v': 'new c'}}"}
    delete_b = {"Statement": f"DELETE FROM \"{table}\" WHERE pk = 'b'"}
    return {
        "update": ("execute_statement", update_a(table), {"a": "new a", "b": "old b", "c": None}),
        "insert": ("execute_statement", insert_c, {"a": "old a", "b": "old b", "c": "new c"}),
        "delete": ("execute_statement", delete_b, {"a": "old a", "b": None, "c": None}),
        "batch": (
            "batch_execute_statement",
            {"Statements": [update_a(table), delete_b]},
            {"a": "new a", "b": None, "c": None},
        ),
        "transaction": (
            "execute_transaction",
            {"TransactStatements": [update_a(table), insert_c]},
            {"a": "new a", "b": "old b", "c": "new c"},
        ),
    }


@pytest.mark.parametrize("kind", ["update", "insert", "delete", "batch", "transaction"])
async def test_a_partiql_write_drops_what_it_may_have_changed(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    seeded: str,
    kind: str,
) -> None:
    table = seeded
    method, request, expected = writes(table)[kind]
    for name in ("a", "b", "c"):  # c: a missing item, cached negatively
        await value_through(cached, table, name)
    page: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "a"}},
    }
    await cached.query(**page)

    await getattr(cached, method)(**request)

    for name, value in expected.items():
        assert await value_through(cached, table, name) == value
        assert await value_in_dynamodb(raw_client, table, name) == value
    direct = await raw_client.query(**page, ConsistentRead=True)
    assert (await cached.query(**page))["Items"] == direct["Items"]
    # The table was dropped whole: every item was read again, the page too.
    assert instrumented.calls["get_item"] == 6
    assert instrumented.calls["query"] == 2


async def test_a_select_passes_through_and_drops_nothing(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    table = seeded
    assert await value_through(cached, table, "a") == "old a"

    answer = await cached.execute_statement(
        Statement=f'SELECT * FROM "{table}" WHERE pk = ?', Parameters=[{"S": "a"}]
    )
    again = await cached.execute_statement(
        Statement=f'select v from "{table}" where pk = ?', Parameters=[{"S": "a"}]
    )

    assert answer["Items"] == [{**key("a"), "v": {"S": "old a"}}]
    assert again["Items"] == [{"v": {"S": "old a"}}]
    assert instrumented.calls["execute_statement"] == 2  # never cached
    assert await value_through(cached, table, "a") == "old a"
    assert instrumented.calls["get_item"] == 1  # still a hit


async def test_a_write_to_one_table_keeps_the_others(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    make_table: MakeTable,
    seeded: str,
) -> None:
    other = await make_table()
    await raw_client.put_item(TableName=other, Item={**key("a"), "v": {"S": "other a"}})
    await value_through(cached, seeded, "a")
    await value_through(cached, other, "a")

    await cached.execute_statement(**update_a(seeded))

    assert await value_through(cached, other, "a") == "other a"
    assert await value_through(cached, seeded, "a") == "new a"
    assert instrumented.calls["get_item"] == 3  # the other table's item was a hit


async def test_a_write_aiodax_cannot_read_drops_everything(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    make_table: MakeTable,
    seeded: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = await make_table()
    await raw_client.put_item(TableName=other, Item={**key("a"), "v": {"S": "other a"}})
    await value_through(cached, other, "a")
    # As if the statement's table could not be read off it.
    monkeypatch.setattr("aiodax._rules.writes.written_tables", lambda statements: None)

    await cached.execute_statement(**update_a(seeded))

    assert await value_through(cached, other, "a") == "other a"
    assert instrumented.calls["get_item"] == 2  # dropped although another table


@pytest.mark.parametrize(
    ("error", "applied"),
    [("ValidationException", False), ("ConditionalCheckFailedException", True)],
)
async def test_a_failed_statement_drops_its_table_unless_it_surely_did_nothing(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    seeded: str,
    error: str,
    applied: bool,
) -> None:
    table = seeded
    await value_through(cached, table, "a")
    instrumented.fail("execute_statement", error)

    with pytest.raises(ClientError) as raised:
        await cached.execute_statement(**update_a(table))
    assert raised.value.response["Error"]["Code"] == error

    # As for any write: a refused request leaves the cache alone; after a failed
    # condition the cached item is suspect.
    assert await value_through(cached, table, "a") == "old a"
    assert instrumented.calls["get_item"] == (2 if applied else 1)


@pytest.mark.parametrize("first", ["put", "statement"])
async def test_a_keyed_write_overlapping_a_partiql_write_does_not_store_its_value(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    seeded: str,
    first: str,
) -> None:
    """The put lands first, the PartiQL update second, and the put's answer comes
    last: DynamoDB holds the update's value, which the put must not cover.

    ``first`` is which of the two aiodax saw begin first.
    """
    table = seeded
    put_answer = instrumented.hold("put_item", when="after")
    statement_sent = instrumented.hold("execute_statement") if first == "statement" else None
    statement = None
    if statement_sent is not None:
        statement = asyncio.create_task(cached.execute_statement(**update_a(table)))
        await until(lambda: instrumented.in_flight["execute_statement"] == 1)
    put = asyncio.create_task(
        cached.put_item(TableName=table, Item={**key("a"), "v": {"S": "put a"}})
    )
    await until(lambda: instrumented.answered["put_item"] == 1)
    if statement_sent is None:
        await cached.execute_statement(**update_a(table))
    else:
        statement_sent.set()
        await cast("asyncio.Task[Any]", statement)  # started with statement_sent
    put_answer.set()
    await put

    assert await value_in_dynamodb(raw_client, table, "a") == "new a"
    assert await value_through(cached, table, "a") == "new a"


async def test_a_cancelled_statement_drops_its_table_and_leaves_no_guard_behind(
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    seeded: str,
    clock: FakeClock,
) -> None:
    table = seeded
    async with aiodax.Cache(clock=clock) as cache:
        cached = cache.wrap(cast("DynamoDBClient", instrumented))
        await value_through(cached, table, "a")
        instrumented.hold("execute_statement", when="after")  # applied, never answered
        statement = asyncio.create_task(cached.execute_statement(**update_a(table)))
        await until(lambda: instrumented.answered["execute_statement"] == 1)
        statement.cancel()
        with pytest.raises(asyncio.CancelledError):
            await statement

        assert await value_through(cached, table, "a") == "new a"  # dropped, read again
        assert cache.stats()["WritesInFlight"] == 0
        # Past the hold of the table (the statement might still have landed), a
        # later write is cached again: nothing of the statement is left behind.
        clock.advance(ambiguous_write_window(cast("DynamoDBClient", instrumented)))
        await cached.put_item(TableName=table, Item={**key("a"), "v": {"S": "put a"}})
        calls = instrumented.calls["get_item"]
        assert await value_through(cached, table, "a") == "put a"
        assert instrumented.calls["get_item"] == calls
    assert await value_in_dynamodb(raw_client, table, "a") == "put a"

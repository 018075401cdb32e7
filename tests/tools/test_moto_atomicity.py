"""moto's UpdateItem of a missing item is not atomic: a read between its steps sees
the key alone.

moto creates the item from its key (``table.put_item``) and then applies the update
expression to the stored item in place; its threaded server answers other requests
meanwhile.  DynamoDB applies an update atomically.  This is why the model test
(tests/integration/test_model.py) accepts a key-only item on moto, and only there,
while an update of that key runs.  The test pauses moto between the two steps, in
its server thread, to show the window without a race.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable


@pytest.fixture
def paused_updates() -> Iterator[tuple[threading.Event, threading.Event]]:
    """(entered, release): moto's update expressions wait for ``release`` once
    ``entered`` is set, in moto's server thread."""
    import importlib

    models: Any = importlib.import_module("moto.dynamodb.models")
    entered, release = threading.Event(), threading.Event()
    original = models.UpdateExpressionExecutor

    class Paused(original):  # type: ignore[misc, valid-type]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            entered.set()
            release.wait(timeout=10)
            return super().execute(*args, **kwargs)

    models.UpdateExpressionExecutor = Paused
    try:
        yield entered, release
    finally:
        release.set()
        models.UpdateExpressionExecutor = original


@pytest.mark.parametrize("endpoint", ["moto"], indirect=True)
async def test_a_read_during_moto_s_update_of_a_missing_item_sees_the_key_alone(
    raw_client: DynamoDBClient,
    make_table: MakeTable,
    paused_updates: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = paused_updates
    table = await make_table(hash_key=("pk", "S"), range_key=("sk", "S"))
    key = {"pk": {"S": "p"}, "sk": {"S": "k0"}}
    update = asyncio.create_task(
        raw_client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "new"}},
        )
    )
    try:
        await until(entered.is_set)

        during = await raw_client.get_item(TableName=table, Key=key, ConsistentRead=True)
        batch = await raw_client.batch_get_item(RequestItems={table: {"Keys": [key]}})
    finally:
        release.set()
        await update
    after = await raw_client.get_item(TableName=table, Key=key, ConsistentRead=True)

    assert during["Item"] == key  # no "v": the update is half applied
    assert batch["Responses"][table] == [key]
    assert after["Item"] == {**key, "v": {"S": "new"}}

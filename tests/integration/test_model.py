"""Model-based test: random concurrent reads and writes, checked against DynamoDB.

Each example is a few *steps*; a step runs several short scripts concurrently
through one ``Cache`` against a real server, with random latency injected into
every backend call so that reads and writes interleave differently each time.
Every script that writes then reads its own key checks read-your-writes; every
value of a failed write is checked never to be seen; and once a step's scripts are
done, every cached read must equal DynamoDB's strongly consistent answer.  Some
scripts go through the resource flavour (a ``CachedTable`` on the same ``Cache``),
whose answers come from the Python views kept with the entries, and whose items
they change after reading them, as a caller may.

On moto, and only there, a read may see an item without its ``v`` while an
UpdateItem of that key runs: moto creates a missing item from its key and applies
the update expression afterwards, answering other requests in between
(tests/tools/test_moto_atomicity.py shows it).  Such a read counts as ``TORN``,
accepted only for a key an update of the same step writes; against DynamoDB Local
every item read must carry its value, as before.

``AIODAX_MODEL_EXAMPLES`` raises the example count for a longer run by hand.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest
from boto3.dynamodb.conditions import Key  # type: ignore[import-untyped]
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiodax
from aiodax.testing import InstrumentedClient

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import ClientKwargs, MakeTable

KEYS = ("k0", "k1", "k2")
#: What a read of an item without ``v`` (moto's half-applied update) returns.
TORN = "torn: the key alone"
EXAMPLES = int(os.environ.get("AIODAX_MODEL_EXAMPLES", "12"))

script = st.one_of(
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("evict_then_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("put_then_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("update_then_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("delete_then_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("failing_put"), st.sampled_from(KEYS)),
    st.tuples(st.just("batch_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("batch_write"), st.sampled_from(KEYS)),
    st.tuples(st.just("transact"), st.sampled_from(KEYS)),
    st.tuples(st.just("query"), st.sampled_from(KEYS)),
    st.tuples(st.just("python_get"), st.sampled_from(KEYS)),
    st.tuples(st.just("python_query"), st.sampled_from(KEYS)),
    st.tuples(st.just("python_put_then_get"), st.sampled_from(KEYS)),
)
steps = st.lists(st.lists(script, min_size=1, max_size=5), min_size=1, max_size=4)


class Jittery(InstrumentedClient):
    """Random latency before and after every call: the server sees, then answers, late."""

    def __init__(self, client: Any, seed: int) -> None:
        super().__init__(client)
        self.random = random.Random(seed)

    async def _call(self, operation: str, method: Any, request: dict[str, Any]) -> Any:
        await asyncio.sleep(self.random.random() * 0.004)
        response = await super()._call(operation, method, request)
        await asyncio.sleep(self.random.random() * 0.012)
        return response


def wire_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": "p"}, "sk": {"S": name}}


class Model:
    """What the scripts of one step may observe."""

    def __init__(self) -> None:
        self.values = itertools.count()
        #: key → values (None = deleted) written to it during the current step
        self.written: dict[str, set[str | None]] = {k: set() for k in KEYS}
        self.failed: set[str] = set()
        #: keys whose reads may be TORN during the current step (moto's updates)
        self.torn_ok: set[str] = set()

    def next_value(self) -> str:
        return f"v{next(self.values)}"


def wire_value(item: Mapping[str, Any]) -> str:
    return str(item["v"]["S"]) if "v" in item else TORN


def value_of(response: Mapping[str, Any]) -> str | None:
    item = response.get("Item")
    return None if item is None else wire_value(item)


def python_value_of(response: dict[str, Any]) -> str | None:
    """The item's value; the item is then spoiled, as a caller may change its own."""
    item = response.get("Item")
    if item is None:
        return None
    value: str = item.get("v", TORN)
    item["v"] = "spoiled by the caller"
    return value


def check_whole(model: Model, name: str, value: str | None) -> None:
    """A TORN read is moto's half-applied update of ``name``, and nothing else."""
    if value == TORN:
        assert name in model.torn_ok, f"{name} read without its value, no update running"


async def run_script(
    cached: aiodax.CachedClient,
    python: Any,
    table: str,
    model: Model,
    kind: str,
    name: str,
) -> list[str | None]:
    """Run one script; return every value it read (to check against failed writes).

    ``python``: a ``CachedTable`` of ``table`` on the same cache as ``cached``.
    """
    key = wire_key(name)
    seen: list[str | None] = []

    async def read_own() -> str | None:
        if kind.startswith("python_"):
            got = python_value_of(await python.get_item(Key={"pk": "p", "sk": name}))
        else:
            got = value_of(await cached.get_item(TableName=table, Key=key))
        check_whole(model, name, got)
        seen.append(got)
        return got

    value: str | None  # a write's value; None once the item is deleted
    if kind in ("get", "python_get"):
        await read_own()
    elif kind == "evict_then_get":
        # as if the entry expired: the next read is a miss that may race a write
        cached.cache.invalidate(table, key)
        await read_own()
    elif kind == "batch_get":
        response = await cached.batch_get_item(
            RequestItems={table: {"Keys": [wire_key(k) for k in KEYS]}}
        )
        for item in response["Responses"][table]:
            check_whole(model, item["sk"]["S"], wire_value(item))
            seen.append(wire_value(item))
    elif kind == "query":
        page = await cached.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
        )
        for item in page["Items"]:
            check_whole(model, item["sk"]["S"], wire_value(item))
            seen.append(wire_value(item))
    elif kind == "python_query":
        page = await python.query(KeyConditionExpression=Key("pk").eq("p"))
        for item in page["Items"]:
            check_whole(model, item["sk"], item.get("v", TORN))
            seen.append(item.get("v", TORN))
            item["v"] = "spoiled by the caller"
    elif kind == "failing_put":
        value = model.next_value()
        model.failed.add(value)
        with pytest.raises(ClientError):
            await cached.put_item(
                TableName=table,
                Item={**key, "v": {"S": value}},
                ConditionExpression="attribute_exists(never_there)",
            )
        await read_own()
    else:
        value = model.next_value()
        model.written[name].add(value)
        if kind == "put_then_get":
            await cached.put_item(TableName=table, Item={**key, "v": {"S": value}})
        elif kind == "python_put_then_get":
            await python.put_item(Item={"pk": "p", "sk": name, "v": value})
        elif kind == "update_then_get":
            await cached.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET v = :v",
                ExpressionAttributeValues={":v": {"S": value}},
            )
        elif kind == "batch_write":
            await cached.batch_write_item(
                RequestItems={table: [{"PutRequest": {"Item": {**key, "v": {"S": value}}}}]}
            )
        elif kind == "transact":
            await cached.transact_write_items(
                TransactItems=[{"Put": {"TableName": table, "Item": {**key, "v": {"S": value}}}}]
            )
        else:
            model.written[name].discard(value)
            value = None
            model.written[name].add(None)
            await cached.delete_item(TableName=table, Key=key)
        got = await read_own()
        # read-your-writes: this write's value, or one written concurrently (or on
        # moto, a concurrent update of this key half applied: see check_whole)
        assert got in model.written[name] or got == TORN, (kind, name, value, got)
    return seen


async def assert_cache_agrees(
    cached: aiodax.CachedClient, python: Any, raw_client: DynamoDBClient, table: str
) -> None:
    for name in KEYS:
        direct = await raw_client.get_item(TableName=table, Key=wire_key(name), ConsistentRead=True)
        through = await cached.get_item(TableName=table, Key=wire_key(name))
        assert value_of(through) == value_of(direct), name
        through_python = await python.get_item(Key={"pk": "p", "sk": name})
        assert python_value_of(through_python) == value_of(direct), name
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p"}},
    }
    direct_page = await raw_client.query(**query, ConsistentRead=True)
    cached_page = await cached.query(**query)
    assert cached_page["Items"] == direct_page["Items"]
    python_page = await python.query(KeyConditionExpression=Key("pk").eq("p"))
    assert [item["v"] for item in python_page["Items"]] == [
        item["v"]["S"] for item in direct_page["Items"]
    ]


@pytest.fixture
async def model_table(make_table: MakeTable) -> str:
    return await make_table(hash_key=("pk", "S"), range_key=("sk", "S"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=steps, seed=st.integers(0, 2**32 - 1))
async def test_concurrent_reads_and_writes_match_the_model(
    request: pytest.FixtureRequest,
    raw_client: DynamoDBClient,
    client_kwargs: ClientKwargs,
    model_table: str,
    steps: list[list[tuple[str, str]]],
    seed: int,
) -> None:
    table = model_table
    on_moto = request.node.callspec.params["endpoint"] == "moto"
    for name in KEYS:  # every example starts from the same table
        await raw_client.put_item(TableName=table, Item={**wire_key(name), "v": {"S": "initial"}})
    session = aioboto3.Session()
    async with (
        session.resource("dynamodb", **client_kwargs) as resource,
        aiodax.Cache() as cache,
    ):
        cached = cache.wrap(cast("DynamoDBClient", Jittery(raw_client, seed)))
        cached_resource = cache.wrap(resource)
        # The resource's wire requests go through the same kind of jitter.
        cached_resource._backend = cast(
            "DynamoDBClient", Jittery(cached_resource._backend, seed + 1)
        )
        python = await cached_resource.Table(table)
        model = Model()
        for step in steps:
            model.written = {k: set() for k in KEYS}
            updated = {name for kind, name in step if kind == "update_then_get"}
            model.torn_ok = updated if on_moto else set()
            seen = await asyncio.gather(
                *(run_script(cached, python, table, model, kind, name) for kind, name in step)
            )
            assert not model.failed.intersection(itertools.chain.from_iterable(seen))
            await assert_cache_agrees(cached, python, raw_client, table)

"""Drop-in fidelity: every cacheable read answers in DynamoDB's shape, whoever serves it.

For each read and each ``ReturnConsumedCapacity`` mode, the answers of the caller
that missed, of one that joined its request and of a later hit are compared with
the server's own answer to the same request: the same members, and a
``ConsumedCapacity`` of the same shape (zeros for the callers that spent nothing).
DynamoDB Local answers as DynamoDB does and runs every case; moto runs the reads
whose capacity it shapes as DynamoDB does (it reports a GSI under
``LocalSecondaryIndexes`` and answers every BatchGetItem in ``TOTAL``'s shape).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import Unprocessing, until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable

Request = Callable[[str], tuple[str, dict[str, Any]]]

KEY = {"pk": {"S": "a"}, "sk": {"S": "1"}}
MISSING = {"pk": {"S": "zz"}, "sk": {"S": "1"}}
ITEMS = [
    {"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "x"}, "l": {"S": "y"}},
    {"pk": {"S": "a"}, "sk": {"S": "2"}, "g": {"S": "x"}, "l": {"S": "z"}},
]


def _query(index: str | None) -> Request:
    def request(table: str) -> tuple[str, dict[str, Any]]:
        name = "g" if index == "gsi" else "pk"
        value = "x" if index == "gsi" else "a"
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": f"{name} = :v",
            "ExpressionAttributeValues": {":v": {"S": value}},
            "Limit": 1,  # a LastEvaluatedKey in every answer
        }
        if index is not None:
            request["IndexName"] = index
        return "query", request

    return request


def _scan(index: str | None) -> Request:
    def request(table: str) -> tuple[str, dict[str, Any]]:
        request: dict[str, Any] = {"TableName": table, "Limit": 1}
        if index is not None:
            request["IndexName"] = index
        return "scan", request

    return request


READS: dict[str, Request] = {
    "get": lambda table: ("get_item", {"TableName": table, "Key": KEY}),
    "get-missing": lambda table: ("get_item", {"TableName": table, "Key": MISSING}),
    "batch": lambda table: (
        "batch_get_item",
        {"RequestItems": {table: {"Keys": [KEY, MISSING]}}},
    ),
    "query": _query(None),
    "query-gsi": _query("gsi"),
    "query-lsi": _query("lsi"),
    "scan": _scan(None),
    "scan-gsi": _scan("gsi"),
}
#: Reads whose ConsumedCapacity moto shapes otherwise than DynamoDB.
MOTO_DEVIATES = {"batch", "query-gsi", "query-lsi", "scan-gsi"}

CASES = [
    pytest.param("dynamodb-local", read, marks=pytest.mark.dynamodb_local, id=f"local-{read}")
    for read in READS
] + [pytest.param("moto", read, id=f"moto-{read}") for read in READS if read not in MOTO_DEVIATES]


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> str:
    fixture = {"moto": "moto_endpoint", "dynamodb-local": "dynamodb_local_endpoint"}
    url: str = request.getfixturevalue(fixture[request.param])
    return url


def shape(value: Any) -> Any:
    """``value`` with every number and string replaced by its kind."""
    if isinstance(value, dict):
        return {name: shape(member) for name, member in value.items()}
    if isinstance(value, list):
        return [shape(member) for member in value]
    return "number" if isinstance(value, int | float) else type(value).__name__


def units(capacity: Any) -> list[float]:
    """Every ``CapacityUnits`` in a ``ConsumedCapacity``, however nested."""
    if isinstance(capacity, list):
        return [unit for member in capacity for unit in units(member)]
    if isinstance(capacity, dict):
        found = [capacity["CapacityUnits"]] if "CapacityUnits" in capacity else []
        return found + [unit for v in capacity.values() if isinstance(v, dict) for unit in units(v)]
    return []


def members(answer: dict[str, Any]) -> set[str]:
    return set(answer) - {"ResponseMetadata"}


async def filled_table(make_table: MakeTable, raw_client: DynamoDBClient) -> str:
    """A table with a GSI and an LSI, holding ``ITEMS``."""
    table = await make_table(
        hash_key=("pk", "S"),
        range_key=("sk", "S"),
        gsis=[("gsi", ("g", "S"), None)],
        lsis=[("lsi", ("pk", "S"), ("l", "S"))],
    )
    for item in ITEMS:
        await raw_client.put_item(TableName=table, Item=item)
    return table


@pytest.mark.parametrize("mode", ["NONE", "TOTAL", "INDEXES"])
@pytest.mark.parametrize(("endpoint", "read"), CASES, indirect=["endpoint"])
async def test_misses_joiners_and_hits_answer_in_dynamodb_s_shape(
    read: str,
    mode: str,
    make_table: MakeTable,
    raw_client: DynamoDBClient,
    instrumented: InstrumentedClient,
    cached: aiodax.CachedClient,
) -> None:
    table = await filled_table(make_table, raw_client)
    operation, request = READS[read](table)
    if mode != "NONE":
        request["ReturnConsumedCapacity"] = mode
    direct: dict[str, Any] = await getattr(raw_client, operation)(**request)

    release = instrumented.hold(operation, when="after")
    leader = asyncio.create_task(getattr(cached, operation)(**request))
    await until(lambda: instrumented.calls[operation] == 1)
    joiner = asyncio.create_task(getattr(cached, operation)(**request))
    await until(lambda: cached.cache.stats()["CoalescedRequests"] >= 1)
    release.set()
    miss: dict[str, Any] = await leader
    joined: dict[str, Any] = await joiner
    hit: dict[str, Any] = await getattr(cached, operation)(**request)

    statuses = [answer["ResponseMetadata"]["CacheStatus"] for answer in (miss, joined, hit)]
    assert statuses == ["miss", "coalesced", "hit"]
    assert instrumented.calls[operation] == 1
    for answer in (miss, joined, hit):
        assert members(answer) == members(direct)
        assert shape(answer.get("ConsumedCapacity")) == shape(direct.get("ConsumedCapacity"))
    assert units(miss.get("ConsumedCapacity")) == units(direct.get("ConsumedCapacity"))
    assert not any(units(joined.get("ConsumedCapacity")) + units(hit.get("ConsumedCapacity")))
    # The miss's metadata is the server's own, as without the cache.
    assert miss["ResponseMetadata"]["RequestId"]
    assert miss["ResponseMetadata"]["HTTPHeaders"]


PAGED = [case for case in CASES if str(case.values[1]).startswith(("query", "scan"))]


@pytest.mark.parametrize(("endpoint", "read"), PAGED, indirect=["endpoint"])
async def test_a_page_s_last_evaluated_key_is_the_caller_s_own(
    read: str, make_table: MakeTable, raw_client: DynamoDBClient, cached: aiodax.CachedClient
) -> None:
    table = await filled_table(make_table, raw_client)
    operation, request = READS[read](table)
    direct = await getattr(raw_client, operation)(**request)

    for status in ("miss", "hit"):
        answer = await getattr(cached, operation)(**request)
        assert answer["ResponseMetadata"]["CacheStatus"] == status
        last_key = answer["LastEvaluatedKey"]
        for value in last_key.values():
            value["S"] = "edited"  # as code resuming from a key it rewrote does
        last_key["extra"] = {"S": "x"}

    again = await getattr(cached, operation)(**request)
    assert again["LastEvaluatedKey"] == direct["LastEvaluatedKey"]  # the cache's is untouched


@pytest.mark.parametrize(
    "endpoint",
    ["moto", pytest.param("dynamodb-local", marks=pytest.mark.dynamodb_local)],
    indirect=True,
)
async def test_unprocessed_keys_and_a_write_s_attributes_are_the_caller_s_own(
    make_table: MakeTable, raw_client: DynamoDBClient
) -> None:
    table = await make_table(hash_key=("pk", "S"), range_key=("sk", "S"))
    backend = Unprocessing(raw_client, refusals=100)
    retry = aiodax.RetryPolicy(attempts=1, base=0.001, cap=0.002)
    async with aiodax.Cache(retry=retry) as cache:
        cached = cache.wrap(cast("DynamoDBClient", backend))
        await cached.put_item(TableName=table, Item={**KEY, "v": {"M": {"a": {"S": "x"}}}})

        batch = await cached.batch_get_item(RequestItems={table: {"Keys": [MISSING]}})
        keys = batch["UnprocessedKeys"][table]["Keys"]
        keys[0]["pk"]["S"] = "edited"
        keys.append(KEY)

        updated = await cached.update_item(
            TableName=table,
            Key=KEY,
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "z"}},
            ReturnValues="ALL_NEW",
        )
        updated["Attributes"]["v"]["M"]["a"]["S"] = "edited"  # the cached image is not this

        hit = await cached.get_item(TableName=table, Key=KEY)
        assert hit["ResponseMetadata"]["CacheStatus"] == "hit"
        assert hit["Item"]["v"] == {"M": {"a": {"S": "x"}}}
        with pytest.raises(TypeError):  # a hit's attribute values are shared: read-only
            hit["Item"]["v"]["M"]["a"] = {"S": "y"}

"""A request DynamoDB refuses is refused whether what it reads is cached or not.

Each request is sent through the cache with nothing cached (so DynamoDB answers
it), then again once its item or page is cached: the two outcomes must be the
same, and the second must have reached DynamoDB.  Against DynamoDB Local every
request here is refused with ``ValidationException`` (botocore refuses some before
sending); moto takes many of them, so there only the sameness is asserted.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

import aiodax
from tests.support import strip_metadata

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

ITEM: dict[str, Any] = {
    "pk": {"S": "a"},
    "v": {"S": "x"},
    "name": {"S": "n"},
    "a": {"M": {"b": {"L": [{"M": {"c": {"S": "c"}}}]}}},
}
KEY = {"pk": {"S": "a"}}

#: Projections (and their names) DynamoDB refuses; moto takes some of them.
INVALID_PROJECTIONS: dict[str, dict[str, Any]] = {
    "reserved word": {"ProjectionExpression": "name"},
    "reserved word in another case": {"ProjectionExpression": "NaMe"},
    "reserved word in a nested path": {"ProjectionExpression": "a.name"},
    "reserved word beside others": {"ProjectionExpression": "v, item"},
    "one path twice": {"ProjectionExpression": "v, v"},
    "one path twice, once by placeholder": {
        "ProjectionExpression": "v, #v",
        "ExpressionAttributeNames": {"#v": "v"},
    },
    "a path and one inside it": {"ProjectionExpression": "a, a.b"},
    "an index and one inside it": {"ProjectionExpression": "a.b[0], a.b[0].c"},
    "a map and a list at one level": {"ProjectionExpression": "a.b, a[0]"},
    "name starting with a digit": {"ProjectionExpression": "1v"},
    "name starting with an underscore": {"ProjectionExpression": "_v"},
    "non-ASCII name": {"ProjectionExpression": "é"},
    "name with a dash": {"ProjectionExpression": "v-w"},
    "form feed": {"ProjectionExpression": "v\f"},
    "no-break space": {"ProjectionExpression": "v\u00a0"},
    "space inside a placeholder": {
        "ProjectionExpression": "# v",
        "ExpressionAttributeNames": {"#v": "v"},
    },
    "index with a leading zero": {"ProjectionExpression": "a.b[01]"},
    "negative index": {"ProjectionExpression": "a.b[-1]"},
    "index out of range": {"ProjectionExpression": "a.b[2147483648]"},
    "index first": {"ProjectionExpression": "[0]"},
    "name after an index": {"ProjectionExpression": "a[0]b"},
    "33 levels": {"ProjectionExpression": ".".join(["a"] * 33)},
    "over 4 KB": {"ProjectionExpression": ", ".join(f"a{i}" for i in range(1000))},
    "value placeholder": {"ProjectionExpression": ":v"},
    "empty expression": {"ProjectionExpression": ""},
    "blank expression": {"ProjectionExpression": "  "},
    "trailing comma": {"ProjectionExpression": "v,"},
    "leading comma": {"ProjectionExpression": ",v"},
    "unused name": {"ProjectionExpression": "v", "ExpressionAttributeNames": {"#v": "v"}},
    "undefined name": {"ProjectionExpression": "#v"},
    "name defined in another case": {
        "ProjectionExpression": "#V",
        "ExpressionAttributeNames": {"#v": "v"},
    },
    "empty names": {"ProjectionExpression": "v", "ExpressionAttributeNames": {}},
    "names without an expression": {"ExpressionAttributeNames": {"#v": "v"}},
    "name key without #": {"ProjectionExpression": "v", "ExpressionAttributeNames": {"v": "v"}},
    "name key with a dash": {
        "ProjectionExpression": "#a-b",
        "ExpressionAttributeNames": {"#a-b": "v"},
    },
    "empty attribute name": {"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": ""}},
    "AttributesToGet naming one twice": {"AttributesToGet": ["v", "v"]},
    "AttributesToGet naming nothing": {"AttributesToGet": [""]},
    "AttributesToGet beside names": {
        "AttributesToGet": ["v"],
        "ExpressionAttributeNames": {"#v": "v"},
    },
    "AttributesToGet beside an expression": {
        "AttributesToGet": ["v"],
        "ProjectionExpression": "v",
    },
}
#: Other parameters of a read DynamoDB (or botocore, before sending) refuses.
INVALID_PARAMETERS: dict[str, dict[str, Any]] = {
    "unknown capacity mode": {"ReturnConsumedCapacity": "BOGUS"},
    "capacity mode of no string": {"ReturnConsumedCapacity": 1},
    "ConsistentRead of no boolean": {"ConsistentRead": 0},
    "a projection of None": {"ProjectionExpression": None},
}
#: Refused by DynamoDB's API and by moto, taken by DynamoDB Local.
LOCAL_TAKES: dict[str, dict[str, Any]] = {
    "lower-case capacity mode": {"ReturnConsumedCapacity": "total"},
}


async def outcome(call: Awaitable[Any]) -> tuple[Any, ...]:
    """("ok", response) or ("error", exception class, DynamoDB's code or None)."""
    try:
        response = await call
    except ClientError as error:
        return ("error", type(error), error.response["Error"]["Code"])
    except Exception as error:  # botocore's own refusals (ParamValidationError…)
        return ("error", type(error), None)
    return ("ok", strip_metadata(response))


def requests_sent(cached: aiodax.CachedClient, operation: str) -> int:
    return int(cached.cache.stats()["BackendRequests"].get(operation, 0))


@pytest.fixture
def server(request: pytest.FixtureRequest) -> str:
    """``moto`` or ``dynamodb-local``: the ``endpoint`` this test runs against."""
    return str(request.node.callspec.params["endpoint"])


@pytest.fixture
async def seeded(raw_client: DynamoDBClient, table: str) -> str:
    await raw_client.put_item(TableName=table, Item=ITEM)
    return table


def assert_refused_by_dynamodb_local(server: str, case: str, answer: tuple[Any, ...]) -> None:
    if server == "dynamodb-local":
        assert answer[0] == "error", (case, answer)
        assert answer[2] in ("ValidationException", None), (case, answer)


async def test_get_item_is_refused_whether_its_item_is_cached_or_not(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, seeded: str, server: str
) -> None:
    cases = {**INVALID_PROJECTIONS, **INVALID_PARAMETERS, **LOCAL_TAKES}
    for case, extra in cases.items():
        request = {"TableName": seeded, "Key": KEY, **extra}
        cached.cache.clear()
        uncached = await outcome(cached.get_item(**request))
        assert uncached == await outcome(raw_client.get_item(**request)), case
        await cached.get_item(TableName=seeded, Key=KEY)  # the whole item, cached
        before = requests_sent(cached, "get_item")

        again = await outcome(cached.get_item(**request))

        assert again == uncached, case
        assert requests_sent(cached, "get_item") == before + 1, case  # DynamoDB judged it
        if case not in LOCAL_TAKES:
            assert_refused_by_dynamodb_local(server, case, uncached)


async def test_batch_get_item_is_refused_whether_its_items_are_cached_or_not(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, seeded: str, server: str
) -> None:
    table_cases = {
        **INVALID_PROJECTIONS,
        "ConsistentRead of no boolean": {"ConsistentRead": 0},
        "one key twice": {"Keys": [KEY, KEY]},
    }
    requests: dict[str, dict[str, Any]] = {
        case: {"RequestItems": {seeded: {"Keys": [KEY], **extra}}}
        for case, extra in table_cases.items()
    }
    for case, extra in {**INVALID_PARAMETERS, **LOCAL_TAKES}.items():
        if "ReturnConsumedCapacity" in extra:
            requests[case] = {"RequestItems": {seeded: {"Keys": [KEY]}}, **extra}
    for case, request in requests.items():
        cached.cache.clear()
        uncached = await outcome(cached.batch_get_item(**request))
        assert uncached == await outcome(raw_client.batch_get_item(**request)), case
        await cached.get_item(TableName=seeded, Key=KEY)
        before = requests_sent(cached, "batch_get_item")

        again = await outcome(cached.batch_get_item(**request))

        assert again == uncached, case
        assert requests_sent(cached, "batch_get_item") == before + 1, case
        if case not in LOCAL_TAKES:
            assert_refused_by_dynamodb_local(server, case, uncached)


@pytest.mark.parametrize("operation", ["query", "scan"])
async def test_a_page_is_refused_whether_it_is_cached_or_not(
    cached: aiodax.CachedClient,
    raw_client: DynamoDBClient,
    seeded: str,
    server: str,
    operation: str,
) -> None:
    page: dict[str, Any] = {"TableName": seeded}
    if operation == "query":
        page["KeyConditionExpression"] = "pk = :p"
        page["ExpressionAttributeValues"] = {":p": {"S": "a"}}
    read = getattr(cached, operation)
    cases = {**INVALID_PARAMETERS, **LOCAL_TAKES}
    del cases["a projection of None"]
    for case, extra in cases.items():
        request = {**page, **extra}
        cached.cache.clear()
        uncached = await outcome(read(**request))
        assert uncached == await outcome(getattr(raw_client, operation)(**request)), case
        await read(**page)
        before = requests_sent(cached, operation)
        assert (await read(**page))["ResponseMetadata"]["CacheStatus"] == "hit"

        again = await outcome(read(**request))

        assert again == uncached, case
        assert requests_sent(cached, operation) == before + 1, case
        if case not in LOCAL_TAKES:
            assert_refused_by_dynamodb_local(server, case, uncached)

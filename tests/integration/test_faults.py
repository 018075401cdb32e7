"""Fault matrix: every injected fault on every cached operation.

For each operation and each fault injected with ``InstrumentedClient.fail``:

- the caller gets the exception class and error code that the same fault gives a
  caller of the plain client (the instrumented client called directly);
- the cache afterwards is as docs/semantics.md promises: a failed read caches
  nothing (the next read reaches DynamoDB); a failed write leaves the cached item
  as it was when DynamoDB surely did not apply it (a 4xx: throttling), and
  invalidates it when it may have (5xx, a failure after sending, a timeout, a lost
  connection). Either way the next read equals DynamoDB's consistent answer.

Faults are injected on the client side, so one server suffices: these tests run
against moto only (``endpoint`` is overridden below).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import strip_metadata

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

URL = "http://127.0.0.1:1"


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    """Client-side faults: moto only (DynamoDB Local would add time, not coverage)."""
    return moto_endpoint


@dataclass(frozen=True)
class Fault:
    id: str
    error: str | Callable[[], BaseException]
    when: Literal["before", "after"] = "before"
    #: DynamoDB surely did not apply a write that failed so (a 4xx)
    definite: bool = False


FAULTS = [
    Fault("provisioned-throughput", "ProvisionedThroughputExceededException", definite=True),
    Fault("throttling", "ThrottlingException", definite=True),
    Fault("request-limit", "RequestLimitExceeded", definite=True),
    Fault("5xx-before", "InternalServerError"),
    Fault("5xx-after", "InternalServerError", when="after"),
    Fault("timeout", lambda: ReadTimeoutError(endpoint_url=URL), when="after"),
    Fault("asyncio-timeout", TimeoutError),
    Fault("connection", lambda: EndpointConnectionError(endpoint_url=URL)),
]

OLD = "old"
NEW = "new"


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


def item(name: str, value: str) -> dict[str, Any]:
    return {**key(name), "v": {"S": value}}


def read_request(operation: str, table: str) -> dict[str, Any]:
    if operation == "get_item":
        return {"TableName": table, "Key": key("a")}
    if operation == "batch_get_item":
        return {"RequestItems": {table: {"Keys": [key("a"), key("b")]}}}
    if operation == "query":
        return {
            "TableName": table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "a"}},
        }
    assert operation == "scan"
    return {"TableName": table}


def write_request(operation: str, table: str) -> dict[str, Any]:
    """A write of item "a" that, when applied, leaves it as ``item("a", NEW)`` or absent."""
    if operation == "put_item":
        return {"TableName": table, "Item": item("a", NEW)}
    if operation == "update_item":
        return {
            "TableName": table,
            "Key": key("a"),
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"S": NEW}},
        }
    if operation == "delete_item":
        return {"TableName": table, "Key": key("a")}
    if operation == "batch_write_item":
        return {"RequestItems": {table: [{"PutRequest": {"Item": item("a", NEW)}}]}}
    assert operation == "transact_write_items"
    return {"TransactItems": [{"Put": {"TableName": table, "Item": item("a", NEW)}}]}


READS = ["get_item", "batch_get_item", "query", "scan"]
WRITES = ["put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"]


def signature(error: BaseException) -> tuple[type[BaseException], str | None]:
    code = error.response["Error"]["Code"] if isinstance(error, ClientError) else None
    return type(error), code


async def failure(call: Awaitable[Any]) -> BaseException:
    try:
        await call
    except Exception as error:  # the fault, whatever its class
        return error
    pytest.fail("the injected fault did not reach the caller")


async def compare_with_plain_client(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    operation: str,
    request: dict[str, Any],
    fault: Fault,
) -> None:
    """The plain client's failure, then the cached client's: same class, same code."""
    instrumented.fail(operation, fault.error, when=fault.when)
    direct = await failure(getattr(instrumented, operation)(**request))
    instrumented.fail(operation, fault.error, when=fault.when)
    through = await failure(getattr(cached, operation)(**request))
    assert signature(through) == signature(direct)
    if isinstance(direct, ClientError):
        assert isinstance(through, ClientError)
        status = through.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == direct.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
@pytest.mark.parametrize("operation", READS)
async def test_a_failed_read_caches_nothing(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
    operation: str,
    fault: Fault,
) -> None:
    await raw_client.put_item(TableName=table, Item=item("a", OLD))
    request = read_request(operation, table)

    await compare_with_plain_client(cached, instrumented, operation, request, fault)

    assert cached.cache.stats()["CurrentEntries"] == 0
    sent = instrumented.calls[operation]
    answer = await getattr(cached, operation)(**request)  # not an error served from the cache
    assert instrumented.calls[operation] == sent + 1
    consistent = await getattr(raw_client, operation)(**request_consistent(operation, request))
    assert normalized(answer) == normalized(consistent)
    assert cached.cache.stats()["CurrentEntries"] >= 1  # and this answer was cached


def request_consistent(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    if operation == "batch_get_item":
        return {
            "RequestItems": {
                table: {**spec, "ConsistentRead": True}
                for table, spec in request["RequestItems"].items()
            }
        }
    return {**request, "ConsistentRead": True}


def normalized(response: dict[str, Any]) -> dict[str, Any]:
    """A read's answer without metadata, batch responses in key order."""
    answer = strip_metadata(response)
    if "Responses" in answer:
        answer["Responses"] = {
            table: sorted(items, key=lambda i: i["pk"]["S"])
            for table, items in answer["Responses"].items()
        }
    return answer


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
@pytest.mark.parametrize("operation", WRITES)
async def test_a_failed_write_leaves_the_cache_per_contract(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    table: str,
    operation: str,
    fault: Fault,
) -> None:
    await raw_client.put_item(TableName=table, Item=item("a", OLD))
    assert (await cached.get_item(TableName=table, Key=key("a")))["Item"] == item("a", OLD)
    reads = instrumented.calls["get_item"]
    # The plain client's failed write goes first: after a fault "after" sending it,
    # DynamoDB holds the new value and the cached old one is stale unless the
    # cached client's failed write invalidates it.
    await compare_with_plain_client(
        cached, instrumented, operation, write_request(operation, table), fault
    )

    answer = await cached.get_item(TableName=table, Key=key("a"))
    consistent = await raw_client.get_item(TableName=table, Key=key("a"), ConsistentRead=True)
    assert strip_metadata(answer) == strip_metadata(consistent)
    if fault.definite:
        # untouched: still the cached item, and DynamoDB did not change either
        assert instrumented.calls["get_item"] == reads
        assert answer["Item"] == item("a", OLD)
    else:
        # invalidated: the read went to DynamoDB
        assert instrumented.calls["get_item"] == reads + 1
        if fault.when == "after":
            assert answer.get("Item") == (None if operation == "delete_item" else item("a", NEW))
    assert instrumented.in_flight[operation] == 0
    assert cached.cache.stats()["InFlight"] == 0
    assert cached.cache.stats()["WritesInFlight"] == 0

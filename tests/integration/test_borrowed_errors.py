"""A caller who joined another caller's load gets its failure only when it would have been its own.

A valid read that joins a load in flight must not be handed the error of the
request that load sent when its own request, sent alone, succeeds: a GetItem
joining a BatchGetItem that also names a missing table, a GetItem with ``#n``
for ``name`` beside one spelling ``name`` itself, a Query beside the same Query
with a bogus ``ReturnConsumedCapacity``.  Throttling, 5xx answers and the
failures of an identical request are everyone's, and are shared without a
second request.  The first tests run against both servers with DynamoDB's own
errors; the rest inject failures (moto only: what is tested is aiodax).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import InstrumentedClient
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

MOTO_ONLY = pytest.mark.parametrize("endpoint", ["moto"], indirect=True)

ITEM = {"pk": {"S": "hot"}, "name": {"S": "Ada"}, "v": {"S": "x"}}
KEY = {"pk": {"S": "hot"}}


def error_code(error: BaseException) -> str:
    assert isinstance(error, ClientError), error
    return str(error.response["Error"]["Code"])


async def outcome(call: Awaitable[Any]) -> Any:
    """The response, or the exception the call raised."""
    try:
        return await call
    except Exception as error:
        return error


def coalesced(cached: aiodax.CachedClient) -> int:
    return int(cached.cache.stats()["CoalescedRequests"])


def sent(cached: aiodax.CachedClient, operation: str) -> int:
    return int(cached.cache.stats()["BackendRequests"].get(operation, 0))


@pytest.fixture
async def seeded(raw_client: DynamoDBClient, table: str) -> str:
    await raw_client.put_item(TableName=table, Item=ITEM)
    return table


# ------------------------------------------------------ DynamoDB's own errors


async def test_a_get_item_joining_a_batch_that_names_a_missing_table_gets_its_item(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    release = instrumented.hold("batch_get_item")
    batch = asyncio.create_task(
        outcome(
            cached.batch_get_item(
                RequestItems={seeded: {"Keys": [KEY]}, "aiodax-missing": {"Keys": [KEY]}}
            )
        )
    )
    await until(lambda: instrumented.in_flight["batch_get_item"] == 1)
    get = asyncio.create_task(outcome(cached.get_item(TableName=seeded, Key=KEY)))
    await until(lambda: coalesced(cached) == 1)
    release.set()

    assert error_code(await batch) == "ResourceNotFoundException"  # the batch's own
    assert (await get)["Item"] == ITEM
    assert sent(cached, "get_item") == 1  # the joiner asked for itself, once


async def test_a_batch_joining_a_batch_that_names_a_missing_table_gets_its_items(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    seeded: str,
) -> None:
    other = {"pk": {"S": "other"}, "v": {"S": "y"}}
    await raw_client.put_item(TableName=seeded, Item=other)
    release = instrumented.hold("batch_get_item")
    failing = asyncio.create_task(
        outcome(
            cached.batch_get_item(
                RequestItems={seeded: {"Keys": [KEY]}, "aiodax-missing": {"Keys": [KEY]}}
            )
        )
    )
    await until(lambda: instrumented.in_flight["batch_get_item"] == 1)
    joining = asyncio.create_task(
        outcome(cached.batch_get_item(RequestItems={seeded: {"Keys": [KEY, {"pk": other["pk"]}]}}))
    )
    await until(lambda: coalesced(cached) == 1)
    release.set()

    assert error_code(await failing) == "ResourceNotFoundException"
    response = await joining
    assert sorted(item["pk"]["S"] for item in response["Responses"][seeded]) == ["hot", "other"]
    assert response["UnprocessedKeys"] == {}
    # The joiner's own load of "other", then "hot" asked for again on its own.
    assert sent(cached, "batch_get_item") == 3


async def test_identical_batches_naming_a_missing_table_share_the_error_and_one_request(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    request = {"RequestItems": {seeded: {"Keys": [KEY]}, "aiodax-missing": {"Keys": [KEY]}}}
    release = instrumented.hold("batch_get_item")
    first = asyncio.create_task(outcome(cached.batch_get_item(**request)))
    await until(lambda: instrumented.in_flight["batch_get_item"] == 1)
    others = [asyncio.create_task(outcome(cached.batch_get_item(**request))) for _ in range(10)]
    await until(lambda: coalesced(cached) == 2 * 10)  # each joins both tables' keys
    release.set()

    for task in (first, *others):
        assert error_code(await task) == "ResourceNotFoundException"
    assert sent(cached, "batch_get_item") == 1


@pytest.mark.parametrize("invalid_first", [True, False], ids=["invalid first", "valid first"])
async def test_a_valid_projection_spelling_never_shares_an_invalid_one_s_answer(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str, invalid_first: bool
) -> None:
    valid = {
        "TableName": seeded,
        "Key": KEY,
        "ProjectionExpression": "#n",
        "ExpressionAttributeNames": {"#n": "name"},
    }
    invalid = {"TableName": seeded, "Key": KEY, "ProjectionExpression": "name"}  # reserved
    release = instrumented.hold("get_item")
    first, second = (invalid, valid) if invalid_first else (valid, invalid)
    tasks = [asyncio.create_task(outcome(cached.get_item(**first)))]
    await until(lambda: instrumented.in_flight["get_item"] == 1)
    tasks.append(asyncio.create_task(outcome(cached.get_item(**second))))
    await asyncio.sleep(0.05)  # the second has joined, if it can
    release.set()
    answers = dict(zip(("first", "second"), await asyncio.gather(*tasks), strict=True))

    answered_valid = answers["second" if invalid_first else "first"]
    answered_invalid = answers["first" if invalid_first else "second"]
    assert answered_valid["Item"] == {"name": {"S": "Ada"}}
    assert error_code(answered_invalid) == "ValidationException"
    assert coalesced(cached) == 0


async def test_a_query_beside_the_same_query_with_a_bogus_capacity_mode_gets_its_page(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    query: dict[str, Any] = {
        "TableName": seeded,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "hot"}},
    }
    release = instrumented.hold("query")
    bogus = asyncio.create_task(outcome(cached.query(**query, ReturnConsumedCapacity="BOGUS")))
    await until(lambda: instrumented.in_flight["query"] == 1)
    valid = asyncio.create_task(outcome(cached.query(**query)))
    await asyncio.sleep(0.05)
    release.set()

    assert error_code(await bogus) == "ValidationException"
    assert (await valid)["Items"] == [ITEM]
    assert coalesced(cached) == 0


# ------------------------------------------------------------ injected faults


async def joined_get_items(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    leader: dict[str, Any],
    joiners: list[dict[str, Any]],
    error: str | BaseException,
    *,
    times: int | None = 1,
) -> tuple[Any, list[Any]]:
    """The leader's outcome and each joiner's, every joiner having joined the leader's
    flight, which fails with ``error`` (as do the next ``times - 1`` requests)."""
    release = instrumented.hold("get_item")
    instrumented.fail("get_item", error, times=times)
    first = asyncio.create_task(outcome(cached.get_item(**leader)))
    await until(lambda: instrumented.in_flight["get_item"] == 1)
    tasks = [asyncio.create_task(outcome(cached.get_item(**joiner))) for joiner in joiners]
    await until(lambda: coalesced(cached) == len(joiners))
    release.set()
    return await first, list(await asyncio.gather(*tasks))


@MOTO_ONLY
@pytest.mark.parametrize(
    "code", ["ValidationException", "AccessDeniedException", "ResourceNotFoundException"]
)
async def test_a_joiner_with_another_request_sends_its_own_after_its_leader_s_own_error(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str, code: str
) -> None:
    leader = {"TableName": seeded, "Key": KEY}
    joiner = {**leader, "ReturnConsumedCapacity": "TOTAL"}

    led, (joined,) = await joined_get_items(cached, instrumented, leader, [joiner], code)

    assert error_code(led) == code  # never hidden from the leader
    assert joined["Item"] == ITEM
    assert joined["ConsumedCapacity"]["CapacityUnits"] > 0  # its own request's
    assert sent(cached, "get_item") == 2


@MOTO_ONLY
@pytest.mark.parametrize(
    "code, status",
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
    ],
)
async def test_throttling_and_server_errors_are_shared_without_another_request(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    seeded: str,
    code: str,
    status: int,
) -> None:
    leader = {"TableName": seeded, "Key": KEY}
    joiners = [{**leader, "ReturnConsumedCapacity": "TOTAL"} for _ in range(20)]

    led, joined = await joined_get_items(cached, instrumented, leader, joiners, code)

    assert error_code(led) == code
    assert all(error_code(error) == code for error in joined)
    assert all(e.response["ResponseMetadata"]["HTTPStatusCode"] == status for e in joined)
    assert sent(cached, "get_item") == 1


@MOTO_ONLY
async def test_a_lost_connection_is_shared_without_another_request(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    from botocore.exceptions import ConnectionClosedError

    lost = ConnectionClosedError(endpoint_url="http://127.0.0.1")
    leader = {"TableName": seeded, "Key": KEY}

    led, joined = await joined_get_items(
        cached, instrumented, leader, [{**leader, "ReturnConsumedCapacity": "TOTAL"}], lost
    )

    assert isinstance(led, ConnectionClosedError)
    assert joined[0] is led
    assert sent(cached, "get_item") == 1


@MOTO_ONLY
async def test_an_identical_request_s_own_error_is_shared_without_another_request(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    leader = {"TableName": seeded, "Key": KEY, "ReturnConsumedCapacity": "TOTAL"}
    # The same request, its maps in another order.
    joiners = [{"ReturnConsumedCapacity": "TOTAL", "Key": KEY, "TableName": seeded}] * 50

    led, joined = await joined_get_items(
        cached, instrumented, leader, joiners, "ValidationException"
    )

    assert error_code(led) == "ValidationException"
    assert all(error_code(error) == "ValidationException" for error in joined)
    assert sent(cached, "get_item") == 1


@MOTO_ONLY
async def test_every_joiner_sends_its_own_once_and_keeps_that_answer_s_error(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    # Every request fails: the leader's, and each joiner's own one. No joiner
    # asks twice, and none joins another's second request.
    leader = {"TableName": seeded, "Key": KEY}
    joiners = [{**leader, "ReturnConsumedCapacity": "TOTAL"} for _ in range(10)]

    led, joined = await joined_get_items(
        cached, instrumented, leader, joiners, "AccessDeniedException", times=None
    )

    assert error_code(led) == "AccessDeniedException"
    assert all(error_code(error) == "AccessDeniedException" for error in joined)
    assert sent(cached, "get_item") == 1 + len(joiners)
    instrumented.clear_rules()
    assert (await cached.get_item(**leader))["Item"] == ITEM  # no error was cached


@MOTO_ONLY
async def test_a_page_joiner_sends_its_own_after_its_leader_s_own_error(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    query: dict[str, Any] = {
        "TableName": seeded,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "hot"}},
    }
    release = instrumented.hold("query")
    instrumented.fail("query", "ValidationException")
    led = asyncio.create_task(outcome(cached.query(**query, ReturnConsumedCapacity="TOTAL")))
    await until(lambda: instrumented.in_flight["query"] == 1)
    joined = asyncio.create_task(outcome(cached.query(**query)))
    await until(lambda: coalesced(cached) == 1)
    release.set()

    assert error_code(await led) == "ValidationException"
    assert (await joined)["Items"] == [ITEM]
    assert sent(cached, "query") == 2


@MOTO_ONLY
async def test_a_batch_joining_a_failed_get_item_asks_for_that_key_itself(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    seeded: str,
) -> None:
    other = {"pk": {"S": "other"}, "v": {"S": "y"}}
    await raw_client.put_item(TableName=seeded, Item=other)
    release = instrumented.hold("get_item")
    instrumented.fail("get_item", "AccessDeniedException")
    get = asyncio.create_task(outcome(cached.get_item(TableName=seeded, Key=KEY)))
    await until(lambda: instrumented.in_flight["get_item"] == 1)
    batch = asyncio.create_task(
        outcome(cached.batch_get_item(RequestItems={seeded: {"Keys": [{"pk": other["pk"]}, KEY]}}))
    )
    await until(lambda: coalesced(cached) == 1)
    await until(lambda: instrumented.answered["batch_get_item"] == 1)  # its own load is back
    release.set()

    assert error_code(await get) == "AccessDeniedException"
    response = await batch
    assert sorted(item["pk"]["S"] for item in response["Responses"][seeded]) == ["hot", "other"]
    requests = [
        r["RequestItems"][seeded]["Keys"]
        for op, r in instrumented.requests
        if op != "describe_table"
    ]
    assert requests == [[{"pk": other["pk"]}], [KEY]]  # its own load, then the key it had joined


@MOTO_ONLY
async def test_a_batch_s_own_failure_is_raised_as_it_is(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    instrumented.fail("batch_get_item", "ValidationException")

    with pytest.raises(ClientError) as raised:
        await cached.batch_get_item(RequestItems={seeded: {"Keys": [KEY]}})

    assert error_code(raised.value) == "ValidationException"
    assert sent(cached, "batch_get_item") == 1


@MOTO_ONLY
async def test_a_cancelled_joiner_leaves_its_own_request_cancelled(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, seeded: str
) -> None:
    release = instrumented.hold("get_item")
    instrumented.fail("get_item", "ValidationException")
    leader = asyncio.create_task(outcome(cached.get_item(TableName=seeded, Key=KEY)))
    await until(lambda: instrumented.in_flight["get_item"] == 1)
    joiner = asyncio.create_task(
        cached.get_item(TableName=seeded, Key=KEY, ReturnConsumedCapacity="TOTAL")
    )
    await until(lambda: coalesced(cached) == 1)
    instrumented.hold("get_item")  # the joiner's own request, when it goes out
    release.set()
    assert error_code(await leader) == "ValidationException"
    await until(lambda: instrumented.in_flight["get_item"] == 1)  # the joiner's own is out

    joiner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joiner
    assert instrumented.in_flight["get_item"] == 0
    assert sent(cached, "get_item") == 2

"""Bad input corpus: whatever DynamoDB answers a malformed request, aiodax answers the same.

Each request is sent once to the plain client and once through the cache, against
each server; the two outcomes (the response, or the exception class and error
code) must be equal. A request that fails must not change the cache: the number of
entries stays as it was and the sentinel items cached beforehand (another table,
another key type, the same key's cached value) are still served, unchanged, as hits.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

import aiodax
from aiodax._backend import ambiguous_write_window
from aiodax.testing import InstrumentedClient
from tests.support import FakeClock, strip_metadata

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable


async def outcome(call: Awaitable[Mapping[str, Any]]) -> tuple[Any, ...]:
    """("ok", response) or ("error", exception class, DynamoDB's code or None)."""
    try:
        response = await call
    except ClientError as error:
        return ("error", type(error), error.response["Error"]["Code"])
    except Exception as error:  # botocore's own refusals (ParamValidationError…)
        return ("error", type(error), None)
    return ("ok", strip_metadata(response))


@dataclass
class Corpus:
    """Three tables (string, number and binary partition keys) with cached sentinels."""

    s: str
    n: str
    b: str
    sentinels: list[tuple[str, dict[str, Any], dict[str, Any]]]
    clock: FakeClock


S_SENTINEL = {"pk": {"S": "1"}, "v": {"S": "string table"}}
N_SENTINEL = {"pk": {"N": "1"}, "v": {"S": "number table"}}
B_SENTINEL = {"pk": {"B": b"1"}, "v": {"S": "binary table"}}


@pytest.fixture
async def cache(clock: FakeClock) -> AsyncIterator[aiodax.Cache]:
    async with aiodax.Cache(clock=clock) as cache:
        yield cache


@pytest.fixture
async def corpus(
    make_table: MakeTable,
    raw_client: DynamoDBClient,
    cached: aiodax.CachedClient,
    clock: FakeClock,
) -> Corpus:
    s = await make_table(hash_key=("pk", "S"))
    n = await make_table(hash_key=("pk", "N"))
    b = await make_table(hash_key=("pk", "B"))
    sentinels: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (s, {"pk": {"S": "1"}}, S_SENTINEL),
        (n, {"pk": {"N": "1"}}, N_SENTINEL),
    ]
    sentinels.append((b, {"pk": {"B": b"1"}}, B_SENTINEL))
    for table, key, item in sentinels:
        await raw_client.put_item(TableName=table, Item=item)
        assert (await cached.get_item(TableName=table, Key=key))["Item"] == item
    return Corpus(s, n, b, sentinels, clock)


async def reset_sentinels(
    cached: aiodax.CachedClient, raw_client: DynamoDBClient, corpus: Corpus
) -> None:
    """The sentinels back in DynamoDB, and cached (as if nothing ran before)."""
    # Past the hold a 5xx (moto answers some malformed requests so) leaves behind.
    corpus.clock.advance(ambiguous_write_window(raw_client))
    cached.cache.clear()
    for table, key, item in corpus.sentinels:
        await raw_client.put_item(TableName=table, Item=item)
        assert (await cached.get_item(TableName=table, Key=key))["Item"] == item


async def assert_same_outcome(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    corpus: Corpus,
    operation: str,
    request: dict[str, Any],
) -> tuple[Any, ...]:
    """The same outcome direct and through the cache; a refusal leaves the cache as it was."""
    await reset_sentinels(cached, raw_client, corpus)
    entries = cached.cache.stats()["CurrentEntries"]
    direct = await outcome(getattr(raw_client, operation)(**request))
    through = await outcome(getattr(cached, operation)(**request))
    reads = instrumented.calls["get_item"]  # a malformed GetItem itself goes out
    assert through == direct, (operation, request)
    if through[0] == "ok":
        return through
    # A 4xx (or botocore's own refusal): DynamoDB surely changed nothing, nor did the
    # cache. A 5xx (moto answers some bad requests so) and a cancelled transaction
    # invalidate, per contract.
    for table, key, _ in corpus.sentinels:
        served = await cached.get_item(TableName=table, Key=key)
        consistent = await raw_client.get_item(TableName=table, Key=key, ConsistentRead=True)
        assert strip_metadata(served) == strip_metadata(consistent), (table, key)
    suspect = through[2] in ("TransactionCanceledException", "ConditionalCheckFailedException")
    if not suspect and not await was_5xx(getattr(raw_client, operation), request):
        assert cached.cache.stats()["CurrentEntries"] == entries
        assert instrumented.calls["get_item"] == reads  # the sentinels were hits
    return through


async def was_5xx(method: Any, request: dict[str, Any]) -> bool:
    try:
        await method(**request)
    except ClientError as error:
        return int(error.response["ResponseMetadata"]["HTTPStatusCode"]) >= 500
    except Exception:
        return False
    return False


# --------------------------------------------------------------- malformed keys

BAD_KEYS: dict[str, tuple[str, Any]] = {
    # (table: "s", "n" or "b"; the key: malformed, not always even a dict)
    "missing-key-attribute": ("s", {}),
    "other-attribute-only": ("s", {"other": {"S": "1"}}),
    "extra-key-attribute": ("s", {"pk": {"S": "1"}, "other": {"S": "1"}}),
    "three-attributes": ("s", {"pk": {"S": "1"}, "a": {"S": "1"}, "b": {"S": "1"}}),
    "number-for-string": ("s", {"pk": {"N": "1"}}),
    "string-for-number": ("n", {"pk": {"S": "1"}}),
    "binary-for-string": ("s", {"pk": {"B": b"1"}}),
    "string-for-binary": ("b", {"pk": {"S": "1"}}),
    "list-key": ("s", {"pk": {"L": [{"S": "1"}]}}),
    "null-key": ("s", {"pk": {"NULL": True}}),
    "two-type-tags": ("s", {"pk": {"S": "1", "N": "1"}}),
    "empty-string": ("s", {"pk": {"S": ""}}),
    "empty-binary": ("b", {"pk": {"B": b""}}),
    "nan": ("n", {"pk": {"N": "NaN"}}),
    "infinity": ("n", {"pk": {"N": "Infinity"}}),
    "minus-infinity": ("n", {"pk": {"N": "-Infinity"}}),
    "39-digits": ("n", {"pk": {"N": "1" * 39}}),
    "39-digits-fraction": ("n", {"pk": {"N": "1." + "1" * 38}}),
    "not-a-number": ("n", {"pk": {"N": "one"}}),
    "underscore-number": ("n", {"pk": {"N": "1_0"}}),
    "int-for-n": ("n", {"pk": {"N": 1}}),
    "float-for-n": ("n", {"pk": {"N": math.nan}}),
    "int-for-s": ("s", {"pk": {"S": 1}}),
    "bare-value": ("s", {"pk": "1"}),
    "key-not-a-dict": ("s", [("pk", {"S": "1"})]),
}


def table_of(corpus: Corpus, kind: str) -> str:
    return {"s": corpus.s, "n": corpus.n, "b": corpus.b}[kind]


def key_requests(table: str, key: Any) -> dict[str, dict[str, Any]]:
    item = {**key, "v": {"S": "written"}} if isinstance(key, dict) else key
    return {
        "get_item": {"TableName": table, "Key": key},
        "batch_get_item": {"RequestItems": {table: {"Keys": [key]}}},
        "put_item": {"TableName": table, "Item": item},
        "update_item": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"S": "written"}},
        },
        "delete_item": {"TableName": table, "Key": key},
        "batch_write_item": {"RequestItems": {table: [{"DeleteRequest": {"Key": key}}]}},
        "transact_write_items": {"TransactItems": [{"Delete": {"TableName": table, "Key": key}}]},
    }


OPERATIONS = [
    "get_item",
    "batch_get_item",
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
]


#: Cases where moto accepts what DynamoDB refuses, and answers by attribute order:
#: aiodax sends a batch's keys rebuilt from their canonical form (sorted attributes).
MOTO_ONLY_DIVERGENCES: set[tuple[str, str]] = set()


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_malformed_keys_get_dynamodbs_answer(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    corpus: Corpus,
    operation: str,
    request: pytest.FixtureRequest,
) -> None:
    # one test per operation, the whole corpus in it: three tables per test, not per key
    on_moto = request.node.callspec.params["endpoint"] == "moto"
    failures = []
    for name, (kind, key) in BAD_KEYS.items():
        if on_moto and (operation, name) in MOTO_ONLY_DIVERGENCES:
            continue
        sent = key_requests(table_of(corpus, kind), key)[operation]
        try:
            await assert_same_outcome(cached, instrumented, raw_client, corpus, operation, sent)
        except AssertionError as error:
            failures.append(f"{name}: {str(error).splitlines()[0]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "keys",
    [
        [{"pk": {"S": "1"}}, {"pk": {"S": "1"}}],
        [{"pk": {"N": "1"}}, {"pk": {"N": "1.0"}}],
    ],
    ids=["same-string", "same-number-spelled-twice"],
)
async def test_batch_get_with_duplicate_keys_gets_dynamodbs_answer(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    corpus: Corpus,
    keys: list[dict[str, Any]],
) -> None:
    table = corpus.s if "S" in keys[0]["pk"] else corpus.n
    for warm in (False, True):  # the key cached, then not
        await assert_same_outcome(
            cached,
            instrumented,
            raw_client,
            corpus,
            "batch_get_item",
            {"RequestItems": {table: {"Keys": keys}}},
        )
        if not warm:
            cached.cache.invalidate(table, keys[0])


async def test_a_number_key_is_one_item_however_written(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, corpus: Corpus
) -> None:
    for spelling in ("1", "1.0", "1E+0", "10E-1", "+1"):
        got = await cached.get_item(TableName=corpus.n, Key={"pk": {"N": spelling}})
        assert got["Item"] == N_SENTINEL, spelling
    assert instrumented.calls["get_item"] == 3  # the sentinels', nothing since


# --------------------------------------------------------------- oversized items


async def test_an_item_over_400_kb_is_refused_and_the_cached_value_kept(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    corpus: Corpus,
) -> None:
    big = {"pk": {"S": "1"}, "v": {"S": "x" * (410 * 1024)}}
    requests: dict[str, dict[str, Any]] = {
        "put_item": {"TableName": corpus.s, "Item": big},
        "batch_write_item": {"RequestItems": {corpus.s: [{"PutRequest": {"Item": big}}]}},
        "transact_write_items": {"TransactItems": [{"Put": {"TableName": corpus.s, "Item": big}}]},
        "update_item": {
            "TableName": corpus.s,
            "Key": {"pk": {"S": "1"}},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": big["v"]},
        },
    }
    for operation, request in requests.items():
        result = await assert_same_outcome(
            cached, instrumented, raw_client, corpus, operation, request
        )
        assert result[0] == "error", operation
        if operation == "put_item":
            assert result[2] == "ValidationException"
    consistent = await raw_client.get_item(
        TableName=corpus.s, Key={"pk": {"S": "1"}}, ConsistentRead=True
    )
    assert consistent["Item"] == S_SENTINEL


# --------------------------------------------------------------- deep nesting


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(levels):
        value = {"M": {"m": value}}
    return value


@pytest.mark.parametrize("levels", [20, 31, 40])
async def test_deeply_nested_values_get_dynamodbs_answer(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    corpus: Corpus,
    levels: int,
) -> None:
    results = []
    for name, client in (("direct", raw_client), ("cached", cached)):
        key = {"pk": {"S": f"deep-{name}"}}
        written = await outcome(
            client.put_item(TableName=corpus.s, Item={**key, "v": nested(levels)})
        )
        read = await outcome(cached.get_item(TableName=corpus.s, Key=key))
        consistent = await outcome(
            raw_client.get_item(TableName=corpus.s, Key=key, ConsistentRead=True)
        )
        assert read == consistent
        results.append((written, read))
    assert results[0][0] == results[1][0]
    # the same item either way (or the same absence)
    (_, direct_read), (_, cached_read) = results
    if direct_read[0] == "ok" and "Item" in direct_read[1]:
        assert cached_read[1]["Item"]["v"] == direct_read[1]["Item"]["v"]
    else:
        assert cached_read == direct_read


# --------------------------------------------------------------- unknown names


def unknown_requests(corpus: Corpus) -> dict[str, tuple[str, dict[str, Any]]]:
    query = {
        "TableName": corpus.s,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "1"}},
    }
    missing = "aiodax-test-no-such-table"
    return {
        "get-unknown-table": ("get_item", {"TableName": missing, "Key": {"pk": {"S": "1"}}}),
        "batch-get-unknown-table": (
            "batch_get_item",
            {"RequestItems": {missing: {"Keys": [{"pk": {"S": "1"}}]}}},
        ),
        "query-unknown-table": ("query", {**query, "TableName": missing}),
        "scan-unknown-table": ("scan", {"TableName": missing}),
        "put-unknown-table": ("put_item", {"TableName": missing, "Item": S_SENTINEL}),
        "delete-unknown-table": (
            "delete_item",
            {"TableName": missing, "Key": {"pk": {"S": "1"}}},
        ),
        "query-unknown-index": ("query", {**query, "IndexName": "no-such-index"}),
        "scan-unknown-index": ("scan", {"TableName": corpus.s, "IndexName": "no-such-index"}),
        # invalid expressions
        "key-condition-syntax": ("query", {**query, "KeyConditionExpression": "pk = = :p"}),
        "key-condition-non-key": ("query", {**query, "KeyConditionExpression": "v = :p"}),
        "key-condition-undefined-value": (
            "query",
            {**query, "KeyConditionExpression": "pk = :nope"},
        ),
        "query-projection-syntax": ("query", {**query, "ProjectionExpression": "v,,pk"}),
        "get-projection-syntax": (
            "get_item",
            {"TableName": corpus.s, "Key": {"pk": {"S": "1"}}, "ProjectionExpression": "v,,pk"},
        ),
        "get-projection-undefined-name": (
            "get_item",
            {"TableName": corpus.s, "Key": {"pk": {"S": "1"}}, "ProjectionExpression": "#nope"},
        ),
        "scan-filter-syntax": ("scan", {"TableName": corpus.s, "FilterExpression": "v = = v"}),
        "update-syntax": (
            "update_item",
            {
                "TableName": corpus.s,
                "Key": {"pk": {"S": "1"}},
                "UpdateExpression": "SET v = ",
            },
        ),
        "update-key-attribute": (
            "update_item",
            {
                "TableName": corpus.s,
                "Key": {"pk": {"S": "1"}},
                "UpdateExpression": "SET pk = :v",
                "ExpressionAttributeValues": {":v": {"S": "2"}},
            },
        ),
        "update-unknown-action": (
            "update_item",
            {
                "TableName": corpus.s,
                "Key": {"pk": {"S": "1"}},
                "UpdateExpression": "FROB v = :v",
                "ExpressionAttributeValues": {":v": {"S": "2"}},
            },
        ),
        "condition-syntax": (
            "put_item",
            {"TableName": corpus.s, "Item": S_SENTINEL, "ConditionExpression": "attribute_exists("},
        ),
    }


NAMES = [
    "get-unknown-table",
    "batch-get-unknown-table",
    "query-unknown-table",
    "scan-unknown-table",
    "put-unknown-table",
    "delete-unknown-table",
    "query-unknown-index",
    "scan-unknown-index",
    "key-condition-syntax",
    "key-condition-non-key",
    "key-condition-undefined-value",
    "query-projection-syntax",
    "get-projection-syntax",
    "get-projection-undefined-name",
    "scan-filter-syntax",
    "update-syntax",
    "update-key-attribute",
    "update-unknown-action",
    "condition-syntax",
]


async def test_unknown_names_and_invalid_expressions_get_dynamodbs_error(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    raw_client: DynamoDBClient,
    corpus: Corpus,
) -> None:
    requests = unknown_requests(corpus)
    assert sorted(requests) == sorted(NAMES)
    failures = []
    for name in NAMES:
        operation, request = requests[name]
        try:
            # moto accepts some of these (an undefined name in a projection); the
            # point is that aiodax answers as the server does
            await assert_same_outcome(cached, instrumented, raw_client, corpus, operation, request)
        except AssertionError as error:
            failures.append(f"{name}: {str(error).splitlines()[0]}")
    assert not failures, "\n".join(failures)


async def test_errors_are_not_cached(
    cached: aiodax.CachedClient, instrumented: InstrumentedClient, corpus: Corpus
) -> None:
    request = {"TableName": "aiodax-test-no-such-table", "Key": {"pk": {"S": "1"}}}
    for attempt in range(1, 3):
        with pytest.raises(ClientError):
            await cached.get_item(**request)
        assert instrumented.calls["get_item"] == 3 + attempt


# --------------------------------------------------------------- Cache options


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"item_ttl": -1}, aiodax.ConfigurationError, "item_ttl"),
        ({"query_ttl": math.nan}, aiodax.ConfigurationError, "query_ttl"),
        ({"negative_ttl": "5"}, aiodax.ConfigurationTypeError, "negative_ttl"),
        ({"max_bytes": 0}, aiodax.ConfigurationError, "max_bytes"),
        ({"max_bytes": 1.5}, aiodax.ConfigurationTypeError, "max_bytes"),
        ({"query_invalidation": "sometimes"}, aiodax.ConfigurationError, "query_invalidation"),
        ({"tables": {"t": {"item_ttl": 1}}}, aiodax.ConfigurationTypeError, "t"),
        ({"item_tll": 5}, TypeError, "item_tll"),
    ],
)
def test_invalid_cache_options_are_a_clear_error(
    options: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        aiodax.Cache(**options)

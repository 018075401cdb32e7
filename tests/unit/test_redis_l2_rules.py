"""The shared cache's pure parts: a copy's envelope survives its bytes, and anything that
is not a copy of exactly this load, read under the current generations and unexpired,
is no answer; the digests name what a request asks, not how it reads."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgpack
import pytest

from aiodax._tiers.redis.envelope import (
    MAX_TTL_MS,
    Envelope,
    decode,
    encode,
    is_answer,
    shared_answer,
    ttl_ms,
    with_metadata,
)
from aiodax._tiers.redis.keys import shared_request_digest

KEY = ("pk", "S", "a")
ITEM = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "b": {"B": b"\x00"}, "m": {"M": {"l": {"L": []}}}}
GENERATIONS = ("", "3", "7")
LIMIT = 64 * 1024


def envelope(**changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "site": "site",
        "operation": "get_item",
        "table": "t",
        "key": KEY,
        "request": "digest",
        "generations": GENERATIONS,
        "stored_at": 1_000_000,
        "ttl": 10_000,
        "consistent": False,
        "answer": {"Item": ITEM},
    }
    fields.update(changes)
    return Envelope(**fields)


def answers(copy: Envelope, **changes: Any) -> bool:
    load: dict[str, Any] = {
        "site": "site",
        "operation": "get_item",
        "table": "t",
        "key": KEY,
        "request": "digest",
        "generations": GENERATIONS,
    }
    load.update(changes)
    return copy.answers(**load)


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize(
    "copy",
    [
        envelope(),
        envelope(answer={}),  # a GetItem that found no item
        envelope(answer=None),  # a refusal
        envelope(consistent=True, key=("b", "B", b"\x00", "pk", "S", "a")),
        envelope(
            operation="query",
            key=None,
            answer={
                "Items": [ITEM],
                "Count": 1,
                "ScannedCount": 4,
                "LastEvaluatedKey": {"pk": {"S": "a"}},
            },
        ),
        envelope(operation="scan", key=None, answer={"Count": 3, "ScannedCount": 3}),
    ],
)
def test_a_copy_survives_its_bytes(copy: Envelope) -> None:
    assert decode(encode(copy), LIMIT) == copy


def test_a_copy_answers_exactly_its_load_under_unchanged_generations() -> None:
    copy = envelope()
    assert answers(copy)
    assert not answers(copy, site="other")
    assert not answers(copy, operation="query")
    assert not answers(copy, table="u")
    assert not answers(copy, key=("pk", "S", "b"))
    assert not answers(copy, request="another")
    assert not answers(copy, generations=("", "3", "8"))  # the item was dropped since
    assert not answers(copy, generations=("1", "3", "7"))  # so was everything


def test_a_copy_expires_at_its_ttl_counted_from_its_read_on_redis_s_clock() -> None:
    copy = envelope(stored_at=5_000, ttl=1_000)
    assert copy.remaining_ms(5_999) == 1
    assert copy.remaining_ms(6_000) == 0
    assert copy.age(5_250) == 0.25
    assert copy.age(4_000) == 0.0  # a clock behind the holder's estimate


def test_ttls_in_seconds_become_milliseconds_capped_and_zero_is_not_shared() -> None:
    assert ttl_ms(2.5) == 2_500
    assert ttl_ms(math.inf) == MAX_TTL_MS
    assert ttl_ms(10**9) == MAX_TTL_MS
    assert ttl_ms(0) == 0
    assert ttl_ms(-1) == 0


def test_a_copy_keeps_an_answer_s_data_and_gives_it_back_with_metadata() -> None:
    answer = {
        "Item": ITEM,
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5},
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200},
    }
    kept = shared_answer("get_item", answer)
    assert kept == {"Item": ITEM}
    given = with_metadata(kept)
    assert given["Item"] == ITEM
    assert given["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert given["ResponseMetadata"]["RequestId"] == ""
    assert "ConsumedCapacity" not in given
    page = {"Items": [], "Count": 0, "ScannedCount": 9, "LastEvaluatedKey": {"pk": {"S": "z"}}}
    assert shared_answer("scan", {**page, "ResponseMetadata": {}}) == page


# ---------------------------------------------------------------- rejections


def test_what_is_not_msgpack_or_not_bytes_is_no_copy() -> None:
    for data in (b"", b"\xc1", b"\x93garbage", "text", None, 42):
        assert decode(data, LIMIT) is None


def test_a_copy_bigger_than_the_limit_is_not_even_unpacked() -> None:
    data = encode(envelope())
    assert decode(data, len(data)) is not None
    assert decode(data, len(data) - 1) is None


def _fields(copy: Envelope) -> list[Any]:
    unpacked: list[Any] = msgpack.unpackb(encode(copy), raw=False)
    return unpacked


@pytest.mark.parametrize(
    ("at", "value"),
    [
        (0, 2),  # another version
        (1, b"site"),
        (2, "batch_get_item"),
        (3, ""),
        (3, "t" * 256),
        (4, ["pk", "S"]),
        (4, ["pk", "X", "a"]),
        (4, ["pk", "N", 1]),
        (5, 7),
        (6, ["", "3"]),
        (6, ["", 3, "7"]),
        (7, -1),
        (7, True),
        (7, 1.5),
        (8, 0),
        (8, MAX_TTL_MS + 1),
        (9, 1),
        (10, []),
    ],
)
def test_a_copy_with_any_field_out_of_shape_is_no_copy(at: int, value: object) -> None:
    fields = _fields(envelope())
    fields[at] = value
    assert decode(msgpack.packb(fields, use_bin_type=True), LIMIT) is None


def test_a_copy_of_another_length_is_no_copy() -> None:
    fields = _fields(envelope())
    for changed in (fields[:-1], [*fields, None]):
        assert decode(msgpack.packb(changed, use_bin_type=True), LIMIT) is None


def test_an_extension_type_is_no_copy() -> None:
    fields = _fields(envelope())
    fields[10] = {"Item": {"pk": msgpack.ExtType(1, b"x")}}
    assert decode(msgpack.packb(fields, use_bin_type=True), LIMIT) is None


@pytest.mark.parametrize(
    "item",
    [
        {"pk": {"S": 1}},
        {"pk": {"N": "one"}},
        {"pk": {"N": "1e200"}},  # beyond DynamoDB's numbers
        {"pk": {"B": "text"}},
        {"pk": {"BOOL": 1}},
        {"pk": {"NULL": False}},
        {"pk": {"S": "a", "N": "1"}},
        {"pk": {"X": "a"}},
        {"pk": "a"},
        {"": {"S": "a"}},
        {"pk": {"SS": []}},
        {"pk": {"SS": ["a", 1]}},
        {"pk": {"NS": ["x"]}},
        {"pk": {"BS": ["a"]}},
        {"pk": {"L": [{"S": "a"}, "b"]}},
        {"pk": {"M": {"x": {"Z": 1}}}},
    ],
)
def test_an_item_not_in_dynamodb_s_wire_format_is_no_answer(item: dict[str, Any]) -> None:
    assert not is_answer("get_item", {"Item": item}, None)
    assert not is_answer("query", {"Items": [item], "Count": 1}, None)


def test_every_wire_type_is_an_answer() -> None:
    item = {
        "s": {"S": ""},
        "n": {"N": "-0.5"},
        "b": {"B": b""},
        "t": {"BOOL": False},
        "z": {"NULL": True},
        "ss": {"SS": ["a"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"x"]},
        "l": {"L": [{"S": "a"}, {"M": {}}]},
    }
    assert is_answer("get_item", {"Item": item}, None)


def test_a_document_nested_deeper_than_dynamodb_allows_is_no_answer() -> None:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(31):
        value = {"L": [value]}
    assert is_answer("get_item", {"Item": {"deep": value}}, None)
    assert not is_answer("get_item", {"Item": {"deep": {"L": [value]}}}, None)


def test_an_item_whose_key_attributes_are_another_item_s_is_no_answer() -> None:
    assert is_answer("get_item", {"Item": {"pk": {"S": "a"}}}, KEY)
    assert is_answer("get_item", {"Item": {"v": {"S": "projected"}}}, KEY)
    assert not is_answer("get_item", {"Item": {"pk": {"S": "b"}}}, KEY)
    assert not is_answer("get_item", {"Item": {"pk": {"N": "1"}}}, KEY)
    number = ("id", "N", "1.5")
    assert is_answer("get_item", {"Item": {"id": {"N": "1.50"}}}, number)
    copy = dataclasses.replace(envelope(), answer={"Item": {"pk": {"S": "b"}}})
    assert decode(encode(copy), LIMIT) is None


@pytest.mark.parametrize(
    "answer",
    [
        {"Item": ITEM, "Extra": 1},
        {"Items": [ITEM]},  # a page's field in a GetItem's answer
        {"Item": []},
    ],
)
def test_a_get_item_answer_of_another_shape_is_no_answer(answer: dict[str, Any]) -> None:
    assert not is_answer("get_item", answer, KEY)


@pytest.mark.parametrize(
    "answer",
    [
        {"Items": [ITEM], "Count": 2},
        {"Items": {}, "Count": 0},
        {"Items": [], "Count": -1},
        {"Items": [], "Count": True},
        {"Items": [], "ScannedCount": "1"},
        {"Items": [], "LastEvaluatedKey": {}},
        {"Items": [], "LastEvaluatedKey": {"pk": "a"}},
        {"Item": ITEM},
    ],
)
def test_a_page_of_another_shape_is_no_answer(answer: dict[str, Any]) -> None:
    assert not is_answer("query", answer, None)
    assert not is_answer("scan", answer, None)


def test_an_answer_msgpack_cannot_carry_cannot_be_encoded() -> None:
    with pytest.raises(TypeError):
        encode(envelope(answer={"Item": {"pk": {"SS": {"a"}}}}))


# ------------------------------------------------------------------- digests


def test_how_a_request_reads_and_reports_does_not_change_its_name() -> None:
    request: dict[str, Any] = {"TableName": "t", "Key": {"pk": {"S": "a"}}}
    name = shared_request_digest("site", "get_item", request)
    for same in (
        {**request, "ConsistentRead": True},
        {**request, "ReturnConsumedCapacity": "TOTAL"},
        {"Key": {"pk": {"S": "a"}}, "TableName": "t"},
    ):
        assert shared_request_digest("site", "get_item", same) == name
    for other in (
        {**request, "ProjectionExpression": "v"},
        {**request, "Key": {"pk": {"S": "b"}}},
        {**request, "TableName": "u"},
    ):
        assert shared_request_digest("site", "get_item", other) != name
    assert shared_request_digest("other site", "get_item", request) != name
    assert shared_request_digest("site", "query", request) != name

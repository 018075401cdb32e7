"""The DynamoDB Streams rules: record → key, shard lineage, error → action, backoff."""

from __future__ import annotations

from typing import Any

import pytest

from aiodax._rules.streams import (
    BACKOFF_RANGE,
    Action,
    Shard,
    backoff,
    error_action,
    readable_shards,
    record_key,
    sequence_number,
    stream_table,
)


def _record(keys: Any, event: str = "MODIFY", **body: Any) -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"Keys": keys, "SequenceNumber": "0042", **body}}


@pytest.mark.parametrize("event", ["INSERT", "MODIFY", "REMOVE"])
def test_every_event_names_its_items_key(event: str) -> None:
    assert record_key(_record({"pk": {"S": "a"}}, event)) == ("pk", "S", "a")


@pytest.mark.parametrize(
    "images",
    [
        {},
        {"NewImage": {"pk": {"S": "a"}, "v": {"N": "2"}}},
        {"OldImage": {"pk": {"S": "a"}, "v": {"N": "1"}}},
        {"NewImage": {"pk": {"S": "a"}}, "OldImage": {"pk": {"S": "b"}}},
    ],
    ids=["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"],
)
def test_the_key_comes_from_keys_whatever_the_images_say(images: dict[str, Any]) -> None:
    assert record_key(_record({"pk": {"S": "a"}}, **images)) == ("pk", "S", "a")


def test_a_composite_key_is_canonical_whatever_the_order() -> None:
    # DynamoDB Local lists the sort key first; numbers are spelled one way.
    key = record_key(_record({"sk": {"N": "1.0"}, "pk": {"S": "a"}}))
    assert key == ("pk", "S", "a", "sk", "N", "1")


@pytest.mark.parametrize(
    "record",
    [{}, {"dynamodb": None}, {"dynamodb": {}}, _record({"pk": {"X": "a"}}), _record("pk")],
)
def test_a_record_without_readable_keys_has_none(record: dict[str, Any]) -> None:
    assert record_key(record) is None


def test_sequence_number() -> None:
    assert sequence_number(_record({"pk": {"S": "a"}})) == "0042"
    assert sequence_number({"dynamodb": {}}) is None


def test_shard_of_describe_streams_entry() -> None:
    shard = Shard.of(
        {
            "ShardId": "b",
            "ParentShardId": "a",
            "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"},
        }
    )
    assert shard == Shard("b", parent="a", closed=True)
    assert Shard.of({"ShardId": "a", "SequenceNumberRange": {}}) == Shard("a")


def test_a_child_waits_for_its_listed_parent() -> None:
    shards = [Shard("p", closed=True), Shard("c1", parent="p"), Shard("c2", parent="p")]
    assert readable_shards(shards, finished=set()) == ["p"]
    assert readable_shards(shards, finished={"p"}) == ["c1", "c2"]


def test_a_child_of_a_trimmed_parent_is_readable() -> None:
    assert readable_shards([Shard("c", parent="gone")], finished=set()) == ["c"]


def test_grandchildren_wait_for_their_own_parent_only() -> None:
    shards = [
        Shard("p", closed=True),
        Shard("c", parent="p", closed=True),
        Shard("g", parent="c"),
        Shard("other"),
    ]
    assert readable_shards(shards, finished=set()) == ["p", "other"]
    assert readable_shards(shards, finished={"p"}) == ["c", "other"]
    assert readable_shards(shards, finished={"p", "c"}) == ["g", "other"]


@pytest.mark.parametrize(
    ("code", "status", "action"),
    [
        ("ExpiredIteratorException", 400, Action.REFRESH),
        ("TrimmedDataAccessException", 400, Action.TRIMMED),
        ("LimitExceededException", 400, Action.BACKOFF),
        ("ProvisionedThroughputExceededException", 400, Action.BACKOFF),
        ("ThrottlingException", 400, Action.BACKOFF),
        ("InternalServerError", 500, Action.BACKOFF),
        ("SomethingNew", 503, Action.BACKOFF),
        ("ResourceNotFoundException", 400, Action.GONE),
        ("ValidationException", 400, Action.RAISE),
        ("AccessDeniedException", None, Action.RAISE),
    ],
)
def test_error_actions(code: str, status: int | None, action: Action) -> None:
    assert error_action(code, status) is action


def test_backoff_is_jittered_under_a_doubling_ceiling() -> None:
    low, high = BACKOFF_RANGE
    assert backoff(1, lambda: 0.0) == low
    assert backoff(1, lambda: 0.999) == low
    assert backoff(3, lambda: 0.5) == pytest.approx(low + (low * 4 - low) * 0.5)
    assert backoff(50, lambda: 0.999) <= high
    assert backoff(50, lambda: 0.999) > high * 0.99


@pytest.mark.parametrize(
    ("arn", "table"),
    [
        (
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-12-03T06:12:09.275",
            "orders",
        ),
        ("arn:aws:dynamodb:ddblocal:000000000000:table/a.b-c_d/stream/x", "a.b-c_d"),
        ("arn:aws:dynamodb:us-east-1:1:table/orders", None),
        ("arn:aws:kinesis:us-east-1:1:stream/orders", None),
        (None, None),
    ],
)
def test_stream_table(arn: object, table: str | None) -> None:
    assert stream_table(arn) == table

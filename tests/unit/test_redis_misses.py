"""The shared miss path's pure half (``_tiers.redis.misses``): which loads are shared
and under which keys, what a leased answer becomes in Redis, and the BatchGetItem
answers assembled key by key."""

from __future__ import annotations

from typing import Any

import pytest

from aiodax._tiers import Load
from aiodax._tiers.redis.envelope import decode
from aiodax._tiers.redis.keys import Keys
from aiodax._tiers.redis.misses import (
    Miss,
    batch_answer,
    consistent_request,
    fence_end,
    in_fence,
    miss_of,
    narrowed,
    shared_copy,
    split,
)

KEYS = Keys("ns")
GENERATIONS = ("", "1", "2")
LIMIT = 64 * 1024


def get(value: str, *, table: str | None = "t", **changes: Any) -> Load:
    request = {"TableName": table, "Key": {"pk": {"S": value}}}
    fields: dict[str, Any] = {
        "operation": "get_item",
        "request": request,
        "site": "site",
        "table": table,
        "key": ("pk", "S", value),
        "ttl": 60.0,
        "negative_ttl": 5.0,
    }
    fields.update(changes)
    return Load(**fields)


def miss(load: Load) -> Miss:
    found = miss_of(load, KEYS)
    assert found is not None
    return found


def test_an_item_s_copy_is_a_field_of_its_item_s_hash_and_a_page_s_a_key_of_its_own() -> None:
    item = miss(get("a"))
    assert item.target.keys[0].startswith(KEYS.prefix + "i:t:")
    assert item.target.field == item.target.digest
    assert item.target.lease == KEYS.lease(item.target.digest)
    page = miss(Load("query", {"TableName": "t", "KeyConditionExpression": "pk = :a"}, table="t"))
    assert page.target.keys[0].startswith(KEYS.prefix + "q:t:")
    assert (page.target.field, page.target.keys[-1]) == ("", KEYS.page_generation("t"))


def test_two_loads_get_two_lease_tokens_and_a_refresh_takes_no_copy() -> None:
    assert miss(get("a")).token != miss(get("a")).token
    assert (miss(get("a")).mode, miss(get("a", refresh=True)).mode) == ("read", "lease")


@pytest.mark.parametrize(
    "load",
    [
        get("a", table=None),  # a BatchGetItem as a whole
        get("a", key=None),  # a GetItem without its canonical key
        Load("put_item", {"TableName": "t"}, table="t"),  # not a read
        get("a", request={"TableName": "t", "Key": {"pk": {"S": object()}}}),  # not wire
    ],
)
def test_what_cannot_be_named_or_is_not_a_read_is_not_shared(load: Load) -> None:
    assert miss_of(load, KEYS) is None


def test_a_leased_answer_becomes_a_copy_with_its_ttl_from_the_read() -> None:
    found = miss(get("a", request={"TableName": "t", "Key": {"pk": {"S": "a"}}}))
    found.answer = {"Item": {"pk": {"S": "a"}}, "ResponseMetadata": {"RequestId": "r"}}
    copy, ttl, too_big = shared_copy(found, GENERATIONS, 1_000, LIMIT, 500)
    envelope = decode(copy, LIMIT)
    assert (ttl, too_big) == (60_000, False)
    assert envelope is not None
    assert (envelope.answer, envelope.stored_at, envelope.generations) == (
        {"Item": {"pk": {"S": "a"}}},
        1_000,
        GENERATIONS,
    )


def test_an_item_not_found_lives_the_negative_ttl() -> None:
    found = miss(get("a"))
    found.answer = {}
    assert shared_copy(found, GENERATIONS, 0, LIMIT, 500)[1] == 5_000


def test_an_answer_too_big_or_not_kept_becomes_a_refusal() -> None:
    big = miss(get("a"))
    big.answer = {"Item": {"pk": {"S": "a"}, "blob": {"S": "x" * LIMIT}}}
    copy, ttl, too_big = shared_copy(big, GENERATIONS, 0, LIMIT, 500)
    refusal = decode(copy, LIMIT)
    assert (too_big, ttl) == (True, 60_000)
    assert refusal is not None and refusal.answer is None
    not_kept = miss(get("a", ttl=0.0))
    not_kept.answer = {"Item": {"pk": {"S": "a"}}}
    copy, ttl, too_big = shared_copy(not_kept, GENERATIONS, 0, LIMIT, 500)
    kept = decode(copy, LIMIT)
    assert (too_big, ttl) == (False, 500)  # a lease's time: the others read at once
    assert kept is not None and kept.answer is None


BATCH = {
    "RequestItems": {
        "t": {"Keys": [{"pk": {"S": v}} for v in "abc"], "ProjectionExpression": "pk"},
        "u": {"Keys": [{"pk": {"S": "d"}}]},
    },
    "ReturnConsumedCapacity": "TOTAL",
}


def parts() -> list[Miss]:
    return [
        miss(
            get(
                v,
                table=t,
                request={"TableName": t, "Key": {"pk": {"S": v}}, "ProjectionExpression": "pk"},
            )
        )
        for t, v in (("t", "a"), ("t", "b"), ("t", "c"), ("u", "d"))
    ]


def test_a_narrowed_batch_asks_for_the_chosen_keys_only_with_their_tables_options() -> None:
    a, _, c, d = parts()
    assert narrowed(BATCH, [a, c, d]) == {
        "RequestItems": {
            "t": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "c"}}], "ProjectionExpression": "pk"},
            "u": {"Keys": [{"pk": {"S": "d"}}]},
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_a_batch_answer_is_split_into_found_absent_and_unprocessed_keys() -> None:
    a, b, c, d = parts()
    split(
        [a, b, c, d],
        {
            "Responses": {"t": [{"pk": {"S": "a"}}], "u": []},
            "UnprocessedKeys": {"t": {"Keys": [{"pk": {"S": "c"}}]}},
        },
    )
    assert [m.done for m in (a, b, c, d)] == [True] * 4
    assert [m.answer for m in (a, b, c, d)] == [{"Item": {"pk": {"S": "a"}}}, {}, None, {}]


def test_a_batch_answer_joins_the_copies_and_dynamodb_s_answers() -> None:
    a, b, c, d = parts()
    a.answer, a.from_copy = {"Item": {"pk": {"S": "a"}}}, True
    b.answer, b.from_copy = {}, True  # a copy of "no item"
    dynamodb = {
        "Responses": {"t": [{"pk": {"S": "c"}}]},
        "UnprocessedKeys": {"u": {"Keys": [{"pk": {"S": "d"}}]}},
        "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 0.5}],
        "ResponseMetadata": {"RequestId": "dynamodb"},
    }
    answer = batch_answer(BATCH, [a, b, c, d], [dynamodb])
    assert answer["Responses"] == {"t": [{"pk": {"S": "a"}}, {"pk": {"S": "c"}}], "u": []}
    assert answer["UnprocessedKeys"] == {"u": {"Keys": [{"pk": {"S": "d"}}]}}
    assert answer["ConsumedCapacity"] == [{"TableName": "t", "CapacityUnits": 0.5}]
    assert answer["ResponseMetadata"] == {"RequestId": "dynamodb"}


def test_a_batch_answered_by_copies_alone_has_no_capacity_and_nothing_unprocessed() -> None:
    found = parts()
    for each in found:
        each.answer, each.from_copy = {}, True
    answer = batch_answer(BATCH, found, [])
    assert answer["Responses"] == {"t": [], "u": []}
    assert answer["UnprocessedKeys"] == {}
    assert "ConsumedCapacity" not in answer


# ------------------------------------------------------------ another process's fence


def test_a_fence_ends_its_length_after_the_latest_generation_moved() -> None:
    assert fence_end(("", "4:1000", "9:1500"), 2.0) == 3500
    assert fence_end(("", "", ""), 2.0) is None  # nothing ever dropped
    assert fence_end(("3", "", "7"), 2.0) is None  # generations that say no time
    assert fence_end(("", "4:1000", ""), 0.0) is None  # the table does not fence


def test_a_lease_inside_a_fence_reads_consistently_and_its_copy_says_so() -> None:
    found = miss(get("a", fence=2.0))
    in_fence(found, ("", "", "9:1000"), now=2_500)
    assert (found.fenced_until, found.consistent) == (3_000, True)
    assert consistent_request(found) == {
        "TableName": "t",
        "Key": {"pk": {"S": "a"}},
        "ConsistentRead": True,
    }
    found.answer = {"Item": {"pk": {"S": "a"}}}
    copy, ttl, _ = shared_copy(found, ("", "", "9:1000"), 2_600, LIMIT, 500)
    envelope = decode(copy, LIMIT)
    assert envelope is not None and envelope.consistent
    assert ttl == 60_000  # a consistent read is good for its whole TTL


def test_a_lease_after_the_fence_or_already_consistent_is_left_alone() -> None:
    late = miss(get("a", fence=2.0))
    in_fence(late, ("", "", "9:1000"), now=3_000)
    assert (late.fenced_until, late.consistent, consistent_request(late)) == (None, False, None)
    request = {"TableName": "t", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}
    consistent = miss(get("a", fence=2.0, request=request))
    in_fence(consistent, ("", "", "9:1000"), now=1_500)
    assert (consistent.fenced_until, consistent.consistent) == (None, False)


def test_a_secondary_index_page_inside_a_fence_is_shared_until_the_fence_ends() -> None:
    page = miss(
        Load(
            "query",
            {"TableName": "t", "IndexName": "g"},
            table="t",
            ttl=60.0,
            fence=2.0,
            eventual_only=True,
        )
    )
    in_fence(page, ("", "", "9:1000"), now=1_500)
    assert (page.fenced_until, page.consistent) == (3_000, False)
    page.answer = {"Items": [], "Count": 0, "ScannedCount": 0}
    copy, ttl, _ = shared_copy(page, ("", "", "9:1000"), 1_600, LIMIT, 500)
    envelope = decode(copy, LIMIT)
    assert ttl == 1_400 and envelope is not None and not envelope.consistent
    assert shared_copy(page, ("", "", "9:1000"), 3_100, LIMIT, 500)[1] == 500  # a refusal


def test_a_batch_with_a_key_inside_a_fence_reads_that_table_consistently() -> None:
    a, b, _, d = parts()
    a.consistent = True
    request = narrowed(BATCH, [a, b, d])
    assert request["RequestItems"]["t"]["ConsistentRead"] is True
    assert "ConsistentRead" not in request["RequestItems"]["u"]
    assert (a.consistent, b.consistent, d.consistent) == (True, True, False)

"""Answer shapes (``_rules.responses``): capacity in each mode, batch metadata, pages."""

from __future__ import annotations

import pytest

from aiodax._rules.responses import (
    COALESCED_METADATA,
    HIT_METADATA,
    MISS_METADATA,
    add_answer_metadata,
    batch_metadata,
    capacity_mode,
    consumed_capacity,
    freeze_page,
    index_read,
    thaw_page,
)


@pytest.mark.parametrize(
    ("request_", "mode"),
    [
        ({}, None),
        ({"ReturnConsumedCapacity": "NONE"}, None),
        ({"ReturnConsumedCapacity": "TOTAL"}, "TOTAL"),
        ({"ReturnConsumedCapacity": "INDEXES"}, "INDEXES"),
    ],
)
def test_capacity_mode(request_: dict[str, str], mode: str | None) -> None:
    assert capacity_mode(request_) == mode


def test_total_is_the_table_s_units_alone() -> None:
    assert consumed_capacity("TOTAL", "t", 0.5) == {"TableName": "t", "CapacityUnits": 0.5}
    assert consumed_capacity("TOTAL", "t", 0.5, ("GlobalSecondaryIndexes", "g")) == {
        "TableName": "t",
        "CapacityUnits": 0.5,
    }


def test_indexes_breaks_the_units_down_as_dynamodb_does() -> None:
    assert consumed_capacity("INDEXES", "t") == {
        "TableName": "t",
        "CapacityUnits": 0.0,
        "Table": {"CapacityUnits": 0.0},
    }
    assert consumed_capacity("INDEXES", "t", 1.5, ("LocalSecondaryIndexes", "l")) == {
        "TableName": "t",
        "CapacityUnits": 1.5,
        "Table": {"CapacityUnits": 0.0},
        "LocalSecondaryIndexes": {"l": {"CapacityUnits": 1.5}},
    }


def test_an_index_is_local_only_when_the_schema_says_so() -> None:
    assert index_read(None, frozenset({"l"})) is None
    assert index_read("l", frozenset({"l"})) == ("LocalSecondaryIndexes", "l")
    assert index_read("g", frozenset({"l"})) == ("GlobalSecondaryIndexes", "g")


def test_batch_metadata_is_dynamodb_s_when_the_call_sent_its_own_request() -> None:
    sent = {"RequestId": "r1", "HTTPStatusCode": 200, "HTTPHeaders": {"x": "y"}}
    metadata = batch_metadata(True, sent, joined=True)
    assert metadata == {**sent, "CacheStatus": "miss"}
    assert "CacheStatus" not in sent  # a copy
    assert batch_metadata(True, None, joined=False) is MISS_METADATA
    assert batch_metadata(False, None, joined=True) is COALESCED_METADATA
    assert batch_metadata(False, None, joined=False) is HIT_METADATA


def test_only_the_leader_gets_the_capacity_dynamodb_reported() -> None:
    answer = {
        "ResponseMetadata": {"RequestId": "r1"},
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5},
    }
    unspent = consumed_capacity("TOTAL", "t")
    leader: dict[str, object] = {}
    joiner: dict[str, object] = {}
    add_answer_metadata(leader, answer, True, unspent)
    add_answer_metadata(joiner, answer, False, unspent)
    assert leader["ConsumedCapacity"] == answer["ConsumedCapacity"]
    assert leader["ConsumedCapacity"] is not answer["ConsumedCapacity"]
    assert joiner["ConsumedCapacity"] == unspent
    assert [r["ResponseMetadata"]["CacheStatus"] for r in (leader, joiner)] == [  # type: ignore[index]
        "miss",
        "coalesced",
    ]
    silent: dict[str, object] = {}
    add_answer_metadata(silent, answer, True, None)
    assert "ConsumedCapacity" not in silent


def test_a_thawed_page_s_last_key_is_plain_and_its_items_values_shared() -> None:
    answer = {
        "Items": [{"pk": {"S": "a"}}],
        "Count": 1,
        "LastEvaluatedKey": {"pk": {"S": "a"}},
    }
    page = freeze_page(answer)
    first = thaw_page(page)
    first["LastEvaluatedKey"]["pk"]["S"] = "edited"
    assert thaw_page(page)["LastEvaluatedKey"] == {"pk": {"S": "a"}}
    with pytest.raises(TypeError):
        first["Items"][0]["pk"]["S"] = "edited"

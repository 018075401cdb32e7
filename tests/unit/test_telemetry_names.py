"""``_rules.telemetry``: the names and attributes both integrations report."""

from __future__ import annotations

import pytest

from aiodax._rules.telemetry import (
    DESCRIPTIONS,
    metric_name,
    operation_name,
    request_tables,
    snake_case,
    span_attributes,
)
from aiodax._stats import TABLE_COUNTERS


@pytest.mark.parametrize(
    ("stat", "name"),
    [
        ("ItemCacheHits", "item_cache_hits"),
        ("NegativeCacheHits", "negative_cache_hits"),
        ("CoalescedRequests", "coalesced_requests"),
        ("L2Hits", "l2_hits"),
        ("BusBadMessages", "bus_bad_messages"),
        ("CurrentSize", "size_bytes"),
        ("EvictedSize", "evicted_bytes"),
        ("EvictedCount", "evicted_entries"),
        ("InFlight", "loads_in_flight"),
    ],
)
def test_metric_names_are_prometheus_snake_case(stat: str, name: str) -> None:
    assert metric_name(stat) == name


def test_every_counter_of_a_table_is_described() -> None:
    assert set(TABLE_COUNTERS.values()) <= set(DESCRIPTIONS)
    assert snake_case("ABCTable") == "abc_table"


def test_operation_names_are_dynamodbs() -> None:
    assert operation_name("get_item") == "GetItem"
    assert operation_name("batch_get_item") == "BatchGetItem"
    assert operation_name("transact_write_items") == "TransactWriteItems"


def test_the_tables_a_request_names() -> None:
    assert request_tables({"TableName": "orders"}) == ("orders",)
    assert request_tables({"RequestItems": {"b": {}, "a": {}}}) == ("a", "b")
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "b", "Item": {}}},
            {"Update": {"TableName": "a", "Key": {}}},
            {"ConditionCheck": {"TableName": "a", "Key": {}}},
        ]
    }
    assert request_tables(transaction) == ("a", "b")
    assert request_tables({"Statement": "SELECT * FROM t"}) == ()


def test_span_attributes_follow_the_semantic_conventions() -> None:
    request = {
        "TableName": "orders",
        "IndexName": "by-date",
        "Limit": 10,
        "ConsistentRead": False,
        "ProjectionExpression": "pk, total",
        "KeyConditionExpression": "pk = :p",
    }
    answer = {
        "Count": 3,
        "ScannedCount": 5,
        "ConsumedCapacity": {"TableName": "orders", "CapacityUnits": 0.5},
        "ResponseMetadata": {"RequestId": "R1"},
    }
    attributes = span_attributes("query", request, answer)
    assert attributes == {
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": "Query",
        "db.system": "dynamodb",
        "db.system.name": "aws.dynamodb",
        "db.operation.name": "Query",
        "db.collection.name": "orders",
        "aws.dynamodb.table_names": ["orders"],
        "aws.dynamodb.index_name": "by-date",
        "aws.dynamodb.limit": 10,
        "aws.dynamodb.consistent_read": False,
        "aws.dynamodb.projection": "pk, total",
        "aws.dynamodb.count": 3,
        "aws.dynamodb.scanned_count": 5,
        "aws.dynamodb.consumed_capacity": ['{"CapacityUnits": 0.5, "TableName": "orders"}'],
        "aws.request_id": "R1",
    }


def test_a_request_of_several_tables_names_no_one_collection() -> None:
    attributes = span_attributes("batch_get_item", {"RequestItems": {"a": {}, "b": {}}}, None)
    assert attributes["aws.dynamodb.table_names"] == ["a", "b"]
    assert "db.collection.name" not in attributes

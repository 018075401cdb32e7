"""Which partition a Query's key condition pins, and malformed conditions that pin none."""

from __future__ import annotations

from typing import Any

import pytest

import aiodax
from aiodax._rules.schema import KeySchema, query_partition
from tests.unit.fakes import METADATA, FakeBackend


class QueryingBackend(FakeBackend):
    async def query(self, **request: Any) -> dict[str, Any]:
        self._record("query", request)
        return {"Items": [], "Count": 0, "ScannedCount": 0, "ResponseMetadata": dict(METADATA)}


@pytest.mark.parametrize(
    ("expression", "names"),
    [("#p = :v", ["#p"]), ("#p = :v", "#p"), ("pk = #q", {"#q": 5})],
    ids=repr,
)
def test_a_key_condition_with_malformed_attribute_names_pins_no_partition(
    expression: str, names: object
) -> None:
    request = {
        "KeyConditionExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":v": {"S": "a"}},
    }
    assert query_partition(request, KeySchema("pk", None)) is None


async def test_a_query_with_malformed_attribute_names_goes_to_dynamodb_to_judge() -> None:
    fake = QueryingBackend()
    async with aiodax.Cache() as cache:
        client = cache.wrap(fake.client())
        await client.query(
            TableName="t",
            KeyConditionExpression="#p = :v",
            ExpressionAttributeNames=["#p"],
            ExpressionAttributeValues={":v": {"S": "a"}},
        )
    assert fake.calls["query"] == 1


@pytest.mark.parametrize(
    ("request_", "partition"),
    [
        ({"KeyConditionExpression": "pk = :v"}, ("pk", "S", "a")),
        ({"KeyConditionExpression": ":v = pk AND sk > :w"}, ("pk", "S", "a")),
        (
            {"KeyConditionExpression": "#p = :v", "ExpressionAttributeNames": {"#p": "pk"}},
            ("pk", "S", "a"),
        ),
        ({"KeyConditionExpression": "sk = :v"}, None),
        (
            {
                "KeyConditions": {
                    "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}
                }
            },
            ("pk", "S", "a"),
        ),
        (
            {
                "KeyConditions": {
                    "pk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "a"}]}
                }
            },
            None,
        ),
    ],
    ids=repr,
)
def test_the_partition_a_key_condition_pins(request_: dict[str, Any], partition: object) -> None:
    request = {"ExpressionAttributeValues": {":v": {"S": "a"}, ":w": {"S": "b"}}, **request_}
    assert query_partition(request, KeySchema("pk", "sk")) == partition

"""Key schemas, asked of DynamoDB once per table, and the partition a Query reads.

Writes need a table's key schema to find an item's key (a ``PutItem`` carries a
whole item) and its partition (to invalidate cached Query pages), and to tell a key
of other attributes (which DynamoDB refuses) from the item's.  BatchGetItem needs
it for the last reason; GetItem never does: a key of other attributes is never
stored, since no fill or write stores under it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ._backend import Backend
from ._flight import Flights
from ._wire import KeySchema, key_part


class TableSchema:
    __slots__ = ("indexes", "key")

    def __init__(self, key: KeySchema, indexes: Mapping[str, KeySchema]) -> None:
        self.key = key
        self.indexes = dict(indexes)

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableSchema:
        indexes = {
            index["IndexName"]: _key_schema(index["KeySchema"])
            for group in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            for index in table.get(group, ())
        }
        return cls(_key_schema(table["KeySchema"]), indexes)


def _key_schema(elements: Any) -> KeySchema:
    hash_key = next(e["AttributeName"] for e in elements if e["KeyType"] == "HASH")
    range_key = next((e["AttributeName"] for e in elements if e["KeyType"] == "RANGE"), None)
    return KeySchema(hash_key, range_key)


class Schemas:
    """Key schemas by table name: one ``DescribeTable`` per table, coalesced."""

    __slots__ = ("_call", "_flights", "_known")

    def __init__(self, call: Callable[[Backend, str, Mapping[str, Any]], Awaitable[Any]]) -> None:
        #: how to reach DynamoDB (the engine's ``call``, which counts requests)
        self._call = call
        self._known: dict[str, TableSchema] = {}
        self._flights: Flights[str, TableSchema] = Flights()

    def known(self, table: str) -> TableSchema | None:
        return self._known.get(table)

    async def get(self, table: str, backend: Backend) -> TableSchema | None:
        """The table's schema, or ``None`` when DynamoDB would not describe it.

        A failure is not remembered: the next write asks again.
        """
        found = self._known.get(table)
        if found is not None:
            return found
        flight = self._flights.get(table)
        if flight is None:

            async def describe() -> dict[str, TableSchema]:
                response = await self._call(backend, "describe_table", {"TableName": table})
                return {table: TableSchema.from_description(response["Table"])}

            flight = self._flights.start((table,), describe, self._known.__setitem__)
        try:
            return (await self._flights.wait((flight,)))[table]
        except (ClientError, BotoCoreError, KeyError, StopIteration):
            return None

    def forget(self, table: str) -> None:
        self._known.pop(table, None)
        self._flights.detach(table)

    async def aclose(self) -> None:
        await self._flights.aclose()


# ---------------------------------------------------------------------------
# Which partition does a Query read?  Only a base-table Query whose key condition
# pins the partition key to one value gets a partition; anything else (a Scan, an
# index Query, an expression this parser does not follow) is filed table-wide,
# where every write to the table invalidates it.  Misreading can only cost hits.

_TOKEN: Final = re.compile(r"\s*(#\w+|:\w+|[A-Za-z_]\w*|<>|<=|>=|\S)")


def query_partition(request: Mapping[str, Any], schema: TableSchema) -> tuple[str, str, Any] | None:
    hash_key = schema.key.hash_key
    legacy = request.get("KeyConditions")
    if legacy is not None:
        condition = legacy.get(hash_key) if isinstance(legacy, Mapping) else None
        if not isinstance(condition, Mapping) or condition.get("ComparisonOperator") != "EQ":
            return None
        values = condition.get("AttributeValueList")
        if not isinstance(values, list) or len(values) != 1:
            return None
        return key_part(hash_key, values[0])
    expression = request.get("KeyConditionExpression")
    if not isinstance(expression, str):
        return None
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    tokens = [names.get(t, t) if t.startswith("#") else t for t in _TOKEN.findall(expression)]
    found = []
    for index in range(1, len(tokens) - 1):
        if tokens[index] != "=":
            continue
        left, right = tokens[index - 1], tokens[index + 1]
        if left == hash_key and right.startswith(":"):
            found.append(right)
        elif right == hash_key and left.startswith(":"):
            found.append(left)
    if len(found) != 1 or not isinstance(values, Mapping):
        return None
    return key_part(hash_key, values.get(found[0]))

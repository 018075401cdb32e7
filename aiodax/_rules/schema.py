"""Key schemas, and which partition a Query reads.

Writes need a table's key schema to find an item's key (a ``PutItem`` carries a
whole item) and its partition (to drop the Query pages it makes stale), and to tell
a key of other attributes (which DynamoDB refuses) from the item's.  The schema
comes from ``DescribeTable`` (``_engine.schemas`` asks once per table); reading it
and everything computed from it here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from .wire import ItemKey, KeyPart, canonical_key, key_part


class KeySchema:
    """A table's key attribute names, and its local secondary indexes' names."""

    __slots__ = ("hash_key", "local_indexes", "names", "range_key", "sorted_names")

    def __init__(
        self, hash_key: str, range_key: str | None, local_indexes: frozenset[str] = frozenset()
    ) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        #: indexes DynamoDB reads consistently (a GSI it cannot)
        self.local_indexes = local_indexes
        self.names: tuple[str, ...] = (hash_key,) if range_key is None else (hash_key, range_key)
        #: the names in the order a canonical key holds them
        self.sorted_names: tuple[str, ...] = tuple(sorted(self.names))

    def __repr__(self) -> str:
        return f"KeySchema(hash_key={self.hash_key!r}, range_key={self.range_key!r})"

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> KeySchema:
        """The key schema of a ``DescribeTable`` response's ``Table``."""
        elements = table["KeySchema"]
        hash_key = next(e["AttributeName"] for e in elements if e["KeyType"] == "HASH")
        range_key = next((e["AttributeName"] for e in elements if e["KeyType"] == "RANGE"), None)
        local = frozenset(i["IndexName"] for i in table.get("LocalSecondaryIndexes") or ())
        return cls(hash_key, range_key, local)

    def key_of(self, item: Mapping[str, Any]) -> ItemKey | None:
        """The canonical key of a full item, or ``None`` when it lacks a key attribute."""
        return canonical_key({name: item.get(name) for name in self.names})

    def names_key(self, key: ItemKey) -> bool:
        """Whether canonical ``key`` has exactly this schema's attributes.

        DynamoDB refuses a key of other attributes; a laxer server may apply it to
        some item, which no cached entry is filed under.
        """
        return key[0::3] == self.sorted_names

    def partition_of(self, key: ItemKey) -> KeyPart | None:
        for index in range(0, len(key), 3):
            if key[index] == self.hash_key:
                return key[index : index + 3]
        return None


# Which partition does a Query read?  Only a base-table Query whose key condition
# pins the partition key to one value gets a partition; anything else (a Scan, an
# index Query, an expression this parser does not follow) is filed table-wide,
# where every write to the table drops it.  Misreading can only cost hits.

_TOKEN: Final = re.compile(r"\s*(#\w+|:\w+|[A-Za-z_]\w*|<>|<=|>=|\S)")


def query_partition(request: Mapping[str, Any], schema: KeySchema) -> KeyPart | None:
    """The partition (canonical key part) a base-table Query's key condition pins."""
    hash_key = schema.hash_key
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
    if not isinstance(names, Mapping) or not isinstance(values, Mapping):
        return None  # malformed: DynamoDB (or botocore) says so
    tokens = []
    for token in _TOKEN.findall(expression):
        if token.startswith("#"):
            token = names.get(token, token)
            if type(token) is not str:
                return None
        tokens.append(token)
    found = []
    for index in range(1, len(tokens) - 1):
        if tokens[index] != "=":
            continue
        left, right = tokens[index - 1], tokens[index + 1]
        if left == hash_key and right.startswith(":"):
            found.append(right)
        elif right == hash_key and left.startswith(":"):
            found.append(left)
    if len(found) != 1:
        return None
    return key_part(hash_key, values.get(found[0]))

"""The key shapes users have, and a flat ten-attribute item of each, for the hit benchmarks.

DynamoDB's commonest design is a string partition key with a sort key; numbers
(ids, timestamps) and binary keys (hashes, UUID bytes) come next.  Each shape
gives its key in both of aiodax's forms (wire for the client, Python values for the
resource) and the values async-lru's decorated function takes as its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shape:
    name: str
    #: (attribute name, DynamoDB type): the partition key first
    attributes: tuple[tuple[str, str], ...]

    def key_schema(self) -> list[Any]:
        kinds = ("HASH", "RANGE")
        return [
            {"AttributeName": name, "KeyType": kind}
            for (name, _), kind in zip(self.attributes, kinds, strict=False)
        ]

    def attribute_definitions(self) -> list[Any]:
        return [{"AttributeName": name, "AttributeType": kind} for name, kind in self.attributes]

    def values(self, i: int) -> tuple[Any, ...]:
        """The key's values as Python values (async-lru's arguments)."""
        return tuple(
            _value(kind, i, position) for position, (_, kind) in enumerate(self.attributes)
        )

    def python_key(self, i: int) -> dict[str, Any]:
        return {
            name: value for (name, _), value in zip(self.attributes, self.values(i), strict=True)
        }

    def wire_key(self, i: int) -> dict[str, Any]:
        return {
            name: _wire(kind, value)
            for (name, kind), value in zip(self.attributes, self.values(i), strict=True)
        }

    def wire_item(self, i: int) -> dict[str, Any]:
        """A flat item: the key and scalar attributes, ten in all."""
        item = self.wire_key(i)
        for n in range(10 - len(item) - 2):
            item[f"attribute{n}"] = {"S": f"value {n} of item {i}"}
        item["balance"] = {"N": f"{i * 3.25:.2f}"}
        item["verified"] = {"BOOL": i % 2 == 0}
        return item


def _value(kind: str, i: int, position: int) -> Any:
    if kind == "S":
        return f"user#{i:08d}" if position == 0 else f"order#{i:06d}"
    if kind == "N":
        return 1_700_000_000 + i if position else 10_000 + i
    return f"hash-{i:08d}".encode()


def _wire(kind: str, value: Any) -> dict[str, Any]:
    return {kind: str(value) if kind == "N" else value}


SHAPES = (
    Shape("string partition key", (("pk", "S"),)),
    Shape("string partition + string sort key", (("pk", "S"), ("sk", "S"))),
    Shape("number partition key", (("id", "N"),)),
    Shape("string partition + number sort key", (("pk", "S"), ("at", "N"))),
    Shape("binary partition key", (("digest", "B"),)),
)

"""The shared copies in Redis: what one process's answer becomes for the others, and
the checks that make anything else a miss.  Pure: no I/O.

A copy is an *envelope*, versioned msgpack (never pickle), bounded by
``RedisTier.max_value_bytes``::

    [1, site, operation, table, key, request, generations, stored_at, ttl,
     consistent, answer]

- ``site``, ``operation``, ``table``, ``key`` (the GetItem's item key, else
  ``None``) and ``request`` (``keys.shared_request_digest``): the load it answers;
  a copy answers nothing else, whatever key it was found under;
- ``generations``: the values of ``g:all``, ``g:t:<table>`` and ``g:i:...`` (an
  item) or ``g:q:<table>`` (a page) when the copy's read went out (``keys``): a
  copy whose generations moved since was read before a drop, and is a miss;
- ``stored_at``: when DynamoDB gave the answer, in ms of *Redis's* clock, so that
  hosts' clocks do not matter; ``ttl``: how long it may serve from then (ms);
- ``consistent``: whether it was read with ``ConsistentRead`` (only such a copy
  answers a fenced load, see ``_tiers.Load``);
- ``answer``: the wire-format answer's data (``Item``; ``Items``, ``Count``,
  ``ScannedCount``, ``LastEvaluatedKey``), without DynamoDB's metadata or capacity;
  ``None`` marks a *refusal*: the answer was not shared (too big, not kept, not
  encodable), and whoever finds it asks DynamoDB without waiting for a lease.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import msgpack

from ..._rules.wire import ItemKey, key_part, number_value

VERSION: Final = 1
#: The reads a copy may answer, and the answer's fields each keeps.
FIELDS: Final = {
    "get_item": ("Item",),
    "query": ("Items", "Count", "ScannedCount", "LastEvaluatedKey"),
    "scan": ("Items", "Count", "ScannedCount", "LastEvaluatedKey"),
}
#: The longest a copy lives in Redis (ms), whatever the TTL: well inside the bus's
#: generation lifetime (``bus.GENERATION_LIFETIME_MS``, a day), so that a drop's
#: generation outlives every copy it voids.
MAX_TTL_MS: Final = 12 * 3600 * 1000
#: DynamoDB nests documents at most 32 levels deep.
_MAX_DEPTH: Final = 32
#: What every copy records of the three generations it was read under.
Generations: TypeAlias = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Envelope:
    """One shared copy; see the module docstring."""

    site: str
    operation: str
    table: str
    key: ItemKey | None
    request: str
    generations: Generations
    stored_at: int
    ttl: int
    consistent: bool
    answer: dict[str, Any] | None

    def answers(
        self,
        site: str,
        operation: str,
        table: str,
        key: ItemKey | None,
        request: str,
        generations: Generations,
    ) -> bool:
        """Whether this copy answers exactly that load, read under ``generations``
        (the current ones): nothing dropped since it was read."""
        return (
            self.request == request
            and self.generations == generations
            and self.operation == operation
            and self.table == table
            and self.site == site
            and self.key == key
        )

    def remaining_ms(self, now_ms: int) -> int:
        """How long the copy may still serve at ``now_ms`` (Redis's clock); ``<= 0``:
        expired."""
        return self.stored_at + self.ttl - now_ms

    def age(self, now_ms: int) -> float:
        """Seconds since DynamoDB gave the answer, at ``now_ms``."""
        return max(0, now_ms - self.stored_at) / 1000


def ttl_ms(seconds: float) -> int:
    """A TTL in seconds as a copy's (ms, at most ``MAX_TTL_MS``; ``0``: not shared)."""
    if not seconds > 0:
        return 0
    return MAX_TTL_MS if math.isinf(seconds) else min(MAX_TTL_MS, int(seconds * 1000))


def shared_answer(operation: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    """What a copy keeps of DynamoDB's ``answer`` to ``operation``: its data only."""
    return {name: answer[name] for name in FIELDS[operation] if name in answer}


def with_metadata(answer: Mapping[str, Any]) -> dict[str, Any]:
    """A copy's answer as a caller gets it: with the metadata of an answer that did
    not come from DynamoDB here (no request id, no retries), as the cache's hits."""
    return {
        **answer,
        "ResponseMetadata": {
            "RequestId": "",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }


def encode(envelope: Envelope) -> bytes:
    """``envelope`` as stored.  Raises ``TypeError`` (or ``ValueError``) for an answer
    msgpack cannot carry: such an answer is not shared."""
    key = None if envelope.key is None else list(envelope.key)
    packed: bytes = msgpack.packb(
        [
            VERSION,
            envelope.site,
            envelope.operation,
            envelope.table,
            key,
            envelope.request,
            list(envelope.generations),
            envelope.stored_at,
            envelope.ttl,
            envelope.consistent,
            envelope.answer,
        ],
        use_bin_type=True,
    )
    return packed


def decode(data: object, max_bytes: int) -> Envelope | None:
    """The envelope ``data`` holds, or ``None``: not one (corrupt, foreign, another
    version, bigger than ``max_bytes``, or an answer of the wrong shape)."""
    if not isinstance(data, bytes) or len(data) > max_bytes:
        return None
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(fields, list) or len(fields) != 11 or fields[0] != VERSION:
        return None
    _, site, operation, table, key, request, generations, stored_at, ttl, consistent, answer = (
        fields
    )
    if not (
        isinstance(site, str)
        and operation in FIELDS
        and isinstance(table, str)
        and 0 < len(table) <= 255
        and (key is None or _is_key(key))
        and isinstance(request, str)
        and isinstance(generations, list)
        and len(generations) == 3
        and all(isinstance(generation, str) for generation in generations)
        and _is_count(stored_at)
        and _is_count(ttl)
        and 0 < ttl <= MAX_TTL_MS
        and isinstance(consistent, bool)
    ):
        return None
    item_key = None if key is None else tuple(key)
    if answer is not None and not is_answer(operation, answer, item_key):
        return None
    return Envelope(
        site,
        operation,
        table,
        item_key,
        request,
        (generations[0], generations[1], generations[2]),
        stored_at,
        ttl,
        consistent,
        answer,
    )


def is_answer(operation: str, answer: object, key: ItemKey | None) -> bool:
    """Whether ``answer`` is the data of a wire-format answer to ``operation`` (of the
    item ``key``, for a GetItem: the key attributes it holds are ``key``'s)."""
    if not isinstance(answer, dict) or not set(answer) <= set(FIELDS.get(operation, ())):
        return False
    if operation == "get_item":
        item = answer.get("Item")
        return item is None or (_is_item(item) and _holds_key(item, key))
    items = answer.get("Items", [])
    if not isinstance(items, list) or not all(_is_item(item) for item in items):
        return False
    count = answer.get("Count", len(items))
    if not _is_count(count) or not _is_count(answer.get("ScannedCount", 0)):
        return False
    if "Items" in answer and count != len(items):
        return False
    last = answer.get("LastEvaluatedKey")
    return last is None or (_is_item(last) and bool(last))


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _is_key(key: object) -> bool:
    """An ``ItemKey``'s shape (``_rules.wire``): name, type, value per attribute."""
    if not isinstance(key, list) or len(key) not in (3, 6):
        return False
    kinds = {"S": str, "N": str, "B": bytes}
    return all(
        isinstance(key[at], str) and kinds.get(key[at + 1]) is type(key[at + 2])
        for at in range(0, len(key), 3)
    )


def _holds_key(item: Mapping[str, Any], key: ItemKey | None) -> bool:
    if key is None:
        return True
    for at in range(0, len(key), 3):
        name = key[at]
        if name in item and key_part(name, item[name]) != key[at : at + 3]:
            return False
    return True


def _is_item(item: object) -> bool:
    return isinstance(item, dict) and all(
        isinstance(name, str) and name and _is_value(value, 1) for name, value in item.items()
    )


def _is_value(value: object, depth: int) -> bool:
    """Whether ``value`` is one wire-format attribute value (``{"S": "x"}`` ...)."""
    if not isinstance(value, dict) or len(value) != 1 or depth > _MAX_DEPTH:
        return False
    ((kind, raw),) = value.items()
    if kind == "S":
        return isinstance(raw, str)
    if kind == "N":
        return number_value(raw) is not None
    if kind == "B":
        return isinstance(raw, bytes)
    if kind == "BOOL":
        return isinstance(raw, bool)
    if kind == "NULL":
        return raw is True
    if kind == "L":
        return isinstance(raw, list) and all(_is_value(part, depth + 1) for part in raw)
    if kind == "M":
        return isinstance(raw, dict) and all(
            isinstance(name, str) and _is_value(part, depth + 1) for name, part in raw.items()
        )
    if kind in ("SS", "NS", "BS"):
        if not isinstance(raw, list) or not raw:
            return False
        if kind == "SS":
            return all(isinstance(part, str) for part in raw)
        if kind == "NS":
            return all(number_value(part) is not None for part in raw)
        return all(isinstance(part, bytes) for part in raw)
    return False

"""The shapes of answers: metadata of hits and misses, capacity, cached pages.

A hit is answered with shared, read-only metadata; a miss's caller gets DynamoDB's
own, marked ``"miss"``, and a caller that joined someone else's request gets a copy
marked ``"coalesced"`` and no capacity (it spent none).  A read the cache does not
serve (``ConsistentRead``, a shape it does not cache) is sent as it came and its
answer marked ``"bypass"``.  ``ConsumedCapacity`` has DynamoDB's shape for the mode
asked (``TOTAL``: the table's units; ``INDEXES``: also ``Table`` and the index read),
with zeros where nothing was consumed.  What a caller may edit (``LastEvaluatedKey``)
is its own plain copy; item attribute values stay shared and read-only, which is
what makes a hit cheap.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from .wire import ReadOnlyDict, freeze

#: ``ReturnConsumedCapacity`` values that ask for a ``ConsumedCapacity`` answer.
CAPACITY_MODES: Final = frozenset({"TOTAL", "INDEXES"})

#: ``ResponseMetadata`` of an answer from the cache: shared, hence read-only.
#: ``CacheStatus`` is "hit" here and "miss" or "coalesced" on DynamoDB's answers.
HIT_METADATA: Final = ReadOnlyDict(
    {
        "RequestId": "",
        "HTTPStatusCode": 200,
        "HTTPHeaders": ReadOnlyDict(),
        "RetryAttempts": 0,
        "CacheStatus": "hit",
    }
)
#: The metadata of a batch answer that needed DynamoDB for some of its keys, when
#: DynamoDB's own is not at hand (the keys came from another process's copies).
MISS_METADATA: Final = ReadOnlyDict({**HIT_METADATA, "CacheStatus": "miss"})
#: The metadata of a batch answer that only waited on other callers' requests.
COALESCED_METADATA: Final = ReadOnlyDict({**HIT_METADATA, "CacheStatus": "coalesced"})


#: Where ``INDEXES`` reports an index's units: (``"GlobalSecondaryIndexes"`` or
#: ``"LocalSecondaryIndexes"``, the index's name).
IndexRead = tuple[str, str]


def capacity_mode(request: Mapping[str, Any]) -> str | None:
    """``"TOTAL"`` or ``"INDEXES"`` when ``request`` asks for its capacity, else ``None``."""
    mode = request.get("ReturnConsumedCapacity")
    return mode if mode in CAPACITY_MODES else None


def mark_status(answer: Any, status: str) -> Any:
    """DynamoDB's ``answer`` to a request sent as it came, its metadata (this caller's
    own) marked ``"CacheStatus": status``."""
    metadata = answer.get("ResponseMetadata") if isinstance(answer, dict) else None
    if isinstance(metadata, dict):
        metadata["CacheStatus"] = status
    return answer


def wants_capacity(request: Mapping[str, Any]) -> bool:
    return capacity_mode(request) is not None


def index_read(index: str | None, local_indexes: frozenset[str]) -> IndexRead | None:
    """Which of ``INDEXES``' maps a read of ``index`` (``None``: the table) reports in."""
    if index is None:
        return None
    kind = "LocalSecondaryIndexes" if index in local_indexes else "GlobalSecondaryIndexes"
    return (kind, index)


def consumed_capacity(
    mode: str, table: str, units: float = 0.0, index: IndexRead | None = None
) -> dict[str, Any]:
    """A ``ConsumedCapacity`` of ``table`` in DynamoDB's shape for ``mode``.

    ``units`` were read from the table, or from ``index`` when the read was of one:
    with ``INDEXES`` DynamoDB then reports the table's own units as ``0.0`` beside
    the index's (what DynamoDB Local answers).
    """
    capacity: dict[str, Any] = {"TableName": table, "CapacityUnits": units}
    if mode == "INDEXES":
        if index is None:
            capacity["Table"] = {"CapacityUnits": units}
        else:
            capacity["Table"] = {"CapacityUnits": 0.0}
            capacity[index[0]] = {index[1]: {"CapacityUnits": units}}
    return capacity


def add_answer_metadata(
    response: dict[str, Any],
    answer: Mapping[str, Any],
    leader: bool,
    unspent: dict[str, Any] | None,
) -> None:
    """Give a miss's caller DynamoDB's metadata; capacity only to whoever spent it.

    ``unspent`` is the caller's ``ConsumedCapacity`` had it spent nothing (zeros in
    its mode's shape), ``None`` when it asked for none.
    """
    metadata = answer.get("ResponseMetadata")
    if metadata is not None:
        response["ResponseMetadata"] = copy.deepcopy(metadata)
        response["ResponseMetadata"]["CacheStatus"] = "miss" if leader else "coalesced"
    if unspent is not None:
        consumed = answer.get("ConsumedCapacity") if leader else None
        response["ConsumedCapacity"] = copy.deepcopy(consumed) if consumed is not None else unspent


def batch_metadata(loaded: bool, sent: Mapping[str, Any] | None, joined: bool) -> Mapping[str, Any]:
    """The ``ResponseMetadata`` of a BatchGetItem answered key by key.

    ``loaded``: this call loaded keys itself (a ``"miss"``), with ``sent`` the
    metadata of DynamoDB's last answer to it (``None`` when other processes' copies
    answered instead); ``joined``: it waited on other callers' requests
    (``"coalesced"``) rather than only on cached entries (``"hit"``).
    """
    if loaded:
        if sent is None:
            return MISS_METADATA
        metadata = copy.deepcopy(dict(sent))
        metadata["CacheStatus"] = "miss"
        return metadata
    return COALESCED_METADATA if joined else HIT_METADATA


def freeze_page(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What the store keeps of a Query or Scan answer: its items, counts and last key."""
    page: dict[str, Any] = {
        name: answer[name] for name in ("Count", "ScannedCount") if name in answer
    }
    if "Items" in answer:
        page["Items"] = tuple(freeze(item) for item in answer["Items"])
    if "LastEvaluatedKey" in answer:
        page["LastEvaluatedKey"] = freeze(answer["LastEvaluatedKey"])
    return page


def thaw_page(page: Mapping[str, Any]) -> dict[str, Any]:
    """A caller's copy of a stored page: its own lists and top-level dicts (item
    attribute values shared, read-only), and its own ``LastEvaluatedKey``."""
    response: dict[str, Any] = {}
    items = page.get("Items")
    if items is not None:
        # A page holds no missing items: each image is a dict, copied shallowly.
        response["Items"] = [image.copy() for image in items]
    for name in ("Count", "ScannedCount"):
        if name in page:
            response[name] = page[name]
    if "LastEvaluatedKey" in page:
        # The caller's own, to the last level: code resuming a scan may edit it.  A key's
        # values are scalars ({"S": "a"}): two levels of plain dicts copy it all.
        response["LastEvaluatedKey"] = {
            name: dict(value) for name, value in page["LastEvaluatedKey"].items()
        }
    return response

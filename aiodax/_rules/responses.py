"""The shapes of answers: metadata of hits and misses, capacity, cached pages.

A hit is answered with shared, read-only metadata; a miss's caller gets DynamoDB's
own, marked ``"miss"``, and a caller that joined someone else's request gets a copy
marked ``"coalesced"`` and no capacity (it spent none).  A read the cache does not
serve (``ConsistentRead``, a shape it does not cache) is sent as it came and its
answer marked ``"bypass"``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from .wire import ReadOnlyDict, freeze, thaw

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
#: The metadata of a batch answer that needed DynamoDB for some of its keys.
MISS_METADATA: Final = ReadOnlyDict({**HIT_METADATA, "CacheStatus": "miss"})


def mark_status(answer: Any, status: str) -> Any:
    """DynamoDB's ``answer`` to a request sent as it came, its metadata (this caller's
    own) marked ``"CacheStatus": status``."""
    metadata = answer.get("ResponseMetadata") if isinstance(answer, dict) else None
    if isinstance(metadata, dict):
        metadata["CacheStatus"] = status
    return answer


def wants_capacity(request: Mapping[str, Any]) -> bool:
    return request.get("ReturnConsumedCapacity") in CAPACITY_MODES


def zero_capacity(table: str) -> dict[str, Any]:
    return {"TableName": table, "CapacityUnits": 0.0}


def add_answer_metadata(
    response: dict[str, Any],
    answer: Mapping[str, Any],
    request: Mapping[str, Any],
    table: str,
    leader: bool,
) -> None:
    """Give a miss's caller DynamoDB's metadata; capacity only to whoever spent it."""
    metadata = answer.get("ResponseMetadata")
    if metadata is not None:
        response["ResponseMetadata"] = copy.deepcopy(metadata)
        response["ResponseMetadata"]["CacheStatus"] = "miss" if leader else "coalesced"
    if wants_capacity(request):
        consumed = answer.get("ConsumedCapacity") if leader else None
        response["ConsumedCapacity"] = (
            copy.deepcopy(consumed) if consumed is not None else zero_capacity(table)
        )


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
    """A caller's copy of a stored page: its own lists and top-level dicts."""
    response: dict[str, Any] = {}
    items = page.get("Items")
    if items is not None:
        # A page holds no missing items: each image is a dict, copied shallowly.
        response["Items"] = [image.copy() for image in items]
    for name in ("Count", "ScannedCount"):
        if name in page:
            response[name] = page[name]
    if "LastEvaluatedKey" in page:
        response["LastEvaluatedKey"] = thaw(page["LastEvaluatedKey"])
    return response

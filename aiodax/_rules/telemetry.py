"""What the telemetry integrations call things: pure names and attributes.

``aiodax.contrib.prometheus`` and ``aiodax.contrib.opentelemetry`` report the same
counters (``Cache.stats()``) and the same requests (``_observe``); this module says,
once, under which names and with which attributes, following each ecosystem's
conventions: Prometheus's ``snake_case`` with ``_total`` counters and units as
suffixes, OpenTelemetry's semantic conventions for DynamoDB (``aws.dynamodb.*``,
``db.*``, ``rpc.*``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

#: ``stats()`` names of values that go up and down; every other number only grows.
GAUGES: Final = frozenset(
    {"CurrentSize", "CurrentEntries", "InFlight", "WritesInFlight", "OutboxLength"}
)
#: ``stats()`` names whose metric says more than the name's ``snake_case``.
_RENAMED: Final = {
    "EvictedCount": "evicted_entries",
    "EvictedSize": "evicted_bytes",
    "CurrentSize": "size_bytes",
    "CurrentEntries": "entries",
    "InFlight": "loads_in_flight",
    "WritesInFlight": "writes_in_flight",
    "BackendRequests": "backend_requests",
}
#: What each counter of ``stats()`` counts: the metrics' help text.
DESCRIPTIONS: Final = {
    "ItemCacheHits": "GetItem and BatchGetItem keys answered from the item cache",
    "ItemCacheMisses": "GetItem and BatchGetItem keys the item cache did not hold",
    "NegativeCacheHits": "item cache hits on an item known not to exist",
    "QueryCacheHits": "Query pages answered from the query cache",
    "QueryCacheMisses": "Query pages the query cache did not hold",
    "ScanCacheHits": "Scan pages answered from the query cache",
    "ScanCacheMisses": "Scan pages the query cache did not hold",
    "CoalescedRequests": "misses that joined another caller's request instead of sending one",
    "RefreshesAhead": "background reloads started by refresh-ahead",
    "StaleServed": "answers served past their TTL (stale-while-revalidate, stale-if-error)",
    "StreamBypassedReads": "answers not kept: their table's stream watermark was past its bound",
    "ConsistentFills": "misses read with ConsistentRead because a drop fenced them",
    "BackendRequests": "requests sent to DynamoDB, by operation",
    "WriteThroughs": "writes acknowledged by DynamoDB through the cache",
    "AmbiguousWrites": "writes whose outcome DynamoDB left unknown (timeouts, lost connections)",
    "ItemInvalidations": "item entries dropped by writes and invalidations",
    "QueryInvalidations": "query and scan pages dropped by writes and invalidations",
    "EvictedCount": "entries evicted to stay within max_bytes",
    "EvictedSize": "bytes of entries evicted to stay within max_bytes",
    "CurrentSize": "estimated bytes of the entries held",
    "CurrentEntries": "entries held",
    "InFlight": "loads from DynamoDB in flight",
    "WritesInFlight": "writes through the cache in flight",
}

_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``ItemCacheHits`` → ``item_cache_hits``; ``L2Hits`` → ``l2_hits``."""
    return _CAMEL.sub("_", name).lower()


def metric_name(stat: str) -> str:
    """The metric's name (without the ``aiodax_`` prefix nor ``_total``) of a ``stats()``
    value: ``ItemCacheHits`` → ``item_cache_hits``, ``CurrentSize`` → ``size_bytes``."""
    return _RENAMED.get(stat) or snake_case(stat)


def operation_name(operation: str) -> str:
    """DynamoDB's name of a client method: ``get_item`` → ``GetItem``."""
    return "".join(part.capitalize() for part in operation.split("_"))


def request_tables(request: Mapping[str, Any]) -> tuple[str, ...]:
    """The tables a request names, sorted (``()``: none it names, as PartiQL's)."""
    table = request.get("TableName")
    if isinstance(table, str):
        return (table,)
    items = request.get("RequestItems")
    if isinstance(items, Mapping):
        return tuple(sorted(name for name in items if isinstance(name, str)))
    actions = request.get("TransactItems")
    if isinstance(actions, Sequence):
        names = set()
        for action in actions:
            for body in action.values() if isinstance(action, Mapping) else ():
                name = body.get("TableName") if isinstance(body, Mapping) else None
                if isinstance(name, str):
                    names.add(name)
        return tuple(sorted(names))
    return ()


#: Request parameters and the ``aws.dynamodb.*`` span attributes they are reported as.
_REQUEST_ATTRIBUTES: Final = {
    "ConsistentRead": "aws.dynamodb.consistent_read",
    "IndexName": "aws.dynamodb.index_name",
    "Limit": "aws.dynamodb.limit",
    "ProjectionExpression": "aws.dynamodb.projection",
    "Select": "aws.dynamodb.select",
    "Segment": "aws.dynamodb.segment",
    "TotalSegments": "aws.dynamodb.total_segments",
    "ScanIndexForward": "aws.dynamodb.scan_forward",
}


def span_attributes(
    operation: str, request: Mapping[str, Any], answer: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The semantic conventions' attributes of a DynamoDB request and its answer."""
    method = operation_name(operation)
    attributes: dict[str, Any] = {
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": method,
        "db.system": "dynamodb",
        "db.system.name": "aws.dynamodb",
        "db.operation.name": method,
    }
    tables = request_tables(request)
    if tables:
        attributes["aws.dynamodb.table_names"] = list(tables)
        if len(tables) == 1:
            attributes["db.collection.name"] = tables[0]
    for parameter, attribute in _REQUEST_ATTRIBUTES.items():
        value = request.get(parameter)
        if isinstance(value, bool | int | str):
            attributes[attribute] = value
    if answer is None:
        return attributes
    for name, attribute in (
        ("Count", "aws.dynamodb.count"),
        ("ScannedCount", "aws.dynamodb.scanned_count"),
    ):
        if isinstance(answer.get(name), int):
            attributes[attribute] = answer[name]
    capacity = answer.get("ConsumedCapacity")
    if capacity:
        entries = capacity if isinstance(capacity, list) else [capacity]
        attributes["aws.dynamodb.consumed_capacity"] = [
            json.dumps(entry, sort_keys=True, default=str) for entry in entries
        ]
    metadata = answer.get("ResponseMetadata")
    if isinstance(metadata, Mapping) and metadata.get("RequestId"):
        attributes["aws.request_id"] = metadata["RequestId"]
    return attributes

"""Which reads are cacheable, and under which key: every read classified once.

``plan_get``, ``plan_page`` and ``plan_batch_get`` read a wire request into a plan
(the cache key, the projection, what to send on a miss) or say ``None``: the
request goes to DynamoDB uncached, so that DynamoDB judges what aiodax does not
understand, and ``ConsistentRead`` reads are never answered from the cache.  A
parameter aiodax does not know makes a request uncacheable for the same reason.

A cached answer must not depend on what is cached: a request DynamoDB would
refuse gets a plan of none, so it is refused whether its item is cached or not.
Every parameter a hit answers without DynamoDB is checked here as DynamoDB checks
it (the projection in ``projection.projection_of``, ``ReturnConsumedCapacity``,
``ConsistentRead``, parameters given as ``None``, which botocore refuses); a page
is keyed by every other parameter of its request, so only a request DynamoDB
took once finds it.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from .projection import Projection, fingerprint, projection_of, top_level_name
from .responses import capacity_mode
from .schema import KeySchema
from .tables import FIRST_SITE, TableToken, spelled_name, table_token
from .tags import StoreKey, page_key
from .wire import ItemKey, WireItem, canonical_key

#: (table, canonical key, projection): what one item flight loads.
ItemFlightKey: TypeAlias = tuple[TableToken, ItemKey, Projection | None]

GET_ITEM_PARAMS: Final = frozenset(
    {
        "TableName",
        "Key",
        "ProjectionExpression",
        "ExpressionAttributeNames",
        "AttributesToGet",
        "ConsistentRead",
        "ReturnConsumedCapacity",
    }
)
_BATCH_TABLE_PARAMS: Final = frozenset(
    {
        "Keys",
        "ProjectionExpression",
        "ExpressionAttributeNames",
        "AttributesToGet",
        "ConsistentRead",
    }
)
_PAGE_PARAMS: Final = frozenset(
    {
        "TableName",
        "IndexName",
        "Select",
        "AttributesToGet",
        "Limit",
        "ConsistentRead",
        "ExclusiveStartKey",
        "ReturnConsumedCapacity",
        "ProjectionExpression",
        "FilterExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "ConditionalOperator",
    }
)
_PARAMS: Final = {
    "query": _PAGE_PARAMS
    | {"KeyConditions", "QueryFilter", "ScanIndexForward", "KeyConditionExpression"},
    "scan": _PAGE_PARAMS | {"ScanFilter", "TotalSegments", "Segment"},
}
BATCH_GET_LIMIT: Final = 100
#: ``ReturnConsumedCapacity``'s values.  DynamoDB's API refuses any other spelling
#: (``"total"`` too, as moto does; DynamoDB Local takes any case): those go out.
CAPACITY_VALUES: Final = frozenset({"INDEXES", "TOTAL", "NONE"})


def _valid_common(request: Mapping[str, Any]) -> bool:
    """What every cacheable read asks of ``ConsistentRead`` and ``ReturnConsumedCapacity``.

    ``ConsistentRead``: absent or ``False`` (``True`` is never answered from the
    cache; anything else botocore refuses).  No parameter is ``None``: botocore
    refuses that too, and ``request.get`` would take it for an absent one.
    """
    if request.get("ConsistentRead", False) is not False or None in request.values():
        return False
    capacity = request.get("ReturnConsumedCapacity", "NONE")
    return type(capacity) is str and capacity in CAPACITY_VALUES


def _without_consistent_read(request: Mapping[str, Any]) -> dict[str, Any]:
    # Only a false ConsistentRead reaches a plan: sending it is sending the default.
    return {name: value for name, value in request.items() if name != "ConsistentRead"}


@dataclass(frozen=True, slots=True)
class GetPlan:
    """A cacheable ``GetItem``: the item and projection it reads, what a miss sends."""

    table: TableToken
    key: ItemKey
    projection: Projection | None
    send: dict[str, Any]
    #: ``"TOTAL"`` or ``"INDEXES"``: the ``ConsumedCapacity`` the caller asked for
    capacity: str | None

    @property
    def wants_capacity(self) -> bool:
        return self.capacity is not None

    @property
    def flight_key(self) -> ItemFlightKey:
        return (self.table, self.key, self.projection)


def plan_get(request: Mapping[str, Any], site: int = FIRST_SITE) -> GetPlan | None:
    """A GetItem's plan on ``site`` (``_rules.tables``), or ``None``: uncached."""
    spelled = request.get("TableName")
    if type(spelled) is not str or not spelled:
        return None
    if not GET_ITEM_PARAMS.issuperset(request) or not _valid_common(request):
        return None
    key = canonical_key(request.get("Key"))
    projection = projection_of(request)
    if key is None or projection is False:
        return None
    return GetPlan(
        table_token(spelled, site),
        key,
        projection,
        _without_consistent_read(request),
        capacity_mode(request),
    )


@dataclass(frozen=True, slots=True)
class PagePlan:
    """A cacheable Query or Scan page: its store key and what a miss sends."""

    operation: str
    table: TableToken
    store_key: StoreKey
    send: dict[str, Any]
    #: ``"TOTAL"`` or ``"INDEXES"``: the ``ConsumedCapacity`` the caller asked for
    capacity: str | None
    #: a base-table Query, whose key condition may pin one partition
    reads_one_partition: bool
    request: Mapping[str, Any] = field(repr=False)

    @property
    def wants_capacity(self) -> bool:
        return self.capacity is not None

    @property
    def is_query(self) -> bool:
        return self.operation == "query"


def plan_page(
    operation: str, request: Mapping[str, Any], site: int = FIRST_SITE
) -> PagePlan | None:
    """A Query (``operation="query"``) or Scan page's plan on ``site``, or ``None``: uncached."""
    spelled = request.get("TableName")
    if type(spelled) is not str or not spelled:
        return None
    table = table_token(spelled, site)
    if not _PARAMS[operation].issuperset(request) or not _valid_common(request):
        return None
    try:
        store_key = page_key(
            table,
            operation,
            fingerprint({k: v for k, v in request.items() if k != "ReturnConsumedCapacity"}),
        )
        hash(store_key)
    except TypeError:  # a value botocore will refuse: let it say so
        return None
    return PagePlan(
        operation,
        table,
        store_key,
        _without_consistent_read(request),
        capacity_mode(request),
        operation == "query" and request.get("IndexName") is None,
        request,
    )


class BatchPlan:
    """A ``BatchGetItem`` request read into flight keys, and back into requests."""

    __slots__ = (
        "added_names",
        "capacity",
        "key_names",
        "keys",
        "projections",
        "site",
        "tables",
        "wanted",
    )

    def __init__(self, capacity: str | None, site: int = FIRST_SITE) -> None:
        #: ``"TOTAL"`` or ``"INDEXES"``: the ``ConsumedCapacity`` the caller asked for
        self.capacity = capacity
        self.site = site
        self.keys: list[ItemFlightKey] = []
        #: each wanted key as the caller wrote it: sent back to DynamoDB unchanged
        self.wanted: dict[ItemFlightKey, Any] = {}
        #: by table token (``_rules.tables``), each table's parameters as the caller wrote them
        self.tables: dict[TableToken, dict[str, Any]] = {}
        self.projections: dict[TableToken, Projection | None] = {}
        self.key_names: dict[TableToken, tuple[str, ...]] = {}
        #: Key attributes aiodax added to a table's projection to match items to keys.
        self.added_names: dict[TableToken, tuple[str, ...]] = {}

    @property
    def wants_capacity(self) -> bool:
        return self.capacity is not None

    def keys_match(self, schemas: Mapping[TableToken, KeySchema | None]) -> bool:
        """No table whose schema is known is asked for keys of other attributes.

        DynamoDB refuses such keys; a laxer server may answer with the item of
        another key, which must not be cached under a key no write will name.
        """
        for table, names in self.key_names.items():
            schema = schemas.get(table)
            if schema is not None and names != schema.sorted_names:
                return False
        return True

    def request_items(
        self, keys: Iterable[ItemFlightKey], consistent: Collection[TableToken] = ()
    ) -> dict[str, Any]:
        """``RequestItems`` asking for ``keys``, with each table's projection; the
        tables in ``consistent`` read with ``ConsistentRead=True``."""
        items: dict[str, Any] = {}
        for flight_key in keys:
            table = flight_key[0]
            spelled = spelled_name(table)
            spec = items.get(spelled)
            if spec is None:
                spec = items[spelled] = self._table_spec(table)
                if table in consistent:
                    spec["ConsistentRead"] = True
            spec["Keys"].append(self.wanted[flight_key])
        return items

    def _table_spec(self, table: TableToken) -> dict[str, Any]:
        spec = {k: v for k, v in self.tables[table].items() if k not in ("Keys", "ConsistentRead")}
        spec["Keys"] = []
        added = self.added_names[table]
        if added:
            names = dict(spec.get("ExpressionAttributeNames") or {})
            placeholders = []
            index = 0
            for name in added:
                while f"#aiodax_key{index}" in names:  # the caller's own: leave it
                    index += 1
                placeholder = f"#aiodax_key{index}"
                names[placeholder] = name
                placeholders.append(placeholder)
            if "AttributesToGet" in spec:
                spec["AttributesToGet"] = [*spec["AttributesToGet"], *added]
            else:
                spec["ProjectionExpression"] = ", ".join(
                    [spec["ProjectionExpression"], *placeholders]
                )
                spec["ExpressionAttributeNames"] = names
        return spec

    def identify(self, spelled: str, item: WireItem) -> tuple[ItemFlightKey, WireItem]:
        """The flight key an item answered for table ``spelled`` belongs to, and the item
        as the caller asked."""
        table = table_token(spelled, self.site)
        key = canonical_key({name: item.get(name) for name in self.key_names[table]})
        added = self.added_names[table]
        visible = {k: v for k, v in item.items() if k not in added} if added else item
        return (table, key, self.projections[table]), visible  # type: ignore[return-value]

    def unprocessed_key(self, spelled: str, wire_key: Any) -> ItemFlightKey | None:
        table = table_token(spelled, self.site)
        key = canonical_key(wire_key)
        return None if key is None else (table, key, self.projections[table])

    def unprocessed_spec(self, table: TableToken) -> dict[str, Any]:
        """The caller's own parameters for ``table``, without keys: ``UnprocessedKeys``' form."""
        return {k: v for k, v in self.tables[table].items() if k != "Keys"}


def _head(path: str) -> str:
    """The top-level attribute a canonical path starts with (escapes undone)."""
    head = []
    escaped = False
    for char in path[1:]:
        if escaped:
            head.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ".[":
            break
        else:
            head.append(char)
    return "".join(head)


def plan_batch_get(request: Mapping[str, Any], site: int = FIRST_SITE) -> BatchPlan | None:
    """The request as flight keys on ``site``, or ``None`` to let DynamoDB judge it uncached."""
    request_items = request.get("RequestItems")
    if not isinstance(request_items, dict) or not request_items:
        return None
    if not {"RequestItems", "ReturnConsumedCapacity"}.issuperset(request):
        return None
    if not _valid_common(request):
        return None
    plan = BatchPlan(capacity_mode(request), site)
    for table, spec in request_items.items():
        if not _plan_batch_table(plan, table, spec):
            return None
    if len(plan.keys) > BATCH_GET_LIMIT:
        return None
    return plan


def _plan_batch_table(plan: BatchPlan, spelled: object, spec: object) -> bool:
    if type(spelled) is not str or not spelled or not isinstance(spec, dict):
        return False
    table = table_token(spelled, plan.site)
    if not _BATCH_TABLE_PARAMS.issuperset(spec) or not _valid_common(spec):
        return False
    keys = spec.get("Keys")
    if not isinstance(keys, list) or not keys:
        return False
    projection = projection_of(spec)
    if projection is False:
        return False
    canonical = [canonical_key(key) for key in keys]
    if None in canonical or len(set(canonical)) != len(canonical):
        return False
    names: set[Hashable] = {key[0::3] for key in canonical}  # type: ignore[index]
    if len(names) != 1:
        return False
    key_names: tuple[str, ...] = names.pop()  # type: ignore[assignment]
    added: tuple[str, ...] = ()
    if projection is not None:
        present = {top_level_name(path) for path in projection}
        for path in projection:
            if top_level_name(path) is None and _head(path) in key_names:
                return False  # a nested path under a key attribute: let DynamoDB say no
        added = tuple(name for name in key_names if name not in present)
    plan.tables[table] = spec
    plan.projections[table] = projection
    plan.key_names[table] = key_names
    plan.added_names[table] = added
    for key, original in zip(canonical, keys, strict=True):
        flight_key: ItemFlightKey = (table, key, projection)  # type: ignore[assignment]
        plan.keys.append(flight_key)
        plan.wanted[flight_key] = original
    return True

"""What DynamoDB operations mean for the cache.

The engine decides which reads are cacheable and under which key, what each write
updates or invalidates, and how misses are coalesced.  It speaks DynamoDB's wire
format only (requests as the low-level client takes them) and delegates freshness
to ``_policy``, memory to ``_store``, coalescing to ``_flight`` and I/O to the
backend it is handed with each call.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, Final

from ._backend import Backend, write_surely_not_applied
from ._config import CacheConfig, TTLs
from ._errors import CacheClosedError
from ._flight import Flight, Flights
from ._partiql import written_tables
from ._policy import RetryPolicy, expiry
from ._schema import Schemas, TableSchema, query_partition
from ._stats import Stats
from ._store import Entry, ItemEntry, PageEntry, Store, entry_size
from ._wire import (
    Image,
    ItemKey,
    Projection,
    ReadOnlyDict,
    WireItem,
    canonical_key,
    fingerprint,
    freeze,
    project,
    projection_of,
    thaw,
    top_level_names,
)

#: (table, canonical key): one item, for the write bookkeeping.
ItemRef = tuple[str, ItemKey]
#: (table, canonical key, projection): what one item flight loads.
ItemFlightKey = tuple[str, ItemKey, Projection | None]
#: An item flight's result for a key BatchGetItem left unprocessed after retries.
_UNPROCESSED: Final = object()
#: A write's outcome for a key whose new image is unknown: drop what is cached.
_INVALIDATE: Final = object()
#: A keyword argument the caller did not pass (``None`` may be one it did).
_ABSENT: Final = object()

#: A facade's form of responses or items: ``view(wire)`` takes a wire response
#: or item image and returns a function handing out copies of it in the facade's
#: form (each the caller's own), and the bytes that function holds.
View = Callable[[Any], tuple[Callable[[], Any], int]]

_GET_ITEM_PARAMS: Final = frozenset(
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
_QUERY_PARAMS: Final = frozenset(
    {
        "TableName",
        "IndexName",
        "Select",
        "AttributesToGet",
        "Limit",
        "ConsistentRead",
        "KeyConditions",
        "QueryFilter",
        "ConditionalOperator",
        "ScanIndexForward",
        "ExclusiveStartKey",
        "ReturnConsumedCapacity",
        "ProjectionExpression",
        "FilterExpression",
        "KeyConditionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
    }
)
_SCAN_PARAMS: Final = frozenset(
    {
        "TableName",
        "IndexName",
        "AttributesToGet",
        "Limit",
        "Select",
        "ScanFilter",
        "ConditionalOperator",
        "ExclusiveStartKey",
        "ReturnConsumedCapacity",
        "TotalSegments",
        "Segment",
        "ProjectionExpression",
        "FilterExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "ConsistentRead",
    }
)
_CAPACITY_MODES: Final = frozenset({"TOTAL", "INDEXES"})
#: Cache-key tag of pages that any write to their table invalidates (scans, index
#: queries, queries whose partition aiodax cannot read off the key condition).
_TABLE_WIDE: Final = "table-wide"
_PARTITION: Final = "partition"
_PAGES: Final = "pages"
_BATCH_GET_LIMIT: Final = 100


#: ``ResponseMetadata`` of an answer from the cache: shared, hence read-only.
#: ``CacheStatus`` is "hit" here and "miss" or "coalesced" on DynamoDB's answers.
_HIT_METADATA: Final = ReadOnlyDict(
    {
        "RequestId": "",
        "HTTPStatusCode": 200,
        "HTTPHeaders": ReadOnlyDict(),
        "RetryAttempts": 0,
        "CacheStatus": "hit",
    }
)


def _zero_capacity(table: str) -> dict[str, Any]:
    return {"TableName": table, "CapacityUnits": 0.0}


def _add_answer_metadata(
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
    if request.get("ReturnConsumedCapacity") in _CAPACITY_MODES:
        consumed = answer.get("ConsumedCapacity") if leader else None
        response["ConsumedCapacity"] = (
            copy.deepcopy(consumed) if consumed is not None else _zero_capacity(table)
        )


class _Write:
    """One write in progress on a set of item keys (see ``Engine._begin_write``)."""

    __slots__ = ("everything", "keys", "tables_unkeyed")

    def __init__(self, keys: list[ItemRef], tables_unkeyed: set[str], everything: bool) -> None:
        self.keys = keys
        #: Tables whose keys aiodax could not name (no schema, PartiQL): invalidated whole.
        self.tables_unkeyed = tables_unkeyed
        #: The write may have changed any table (PartiQL aiodax did not understand).
        self.everything = everything


class Engine:
    def __init__(self, config: CacheConfig, *, retry: RetryPolicy | None = None) -> None:
        self.config = config
        self._clock = config.clock
        self.store = Store(config.max_bytes)
        self._entries = self.store.entries
        self.stats = Stats()
        self.schemas = Schemas(self.call)
        self.retry = retry or RetryPolicy()
        self._item_flights: Flights[ItemFlightKey, Any] = Flights()
        self._page_flights: Flights[Hashable, Any] = Flights()
        #: store key → [writes in flight, whether two of them overlapped]
        self._writing: dict[ItemRef, list[Any]] = {}
        #: table (``None``: any table) → writes in flight that name no key in it
        self._unkeyed_writing: dict[str | None, int] = {}
        self._ttls: dict[str, TTLs] = {}
        self.closed = False

    # ------------------------------------------------------------------ helpers

    def ttls(self, table: str) -> TTLs:
        found = self._ttls.get(table)
        if found is None:
            found = self._ttls[table] = self.config.ttls_for(table)
        return found

    async def call(self, backend: Backend, operation: str, request: Mapping[str, Any]) -> Any:
        self.stats.backend_requests[operation] += 1
        return await getattr(backend, operation)(**request)

    def _check_open(self) -> None:
        if self.closed:
            raise CacheClosedError("this aiodax.Cache is closed")

    async def _wait(self, flights: Flights[Any, Any], waiting: Iterable[Flight[Any, Any]]) -> Any:
        try:
            return await flights.wait(tuple(waiting))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.closed and (task is None or task.cancelling() == 0):
                raise CacheClosedError("the aiodax.Cache closed during this request") from None
            raise

    # ---------------------------------------------------------------- item reads

    def get_item_hit(
        self, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any] | None:
        """The answer to a GetItem from the cache, or ``None`` if it must go out.

        Every request shape the fast path of ``bind_get_item`` does not take
        (composite keys, projections, consumed capacity) is answered here; with
        ``view``, in that view's form (see ``get_item``).  A closed cache has no
        entries, so it has no hits either.
        """
        table = request.get("TableName")
        key = canonical_key(request.get("Key"))
        if key is None or type(table) is not str:
            return None
        if request.get("ConsistentRead") or not _GET_ITEM_PARAMS.issuperset(request):
            return None
        projection = projection_of(request)
        if projection is False:
            return None
        found = self._lookup_item(table, key, projection)
        if found is None:
            return None
        image = found[0]
        stats = self.stats
        stats.item_hits += 1
        if image is None:
            stats.negative_hits += 1
            response: dict[str, Any] = {"ResponseMetadata": _HIT_METADATA}
        elif view is None:
            response = {"Item": image.copy(), "ResponseMetadata": _HIT_METADATA}
        else:
            copies = self._item_copies(table, key, projection, image, view)
            response = {"Item": copies(), "ResponseMetadata": _HIT_METADATA}
        if "ReturnConsumedCapacity" in request and (
            request["ReturnConsumedCapacity"] in _CAPACITY_MODES
        ):
            response["ConsumedCapacity"] = _zero_capacity(table)
        return response

    def bind_get_item(self, backend: Backend) -> Callable[..., Awaitable[dict[str, Any]]]:
        """``get_item(**request)`` for one backend, hits answered in its first lines.

        A closure, so that the commonest call (``TableName`` and a one-attribute
        string ``Key``) reaches its entry through local names only; everything
        else goes to ``get_item``.  ``TableName`` and ``Key`` are keyword-only
        parameters rather than entries of ``**request`` because Python binds them
        to locals without building a dict, which is a sixth of a hit.
        """
        entries = self._entries
        clock = self._clock
        stats = self.stats
        metadata = _HIT_METADATA
        general = self.get_item

        async def get_item(
            *, TableName: Any = _ABSENT, Key: Any = _ABSENT, **request: Any
        ) -> dict[str, Any]:
            if not request and type(Key) is dict and len(Key) == 1 and type(TableName) is str:
                for name in Key:
                    value = Key[name]
                if type(value) is dict and len(value) == 1 and "S" in value:
                    raw = value["S"]
                    if type(raw) is str and raw:
                        entry = entries.get((TableName, name, "S", raw))
                        if entry is not None and clock() < entry.expires_at:
                            entry.referenced = True
                            image = entry.image  # type: ignore[union-attr]
                            stats.item_hits += 1
                            if image is not None:
                                return {"Item": image.copy(), "ResponseMetadata": metadata}
                            stats.negative_hits += 1
                            return {"ResponseMetadata": metadata}
            if Key is not _ABSENT:
                request = {"Key": Key, **request}
            if TableName is not _ABSENT:
                request = {"TableName": TableName, **request}
            return await general(backend, request)

        return get_item

    async def get_item(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """``GetItem``, cached.  With ``view`` (an item view, as ``python_view``)
        the item is answered in that view's form, kept with the entry."""
        hit = self.get_item_hit(request, view)
        if hit is not None:
            return hit
        table = request.get("TableName")
        key = canonical_key(request.get("Key"))
        if (
            key is None
            or type(table) is not str
            or not table
            or request.get("ConsistentRead")
            or not _GET_ITEM_PARAMS.issuperset(request)
        ):
            return _items_in_view(await self._pass_through(backend, "get_item", request), view)
        projection = projection_of(request)
        if projection is False:
            return _items_in_view(await self._pass_through(backend, "get_item", request), view)
        self._check_open()
        self.stats.item_misses += 1
        flight_key: ItemFlightKey = (table, key, projection)
        flight = self._item_flights.get(flight_key)
        if flight is None:
            leader = True
            send = {name: value for name, value in request.items() if name != "ConsistentRead"}

            async def load() -> dict[ItemFlightKey, Any]:
                answer = await self.call(backend, "get_item", send)
                return {flight_key: (freeze(answer.get("Item")), answer)}

            flight = self._item_flights.start((flight_key,), load, self._store_item_result)
        else:
            leader = False
            self.stats.coalesced += 1
        result = (await self._wait(self._item_flights, (flight,)))[flight_key]
        if result is _UNPROCESSED:
            # Joined a BatchGetItem that DynamoDB kept refusing this key: GetItem
            # has no "unprocessed", so ask for the item on the caller's behalf.
            return _items_in_view(await self._pass_through(backend, "get_item", request), view)
        image = result[0]
        # A joined BatchGetItem flight carries no GetItem answer of its own.
        answer = result[1] if len(result) > 1 else {"ResponseMetadata": _HIT_METADATA}
        if image is None:
            response = {}
        elif view is None:
            response = {"Item": thaw(image)}
        else:
            response = {"Item": self._item_copies(table, key, projection, image, view)()}
        _add_answer_metadata(response, answer, request, table, leader)
        return response

    def _lookup_item(
        self, table: str, key: ItemKey, projection: Projection | None
    ) -> tuple[Image] | None:
        entry = self.store.get((table, *key))
        if not isinstance(entry, ItemEntry):
            return None
        now = self._clock()
        if projection is None:
            return (entry.image,) if now < entry.expires_at else None
        found = entry.projections.get(projection) if entry.projections else None
        if found is not None and now < found[1]:
            return (found[0],)
        names = top_level_names(projection)
        if names is None or not now < entry.expires_at:
            return None
        whole = entry.image
        return (None if whole is None else project(whole, names),)

    def _item_copies(
        self, table: str, key: ItemKey, projection: Projection | None, image: WireItem, view: View
    ) -> Callable[[], Any]:
        """``image`` of ``key`` in ``view``'s form, kept with the whole item's entry.

        A projection is converted each time: its image is not the entry's.
        """
        if projection is None:
            store_key = (table, *key)
            entry = self.store.peek(store_key)
            if isinstance(entry, ItemEntry) and entry.image is image:
                return entry.python or self._keep_view(store_key, entry, view, image)
        return view(image)[0]

    def _keep_view(
        self, store_key: Hashable, entry: Entry, view: View, value: Any
    ) -> Callable[[], Any]:
        """Make ``entry``'s view of ``value`` (its image or page) and account for it.

        An entry is never updated in place (fills and writes store new entries),
        so a view never outlives what it was made of.
        """
        copies, size = view(value)
        entry.python = copies
        self.store.grow(store_key, entry, size)
        return copies

    def _store_item_result(self, flight_key: ItemFlightKey, result: Any) -> None:
        if result is _UNPROCESSED:
            return
        table, key, projection = flight_key
        self._store_image(table, key, projection, result[0])

    def _store_image(
        self, table: str, key: ItemKey, projection: Projection | None, image: Image
    ) -> None:
        ttls = self.ttls(table)
        expires_at = expiry(self._clock(), ttls.negative if image is None else ttls.item)
        store_key = (table, *key)
        if self.closed:
            return  # a write that finished after aclose() must not refill the cache
        if expires_at is None:
            self.store.discard(store_key)
            return
        if projection is None:
            # The whole item replaces every projection cached before: any of them
            # may predate it.
            entry = ItemEntry(image, expires_at, None, (table,), 0)
        else:
            old = self.store.peek(store_key)
            now = self._clock()
            projections = {}
            whole, whole_expires_at = None, -math.inf
            if isinstance(old, ItemEntry):
                if old.projections:
                    projections = {p: v for p, v in old.projections.items() if now < v[1]}
                whole, whole_expires_at = old.image, old.expires_at
            projections[projection] = (image, expires_at)
            entry = ItemEntry(whole, whole_expires_at, projections, (table,), 0)
        entry.size = entry_size(store_key, (entry.image, entry.projections))
        self.store.put(store_key, entry)

    # ---------------------------------------------------------- batch item reads

    async def batch_get_item(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """``BatchGetItem``, per key cached.  With ``view`` (an item view), items and
        unprocessed keys are answered in its form, as ``get_item``'s."""
        plan = _plan_batch_get(request)
        if plan is not None:
            for table in plan.tables:  # one DescribeTable per table, ever
                await self.schemas.get(table, backend)
        if plan is None or not self._keys_match_known_schemas(plan.key_names):
            answer = await self._pass_through(backend, "batch_get_item", request)
            return _batch_in_view(answer, view)
        self._check_open()
        wants_capacity = request.get("ReturnConsumedCapacity") in _CAPACITY_MODES
        images: dict[ItemFlightKey, Any] = {}
        waiting: dict[Flight[ItemFlightKey, Any], None] = {}
        to_load: list[ItemFlightKey] = []
        for flight_key in plan.keys:
            table, key, projection = flight_key
            found = self._lookup_item(table, key, projection)
            if found is not None:
                self.stats.item_hits += 1
                self.stats.negative_hits += found[0] is None
                images[flight_key] = found
                continue
            self.stats.item_misses += 1
            flight = self._item_flights.get(flight_key)
            if flight is not None:
                self.stats.coalesced += 1
                waiting[flight] = None
            else:
                to_load.append(flight_key)
        consumed: dict[str, float] = {}
        if to_load:
            load_keys = tuple(to_load)

            async def load() -> dict[ItemFlightKey, Any]:
                return await self._load_batch(backend, plan, load_keys, consumed)

            waiting[self._item_flights.start(load_keys, load, self._store_item_result)] = None
        if waiting:
            for flight_key, result in (await self._wait(self._item_flights, waiting)).items():
                if flight_key in plan.wanted:
                    images[flight_key] = result
        responses: dict[str, list[WireItem]] = {table: [] for table in plan.tables}
        unprocessed: dict[str, dict[str, Any]] = {}
        for flight_key in plan.keys:
            table = flight_key[0]
            result = images[flight_key]
            if result is _UNPROCESSED:
                entry = unprocessed.get(table)
                if entry is None:
                    entry = unprocessed[table] = copy.deepcopy(
                        {k: v for k, v in plan.tables[table].items() if k != "Keys"}
                    )
                    entry["Keys"] = []
                wanted = plan.wanted[flight_key]
                entry["Keys"].append(copy.deepcopy(wanted) if view is None else view(wanted)[0]())
            elif result[0] is None:
                continue
            elif view is None:
                responses[table].append(thaw(result[0]))  # type: ignore[arg-type]
            else:
                _, key, projection = flight_key
                responses[table].append(
                    self._item_copies(table, key, projection, result[0], view)()
                )
        response: dict[str, Any] = {
            "Responses": responses,
            "UnprocessedKeys": unprocessed,
            "ResponseMetadata": {**_HIT_METADATA, "CacheStatus": "miss"}
            if to_load
            else _HIT_METADATA,
        }
        if wants_capacity:
            response["ConsumedCapacity"] = [
                {"TableName": table, "CapacityUnits": consumed.get(table, 0.0)}
                for table in plan.tables
            ]
        return response

    def _keys_match_known_schemas(self, key_names: Mapping[str, tuple[str, ...]]) -> bool:
        """No table whose schema is known is asked for keys of other attributes.

        DynamoDB refuses such keys; a laxer server may answer with the item of
        another key, which must not be cached under a key no write will name.
        """
        for table, names in key_names.items():
            schema = self.schemas.known(table)
            if schema is not None and names != tuple(sorted(schema.key.names)):
                return False
        return True

    async def _load_batch(
        self,
        backend: Backend,
        plan: _BatchPlan,
        keys: tuple[ItemFlightKey, ...],
        consumed: dict[str, float],
    ) -> dict[ItemFlightKey, Any]:
        results: dict[ItemFlightKey, Any] = dict.fromkeys(keys, _UNPROCESSED)
        remaining = list(keys)
        delays = self.retry.delays()
        while remaining:
            send: dict[str, Any] = {
                "RequestItems": plan.request_items(remaining),
                "ReturnConsumedCapacity": "TOTAL",
            }
            answer = await self.call(backend, "batch_get_item", send)
            for capacity in answer.get("ConsumedCapacity") or ():
                table = capacity.get("TableName")
                consumed[table] = consumed.get(table, 0.0) + capacity.get("CapacityUnits", 0.0)
            unprocessed: set[ItemFlightKey] = set()
            for table, spec in (answer.get("UnprocessedKeys") or {}).items():
                projection = plan.projections[table]
                for wire in spec.get("Keys", ()):
                    unprocessed.add((table, canonical_key(wire), projection))  # type: ignore[arg-type]
            returned: dict[ItemFlightKey, WireItem] = {}
            for table, items in (answer.get("Responses") or {}).items():
                for item in items:
                    flight_key, visible = plan.identify(table, item)
                    returned[flight_key] = visible
            for flight_key in remaining:
                if flight_key in unprocessed:
                    continue
                results[flight_key] = (freeze(returned.get(flight_key)),)
            remaining = [k for k in remaining if k in unprocessed]
            if remaining:
                delay = next(delays, None)
                if delay is None:
                    break
                await asyncio.sleep(delay)
        return results

    # ------------------------------------------------------------ query and scan

    async def query(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """``Query``, its page cached.  The answer is in wire form, or with ``view``
        in that view's form (see ``_page``)."""
        return await self._page(backend, "query", request, _QUERY_PARAMS, view)

    async def scan(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        return await self._page(backend, "scan", request, _SCAN_PARAMS, view)

    async def _page(
        self,
        backend: Backend,
        operation: str,
        request: dict[str, Any],
        allowed: frozenset[str],
        view: View | None,
    ) -> dict[str, Any]:
        """One Query or Scan page, from the cache when fresh.

        ``view`` serves a facade whose responses are in another form (the
        resource's Python values): ``view(response)`` takes a wire response (the
        callee's to change) and returns a function handing out copies of it in
        that form, and their size.  A cached page keeps its view beside it
        (``PageEntry.python``), so a hit converts nothing.
        """
        table = request.get("TableName")
        if (
            type(table) is not str
            or not table
            or request.get("ConsistentRead")
            or not allowed.issuperset(request)
            or self.ttls(table).query <= 0
        ):
            return _in_view(await self._pass_through(backend, operation, request), view)
        self._check_open()
        is_query = operation == "query"
        try:
            page_key = (
                table,
                _PAGES,
                operation,
                fingerprint({k: v for k, v in request.items() if k != "ReturnConsumedCapacity"}),
            )
            hash(page_key)
        except TypeError:  # a value botocore will refuse: let it say so
            return _in_view(await self._pass_through(backend, operation, request), view)
        stats = self.stats
        entry = self.store.get(page_key)
        if isinstance(entry, PageEntry) and self._clock() < entry.expires_at:
            if is_query:
                stats.query_hits += 1
            else:
                stats.scan_hits += 1
            if view is None:
                response = _thaw_page(entry.page)
            else:
                response = (entry.python or self._page_view(page_key, entry.page, view))()
            response["ResponseMetadata"] = _HIT_METADATA
            if request.get("ReturnConsumedCapacity") in _CAPACITY_MODES:
                response["ConsumedCapacity"] = _zero_capacity(table)
            return response
        if is_query:
            stats.query_misses += 1
        else:
            stats.scan_misses += 1
        flight = self._page_flights.get(page_key)
        leader = False
        if flight is None:
            tags = await self._page_tags(backend, table, request, is_query)
            # Another caller may have started this page while the schema was fetched.
            flight = self._page_flights.get(page_key)
            if flight is None:
                flight = self._start_page_flight(backend, operation, request, page_key, tags)
                leader = True
        if not leader:
            stats.coalesced += 1
        page, answer = (await self._wait(self._page_flights, (flight,)))[page_key]
        response = _thaw_page(page) if view is None else self._page_view(page_key, page, view)()
        _add_answer_metadata(response, answer, request, table, leader)
        return response

    def _page_view(self, page_key: Hashable, page: dict[str, Any], view: View) -> Callable[[], Any]:
        """``page`` in ``view``'s form, kept with the page while the store holds it."""
        entry = self.store.peek(page_key)
        if isinstance(entry, PageEntry) and entry.page is page:
            return entry.python or self._keep_view(page_key, entry, view, _thaw_page(page))
        return view(_thaw_page(page))[0]

    def _start_page_flight(
        self,
        backend: Backend,
        operation: str,
        request: Mapping[str, Any],
        page_key: Hashable,
        tags: tuple[Hashable, ...],
    ) -> Flight[Hashable, Any]:
        send = {name: value for name, value in request.items() if name != "ConsistentRead"}

        async def load() -> dict[Hashable, Any]:
            answer = await self.call(backend, operation, send)
            return {page_key: (_freeze_page(answer), answer)}

        def store(key: Hashable, result: Any) -> None:
            self._store_page(key, result[0], tags)

        return self._page_flights.start((page_key,), load, store, label=tags)

    async def _page_tags(
        self, backend: Backend, table: str, request: Mapping[str, Any], is_query: bool
    ) -> tuple[Hashable, ...]:
        pages_tag = (table, _PAGES)
        if self.config.query_invalidation != "partition":
            return (pages_tag,)
        if is_query and request.get("IndexName") is None:
            schema = await self.schemas.get(table, backend)
            partition = None if schema is None else query_partition(request, schema)
            if partition is not None:
                return (pages_tag, (table, _PARTITION, partition))
        return (pages_tag, (table, _TABLE_WIDE))

    def _store_page(
        self, page_key: Hashable, page: dict[str, Any], tags: tuple[Hashable, ...]
    ) -> None:
        table = page_key[0]  # type: ignore[index]
        expires_at = expiry(self._clock(), self.ttls(table).query)
        if expires_at is None or self.closed:
            return
        self.store.put(page_key, PageEntry(page, expires_at, tags, entry_size(page_key, page)))

    # ------------------------------------------------------------------- writes

    async def put_item(self, backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
        table = request.get("TableName")
        item = request.get("Item")
        if type(table) is not str or not isinstance(item, dict):
            return await self._pass_through(backend, "put_item", request)  # type: ignore[no-any-return]
        schema = await self.schemas.get(table, backend)
        key = None if schema is None else schema.key.key_of(item)
        image = freeze(item, written=True)
        write = self._begin_write(table, key)
        response = await self._send_write(backend, "put_item", request, write)
        self._finish_write(write, {(table, key): image} if key is not None else {})
        return response  # type: ignore[no-any-return]

    async def update_item(self, backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
        table = request.get("TableName")
        if type(table) is not str:
            return await self._pass_through(backend, "update_item", request)  # type: ignore[no-any-return]
        key = _write_key(await self.schemas.get(table, backend), request.get("Key"))
        asked = request.get("ReturnValues", "NONE")
        send = request
        if asked == "NONE":
            # The new image costs DynamoDB no capacity and spares the next read a miss.
            send = {**request, "ReturnValues": "ALL_NEW"}
        write = self._begin_write(table, key)
        response = await self._send_write(backend, "update_item", send, write)
        if asked in ("NONE", "ALL_NEW"):
            image = freeze(response.get("Attributes"))
            self._finish_write(write, {} if key is None else {(table, key): image})
            if asked == "NONE":
                response.pop("Attributes", None)
        else:
            self._finish_write(write, {})
        return response  # type: ignore[no-any-return]

    async def delete_item(self, backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
        table = request.get("TableName")
        if type(table) is not str:
            return await self._pass_through(backend, "delete_item", request)  # type: ignore[no-any-return]
        key = _write_key(await self.schemas.get(table, backend), request.get("Key"))
        write = self._begin_write(table, key)
        response = await self._send_write(backend, "delete_item", request, write)
        self._finish_write(write, {} if key is None else {(table, key): None})
        return response  # type: ignore[no-any-return]

    async def batch_write_item(self, backend: Backend, request: dict[str, Any]) -> dict[str, Any]:
        request_items = request.get("RequestItems")
        if not isinstance(request_items, dict):
            return await self._pass_through(backend, "batch_write_item", request)  # type: ignore[no-any-return]
        planned: list[tuple[str, ItemKey | None, Image]] = []
        for table, writes in request_items.items():
            if type(table) is not str or not isinstance(writes, list):
                return await self._pass_through(backend, "batch_write_item", request)  # type: ignore[no-any-return]
            schema = await self.schemas.get(table, backend)
            for write_request in writes:
                planned.append(_plan_batch_write(table, schema, write_request))
        write = self._begin_writes(planned)
        response = await self._send_write(backend, "batch_write_item", request, write)
        not_written: set[tuple[str, ItemKey | None]] = set()
        for table, writes in (response.get("UnprocessedItems") or {}).items():
            schema = self.schemas.known(table)
            for write_request in writes:
                not_written.add(_plan_batch_write(table, schema, write_request)[:2])
        self._finish_write(
            write,
            {
                (table, key): image
                for table, key, image in planned
                if key is not None and (table, key) not in not_written
            },
        )
        return response  # type: ignore[no-any-return]

    async def transact_write_items(
        self, backend: Backend, request: dict[str, Any]
    ) -> dict[str, Any]:
        transact_items = request.get("TransactItems")
        if not isinstance(transact_items, list):
            return await self._pass_through(backend, "transact_write_items", request)  # type: ignore[no-any-return]
        planned: list[tuple[str, ItemKey | None, Any]] = []
        for action in transact_items:
            if not isinstance(action, dict) or len(action) != 1:
                return await self._pass_through(backend, "transact_write_items", request)  # type: ignore[no-any-return]
            ((kind, spec),) = action.items()
            table = spec.get("TableName") if isinstance(spec, dict) else None
            if type(table) is not str:
                return await self._pass_through(backend, "transact_write_items", request)  # type: ignore[no-any-return]
            if kind == "ConditionCheck":
                continue
            schema = await self.schemas.get(table, backend)
            if kind == "Put":
                item = spec.get("Item")
                key = schema.key.key_of(item) if schema and isinstance(item, dict) else None
                planned.append(
                    (table, key, freeze(item, written=True) if isinstance(item, dict) else None)
                )
            else:
                # An Update's new image is not returned by a transaction: invalidate.
                outcome = None if kind == "Delete" else _INVALIDATE
                planned.append((table, _write_key(schema, spec.get("Key")), outcome))
        write = self._begin_writes(planned)
        response = await self._send_write(backend, "transact_write_items", request, write)
        self._finish_write(
            write, {(table, key): outcome for table, key, outcome in planned if key is not None}
        )
        return response  # type: ignore[no-any-return]

    def _begin_write(self, table: str, key: ItemKey | None) -> _Write:
        return self._begin_writes([(table, key, None)])

    def _begin_writes(
        self, planned: Iterable[tuple[str, ItemKey | None, Any]], *, everything: bool = False
    ) -> _Write:
        """Register a write of ``planned`` (table, key or ``None``, outcome) items.

        Two writes to one key in flight at once may be acknowledged in another
        order than DynamoDB applied them, so neither may set the cached value:
        both invalidate.  A write that names no key (``None``, or ``everything``)
        overlaps every write to its table (or to any table) in the same way.
        """
        self._check_open()
        planned = list(planned)
        unkeyed = {table for table, key, _ in planned if key is None}
        for table in (None,) if everything else unkeyed:
            self._unkeyed_writing[table] = self._unkeyed_writing.get(table, 0) + 1
            for ref, in_flight in self._writing.items():
                if table is None or ref[0] == table:
                    in_flight[1] = True
        keys: list[ItemRef] = []
        for table, key, _ in planned:
            if key is None:
                continue
            ref = (table, key)
            keys.append(ref)
            overlapped = bool(self._unkeyed_writing.get(table) or self._unkeyed_writing.get(None))
            state = self._writing.get(ref)
            if state is None:
                self._writing[ref] = [1, overlapped]
            else:
                state[0] += 1
                state[1] = True
        return _Write(keys, unkeyed, everything)

    async def _send_write(
        self, backend: Backend, operation: str, request: Mapping[str, Any], write: _Write
    ) -> Any:
        try:
            response = await self.call(backend, operation, request)
        except BaseException as error:
            if write_surely_not_applied(error):
                self._finish_write(write, {}, invalidate=False)
            else:
                self._finish_write(write, {})
            raise
        self.stats.write_throughs += 1
        return response

    def _finish_write(
        self,
        write: _Write,
        outcomes: Mapping[ItemRef, Any],
        *,
        invalidate: bool = True,
    ) -> None:
        """Bring the cache up to date with a finished write, before its caller hears.

        ``outcomes`` maps a key to its new image (``None`` = deleted) or to
        ``_INVALIDATE``; a key of the write without an outcome is invalidated,
        unless ``invalidate`` is false (the write surely did not happen).
        """
        for ref in write.keys:
            state = self._writing[ref]
            overlapped = state[1]
            state[0] -= 1
            if state[0] == 0:
                del self._writing[ref]
            if not invalidate:
                continue
            table, key = ref
            outcome = outcomes.get(ref, _INVALIDATE)
            self._detach_item_flights(table, key)
            if outcome is _INVALIDATE or overlapped:
                self.stats.item_invalidations += self.store.discard((table, *key))
            else:
                self._store_image(table, key, None, outcome)
            self._invalidate_pages(table, key)
        for unkeyed in (None,) if write.everything else write.tables_unkeyed:
            count = self._unkeyed_writing[unkeyed] - 1
            if count:
                self._unkeyed_writing[unkeyed] = count
            else:
                del self._unkeyed_writing[unkeyed]
        if invalidate:
            if write.everything:
                self.clear()
            for table in write.tables_unkeyed:
                self.invalidate_table(table)

    # ------------------------------------------------------------------ PartiQL

    async def execute_statement(self, backend: Backend, request: dict[str, Any]) -> Any:
        return await self._partiql(
            backend, "execute_statement", request, (request.get("Statement"),)
        )

    async def batch_execute_statement(self, backend: Backend, request: dict[str, Any]) -> Any:
        statements = _statements(request.get("Statements"))
        return await self._partiql(backend, "batch_execute_statement", request, statements)

    async def execute_transaction(self, backend: Backend, request: dict[str, Any]) -> Any:
        statements = _statements(request.get("TransactStatements"))
        return await self._partiql(backend, "execute_transaction", request, statements)

    async def _partiql(
        self,
        backend: Backend,
        operation: str,
        request: dict[str, Any],
        statements: Iterable[object],
    ) -> Any:
        """PartiQL, never cached; a write invalidates every table it names.

        PartiQL does not name the items it writes in a form aiodax reads (that is
        its ``WHERE`` clause), so a written table is dropped whole, with the
        guards of any write: a read that overlaps it stores nothing, a keyed
        write that overlaps it invalidates instead of storing.  A write whose
        table aiodax cannot read off the statement drops everything.
        """
        tables = written_tables(statements)
        if tables is not None and not tables:
            return await self._pass_through(backend, operation, request)
        planned = [(table, None, None) for table in tables or ()]
        write = self._begin_writes(planned, everything=tables is None)
        response = await self._send_write(backend, operation, request, write)
        self._finish_write(write, {})
        return response

    # ------------------------------------------------------------- invalidation

    def _detach_item_flights(self, table: str, key: ItemKey) -> None:
        """Loads of the item in flight (any projection) neither store nor take joiners."""
        self._item_flights.detach_where(lambda k, _: k[0] == table and k[1] == key)

    def _invalidate_pages(self, table: str, key: ItemKey | None) -> None:
        mode = self.config.query_invalidation
        if mode == "none":
            return
        tags: list[Hashable] = []
        schema = self.schemas.known(table)
        partition = None if schema is None or key is None else schema.key.partition_of(key)
        if mode == "table" or partition is None:
            tags.append((table, _PAGES))
        else:
            tags.append((table, _PARTITION, partition))
            tags.append((table, _TABLE_WIDE))
        for tag in tags:
            self.stats.query_invalidations += self.store.discard_tagged(tag)
        # A page flight's label is the tags its page will be stored under.
        self._page_flights.detach_where(lambda _, flight: any(tag in flight.label for tag in tags))

    def invalidate(self, table: str, key: Mapping[str, Any]) -> None:
        canonical = canonical_key(dict(key) if isinstance(key, Mapping) else key)
        if canonical is None:
            raise ValueError(f"not a DynamoDB wire-format key: {key!r}")
        self._detach_item_flights(table, canonical)
        self.stats.item_invalidations += self.store.discard((table, *canonical))
        self._invalidate_pages(table, canonical)

    def invalidate_table(self, table: str) -> None:
        self._item_flights.detach_where(lambda k, _: k[0] == table)
        self._page_flights.detach_where(lambda k, _: k[0] == table)  # type: ignore[index]
        self.stats.item_invalidations += self.store.discard_tagged(table)
        self.stats.query_invalidations += self.store.discard_tagged((table, _PAGES))

    def clear(self) -> None:
        self._item_flights.detach_where(lambda k, _: True)
        self._page_flights.detach_where(lambda k, _: True)
        self.store.clear()

    # ------------------------------------------------------------- pass-through

    async def _pass_through(
        self, backend: Backend, operation: str, request: Mapping[str, Any]
    ) -> Any:
        return await self.call(backend, operation, request)

    async def table_changed(
        self, backend: Backend, operation: str, request: Mapping[str, Any]
    ) -> Any:
        """Create/Delete/UpdateTable: afterwards, nothing known of the table holds."""
        table = request.get("TableName")
        try:
            return await self.call(backend, operation, request)
        finally:
            if isinstance(table, str):
                self.schemas.forget(table)
                self.invalidate_table(table)

    async def aclose(self) -> None:
        self.closed = True
        await self._item_flights.aclose()
        await self._page_flights.aclose()
        await self.schemas.aclose()
        self.store.clear()

    # ------------------------------------------------------------ facade forms

    def bind_table_get_item(
        self,
        table: str,
        *,
        key_of: Callable[[dict[Any, Any]], ItemKey | None],
        view: View,
        meta: Any,
        general: Callable[[dict[str, Any]], Awaitable[Any]],
    ) -> Callable[..., Awaitable[Any]]:
        """``get_item(**kwargs)`` of a facade holding keys and items in another form.

        The resource facade's items are Python values; converting the wire image on
        every hit would cost many times the hit itself.  So a hit serves the entry's
        own *view* of the item: ``view(image)`` returns a function that hands out
        a caller's copy of the item in the facade's form, and its size in bytes.  It
        runs when the facade first reads the entry (a miss through ``general`` or the
        first hit here); the view lives in ``ItemEntry.python`` as
        long as the entry does (fills and writes store new entries, so a view never
        outlives its image), and its size is added to the entry's, which is then
        re-admitted so that ``max_bytes`` keeps holding.

        A hit needs ``kwargs`` to be ``{"Key": key}``.  A one-attribute key whose value
        is a non-empty ``str`` names the string key with that value (that is how the
        facade spells one); ``key_of`` canonicalizes any other key or says ``None``.
        Every hit sets ``meta.data`` to ``None``, as a boto3 resource forgets its
        loaded attributes after each action (``meta`` is the table's ``ResourceMeta``;
        an attribute store here costs a third of a call).  Everything that is no hit
        goes to ``general`` with ``kwargs``.  A closure, like ``bind_get_item``, so
        that the commonest hit runs on local names only.
        """
        entries = self._entries
        clock = self._clock
        stats = self.stats
        keep_view = self._keep_view
        metadata = _HIT_METADATA

        def store_key_of(key: dict[Any, Any]) -> tuple[Any, ...] | None:
            canonical = key_of(key)
            return None if canonical is None else (table, *canonical)

        def first_hit(store_key: tuple[Any, ...], entry: ItemEntry) -> Callable[[], Any] | None:
            if entry.image is None:
                stats.negative_hits += 1
                return None
            return keep_view(store_key, entry, view, entry.image)

        async def get_item(*, Key: Any = _ABSENT, **kwargs: Any) -> Any:
            if not kwargs and type(Key) is dict:
                store_key: tuple[Any, ...] | None
                if len(Key) == 1:
                    for name in Key:
                        value = Key[name]
                    if type(value) is str and value:
                        store_key = (table, name, "S", value)
                    else:
                        store_key = store_key_of(Key)
                else:
                    store_key = store_key_of(Key)
                if store_key is not None:
                    entry = entries.get(store_key)
                    if entry is not None and clock() < entry.expires_at:
                        entry.referenced = True
                        stats.item_hits += 1
                        meta.data = None
                        copies = entry.python
                        if copies is None:
                            copies = first_hit(store_key, entry)  # type: ignore[arg-type]
                            if copies is None:
                                return {"ResponseMetadata": metadata}
                        return {"Item": copies(), "ResponseMetadata": metadata}
            if Key is not _ABSENT:
                kwargs = {"Key": Key, **kwargs}
            return await general(kwargs)

        return get_item

    def forget_table(self, table: str) -> None:
        """A table was created, deleted or updated by a call the engine did not send.

        ``table_changed`` for changes made through another object (the resource's
        ``create_table``, a table's ``delete()`` and ``update()``).
        """
        self.schemas.forget(table)
        self.invalidate_table(table)


# ---------------------------------------------------------------------------
# Batch plans


class _BatchPlan:
    """A ``BatchGetItem`` request read into flight keys, and back into requests."""

    __slots__ = ("added_names", "key_names", "keys", "projections", "tables", "wanted")

    def __init__(self) -> None:
        self.keys: list[ItemFlightKey] = []
        #: each wanted key as the caller wrote it: sent back to DynamoDB unchanged
        self.wanted: dict[ItemFlightKey, Any] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self.projections: dict[str, Projection | None] = {}
        self.key_names: dict[str, tuple[str, ...]] = {}
        #: Key attributes aiodax added to a table's projection to match items to keys.
        self.added_names: dict[str, tuple[str, ...]] = {}

    def request_items(self, keys: Iterable[ItemFlightKey]) -> dict[str, Any]:
        items: dict[str, Any] = {}
        for flight_key in keys:
            table = flight_key[0]
            spec = items.get(table)
            if spec is None:
                spec = items[table] = {
                    k: v
                    for k, v in self.tables[table].items()
                    if k not in ("Keys", "ConsistentRead")
                }
                spec["Keys"] = []
                added = self.added_names[table]
                if added:
                    names = dict(spec.get("ExpressionAttributeNames") or {})
                    placeholders = []
                    for index, name in enumerate(added):
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
            spec["Keys"].append(self.wanted[flight_key])
        return items

    def identify(self, table: str, item: WireItem) -> tuple[ItemFlightKey, WireItem]:
        key = canonical_key({name: item.get(name) for name in self.key_names[table]})
        added = self.added_names[table]
        visible = {k: v for k, v in item.items() if k not in added} if added else item
        return (table, key, self.projections[table]), visible  # type: ignore[return-value]


def _plan_batch_get(request: Mapping[str, Any]) -> _BatchPlan | None:
    """The request as flight keys, or ``None`` to let DynamoDB judge it uncached."""
    request_items = request.get("RequestItems")
    if not isinstance(request_items, dict) or not request_items:
        return None
    if not {"RequestItems", "ReturnConsumedCapacity"}.issuperset(request):
        return None
    plan = _BatchPlan()
    total = 0
    for table, spec in request_items.items():
        if type(table) is not str or not table or not isinstance(spec, dict):
            return None
        if not _BATCH_TABLE_PARAMS.issuperset(spec) or spec.get("ConsistentRead"):
            return None
        keys = spec.get("Keys")
        if not isinstance(keys, list) or not keys:
            return None
        projection = projection_of(spec)
        if projection is False:
            return None
        canonical = [canonical_key(key) for key in keys]
        if None in canonical or len(set(canonical)) != len(canonical):
            return None
        names = {key[0::3] for key in canonical}  # type: ignore[index]
        if len(names) != 1:
            return None
        key_names = names.pop()
        added: tuple[str, ...] = ()
        if projection is not None:
            present = set(top_level_names(projection) or ())
            for path in projection:
                head = path[1:].partition(".")[0].partition("[")[0]
                if head in key_names and head not in present:
                    return None  # a nested path under a key attribute: let DynamoDB say no
            added = tuple(name for name in key_names if name not in present)
        plan.tables[table] = spec
        plan.projections[table] = projection
        plan.key_names[table] = key_names
        plan.added_names[table] = added
        for key, original in zip(canonical, keys, strict=True):
            flight_key: ItemFlightKey = (table, key, projection)  # type: ignore[assignment]
            plan.keys.append(flight_key)
            plan.wanted[flight_key] = original
            total += 1
    if total > _BATCH_GET_LIMIT:
        return None
    return plan


def _write_key(schema: TableSchema | None, raw_key: Any) -> ItemKey | None:
    """The canonical key a write names, or ``None`` when aiodax cannot tell which item.

    A key that is malformed, or whose attributes are not the table's key schema
    (DynamoDB refuses it; a laxer server may apply it to some item), makes the
    write *unkeyed*: if it succeeds, the whole table's entries are dropped.
    """
    key = canonical_key(raw_key)
    if key is None or schema is None or key[0::3] != tuple(sorted(schema.key.names)):
        return None
    return key


def _plan_batch_write(
    table: str, schema: TableSchema | None, write_request: Any
) -> tuple[str, ItemKey | None, Any]:
    if isinstance(write_request, dict):
        put = write_request.get("PutRequest")
        if isinstance(put, dict) and isinstance(put.get("Item"), dict):
            item = put["Item"]
            key = schema.key.key_of(item) if schema is not None else None
            return table, key, freeze(item, written=True)
        delete = write_request.get("DeleteRequest")
        if isinstance(delete, dict):
            return table, _write_key(schema, delete.get("Key")), None
    return table, None, _INVALIDATE


# ---------------------------------------------------------------------------
# Pages


def _freeze_page(answer: Mapping[str, Any]) -> dict[str, Any]:
    page: dict[str, Any] = {
        name: answer[name] for name in ("Count", "ScannedCount") if name in answer
    }
    if "Items" in answer:
        page["Items"] = tuple(freeze(item) for item in answer["Items"])
    if "LastEvaluatedKey" in answer:
        page["LastEvaluatedKey"] = freeze(answer["LastEvaluatedKey"])
    return page


def _statements(entries: object) -> list[object]:
    """The PartiQL texts of ``Statements`` or ``TransactStatements`` (``None`` where unreadable)."""
    if not isinstance(entries, list):
        return [None]
    return [entry.get("Statement") if isinstance(entry, dict) else None for entry in entries]


def _in_view(response: dict[str, Any], view: View | None) -> dict[str, Any]:
    """An uncached ``response`` in ``view``'s form (made once: nothing keeps it)."""
    return response if view is None else view(response)[0]()


def _items_in_view(response: dict[str, Any], view: View | None) -> dict[str, Any]:
    """An uncached GetItem ``response`` with its item in an item ``view``'s form."""
    if view is not None and "Item" in response:
        response["Item"] = view(response["Item"])[0]()
    return response


def _batch_in_view(response: dict[str, Any], view: View | None) -> dict[str, Any]:
    """An uncached BatchGetItem ``response``, items and keys in an item ``view``'s form."""
    if view is not None:
        for items in (response.get("Responses") or {}).values():
            items[:] = [view(item)[0]() for item in items]
        for spec in (response.get("UnprocessedKeys") or {}).values():
            spec["Keys"] = [view(key)[0]() for key in spec.get("Keys", ())]
    return response


def _thaw_page(page: Mapping[str, Any]) -> dict[str, Any]:
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

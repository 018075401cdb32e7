"""Page reads: Query and Scan pages (paginators' included) from the query cache.

A page is cached under the fingerprint of its whole request and filed under the
tags a write drops it by (``_rules.tags``): the partition a base-table Query pins,
or table-wide.  Finding the partition needs the table's key schema, asked before
the flight starts, so that a request is classified once and its flight looked up
once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._backend import Backend, read_failed_transiently
from .._rules.failures import Sent
from .._rules.freshness import NO_FRESHNESS, Decision, decide, hit_horizon, serves_if_error
from .._rules.reads import PagePlan, plan_page
from .._rules.responses import (
    HIT_METADATA,
    add_answer_metadata,
    consumed_capacity,
    freeze_page,
    index_read,
    thaw_page,
)
from .._rules.schema import query_partition
from .._rules.tables import spelled_name
from .._rules.tags import StoreKey, Tags, page_tags, table_of
from .._store import PageEntry, entry_size
from .loader import Loader
from .shared import Shared
from .views import View, page_copies, response_in_view


class PageReads:
    """Query and Scan through the query cache; see the module docstring."""

    __slots__ = ("_loader", "_shared")

    def __init__(self, shared: Shared, loader: Loader) -> None:
        self._shared = shared
        self._loader = loader

    async def read(
        self, backend: Backend, operation: str, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """One Query or Scan page, from the cache when fresh.

        With ``view`` (a response view, see ``_engine.views``) the page is answered
        in that view's form, kept beside the cached page, so a hit converts nothing.
        """
        shared = self._shared
        plan = plan_page(operation, request, shared.sites.site_of(backend))
        if plan is None or shared.ttls(plan.table).query <= 0:
            answer = await shared.pass_through(backend, operation, request, "bypass")
            return response_in_view(answer, view)
        shared.check_open()
        if plan.capacity == "INDEXES" and plan.request.get("IndexName") is not None:
            await shared.schemas.get(plan.table, backend)  # local or global: see _unspent
        entry = shared.store.get(plan.store_key)
        stale: PageEntry | None = None
        if isinstance(entry, PageEntry):
            now = shared.clock()
            if now < entry.expires_at:
                return self._hit(plan, entry, view)
            policy = NO_FRESHNESS if entry.lagging else shared.freshness(plan.table)
            decision = decide(policy, now, entry.fresh_until, entry.load_time, shared.rand)
            if decision is Decision.FRESH:
                return self._hit(plan, entry, view)
            if decision is not Decision.MISS:
                if shared.page_flights.get(plan.store_key) is None:
                    tags, readable_consistently = await self._classify(backend, plan)
                    if shared.page_flights.get(plan.store_key) is None:
                        self._start(backend, plan, tags, readable_consistently, background=True)
                        if decision is Decision.REFRESH_AHEAD:
                            entry.counts.refreshes_ahead += 1
                if decision is Decision.STALE_WHILE_REVALIDATE:
                    entry.counts.stale_served += 1
                return self._hit(plan, entry, view)
            stale = entry
        counts = shared.stats.table(plan.table)
        if plan.is_query:
            counts.query_misses += 1
        else:
            counts.scan_misses += 1
        shared.sites.note(plan.table)
        tags, readable_consistently = await self._classify(backend, plan)
        flight = shared.page_flights.get(plan.store_key)
        leader = flight is None
        sent: Callable[[], Sent] | None = None
        if flight is None:
            flight = self._start(backend, plan, tags, readable_consistently)
        else:
            counts.coalesced += 1
            sent = self._loader.sent_by(flight)
        try:
            joined = None if leader else (operation, plan.table)
            waited = await shared.wait(shared.page_flights, (flight,), joined)
            page, answer, _ = waited[plan.store_key]
        except Exception as error:
            # A joined request differs from this one in ReturnConsumedCapacity at most.
            if sent is not None and not self._loader.is_shared(error, sent, (operation, plan.send)):
                answer = await shared.pass_through(backend, operation, request, "miss")
                return response_in_view(answer, view)
            if stale is None or not self._stands_in(plan, stale, error):
                raise  # the leader's own error, or one every caller meets
            return self._answer(plan, stale, view)
        if view is None:
            response = thaw_page(page)
        else:
            response = page_copies(shared.store, plan.store_key, page, view)()
        add_answer_metadata(response, answer, leader, self._unspent(plan))
        return response

    def _stands_in(self, plan: PagePlan, stale: PageEntry, error: Exception) -> bool:
        """Whether ``stale`` answers for a reload failing with ``error`` (stale-if-error):
        DynamoDB's trouble, not the request's, and the entry not dropped since."""
        shared = self._shared
        if stale.lagging or not read_failed_transiently(error):
            return False
        if shared.store.peek(plan.store_key) is not stale:
            return False
        if not serves_if_error(shared.freshness(plan.table), shared.clock(), stale.fresh_until):
            return False
        stale.counts.stale_served += 1
        return True

    def _hit(self, plan: PagePlan, entry: PageEntry, view: View | None) -> dict[str, Any]:
        """The response of a cached page, counted as a hit."""
        if plan.is_query:
            entry.counts.query_hits += 1
        else:
            entry.counts.scan_hits += 1
        return self._answer(plan, entry, view)

    def _answer(self, plan: PagePlan, entry: PageEntry, view: View | None) -> dict[str, Any]:
        """The response of a cached page."""
        if view is None:
            response = thaw_page(entry.page)
        else:
            response = (
                entry.view or page_copies(self._shared.store, plan.store_key, entry.page, view)
            )()
        response["ResponseMetadata"] = HIT_METADATA
        unspent = self._unspent(plan)
        if unspent is not None:
            response["ConsumedCapacity"] = unspent
        return response

    def _unspent(self, plan: PagePlan) -> dict[str, Any] | None:
        """The ``ConsumedCapacity`` of a page read without spending (``None``: not asked).

        ``INDEXES`` of an index read tells a local index from a global one by the
        table's schema, which ``read`` has fetched for such a request.
        """
        if plan.capacity is None:
            return None
        index = plan.request.get("IndexName")
        schema = self._shared.schemas.known(plan.table) if index is not None else None
        local = schema.local_indexes if schema is not None else frozenset()
        return consumed_capacity(
            plan.capacity, spelled_name(plan.table), 0.0, index_read(index, local)
        )

    async def _classify(self, backend: Backend, plan: PagePlan) -> tuple[Tags, bool]:
        """The page's tags, and whether DynamoDB can read it consistently (not a GSI).

        Both may need the table's schema: the partition a base-table Query pins,
        and which indexes are local.
        """
        shared = self._shared
        mode = shared.config.query_invalidation
        index = plan.request.get("IndexName")
        needs_partition = mode == "partition" and plan.reads_one_partition
        needs_indexes = index is not None and shared.fills(plan.table).consistency != "eventual"
        schema = None
        if needs_partition or needs_indexes:
            schema = await shared.schemas.get(plan.table, backend)
        partition = None
        if needs_partition and schema is not None:
            partition = query_partition(plan.request, schema)
        readable = index is None or (schema is not None and index in schema.local_indexes)
        return page_tags(plan.table, mode, partition), readable

    def _start(
        self,
        backend: Backend,
        plan: PagePlan,
        tags: Tags,
        readable_consistently: bool,
        *,
        background: bool = False,
    ) -> Any:
        store_key, operation, send, table = plan.store_key, plan.operation, plan.send, plan.table
        scopes = (store_key, *tags)
        loader, guards = self._loader, self._shared.guards
        #: a page DynamoDB could not read consistently inside a fence lives to its end
        lives_until: float | None = None

        async def fetch() -> dict[StoreKey, Any]:
            nonlocal lives_until
            request = send
            if loader.consistent(table, scopes):
                if readable_consistently:
                    request = {**send, "ConsistentRead": True}
                else:
                    lives_until = guards.fence_end(scopes)
            loaded = await loader.send(
                backend,
                operation,
                request,
                table,
                lives_until=lives_until,
                refresh=background,
                eventual_only=not readable_consistently,
            )
            return {store_key: (freeze_page(loaded.answer), loaded.answer, loaded.age)}

        def keep(key: StoreKey, result: Any, load_time: float) -> None:
            self.store_page(key, result[0], tags, lives_until, load_time, result[2])

        return loader.start(
            self._shared.page_flights,
            (store_key,),
            fetch,
            keep,
            lambda key: scopes,
            lambda: (operation, send),
            tags=tags,
            background=background,
        )

    def store_page(
        self,
        store_key: StoreKey,
        page: dict[str, Any],
        tags: Tags,
        lives_until: float | None = None,
        load_time: float = 0.0,
        age: float = 0.0,
    ) -> None:
        """Cache ``page`` for its table's query TTL counted from DynamoDB's answer,
        ``age`` seconds ago, and at most until ``lives_until``; ``load_time``:
        seconds its load took."""
        shared = self._shared
        now = shared.clock()
        table = table_of(store_key)
        expires_at = shared.expiry(now, age, shared.ttls(table).query, table)
        if expires_at is None or shared.closed:
            return
        lagging = lives_until is not None
        if lives_until is not None:
            if lives_until <= now:
                return
            expires_at = min(expires_at, lives_until)
        horizon = hit_horizon(shared.freshness(table), expires_at, load_time)
        shared.store.put(
            store_key,
            PageEntry(
                page,
                horizon,
                tags,
                entry_size(store_key, page),
                expires_at,
                load_time,
                lagging,
                counts=shared.stats.table(table),
            ),
        )

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

from .._backend import Backend
from .._rules.failures import Sent
from .._rules.policy import expiry
from .._rules.reads import PagePlan, plan_page
from .._rules.responses import (
    HIT_METADATA,
    add_answer_metadata,
    freeze_page,
    thaw_page,
    zero_capacity,
)
from .._rules.schema import query_partition
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
        plan = plan_page(operation, request)
        if plan is None or shared.ttls(plan.table).query <= 0:
            return response_in_view(await shared.call(backend, operation, request), view)
        shared.check_open()
        stats = shared.stats
        entry = shared.store.get(plan.store_key)
        if isinstance(entry, PageEntry) and shared.clock() < entry.expires_at:
            if plan.is_query:
                stats.query_hits += 1
            else:
                stats.scan_hits += 1
            if view is None:
                response = thaw_page(entry.page)
            else:
                response = (
                    entry.view or page_copies(shared.store, plan.store_key, entry.page, view)
                )()
            response["ResponseMetadata"] = HIT_METADATA
            if plan.wants_capacity:
                response["ConsumedCapacity"] = zero_capacity(plan.table)
            return response
        if plan.is_query:
            stats.query_misses += 1
        else:
            stats.scan_misses += 1
        tags = await self._tags(backend, plan)
        flight = shared.page_flights.get(plan.store_key)
        leader = flight is None
        sent: Callable[[], Sent] | None = None
        if flight is None:
            flight = self._start(backend, plan, tags)
        else:
            stats.coalesced += 1
            sent = self._loader.sent_by(flight)
        try:
            page, answer = (await shared.wait(shared.page_flights, (flight,)))[plan.store_key]
        except Exception as error:
            # A joined request differs from this one in ReturnConsumedCapacity at most.
            if sent is None or self._loader.is_shared(error, sent, (operation, plan.send)):
                raise  # the leader's own error, or one every caller meets
            return response_in_view(await shared.call(backend, operation, request), view)
        if view is None:
            response = thaw_page(page)
        else:
            response = page_copies(shared.store, plan.store_key, page, view)()
        add_answer_metadata(response, answer, request, plan.table, leader)
        return response

    async def _tags(self, backend: Backend, plan: PagePlan) -> Tags:
        mode = self._shared.config.query_invalidation
        partition = None
        if mode == "partition" and plan.reads_one_partition:
            schema = await self._shared.schemas.get(plan.table, backend)
            partition = None if schema is None else query_partition(plan.request, schema)
        return page_tags(plan.table, mode, partition)

    def _start(self, backend: Backend, plan: PagePlan, tags: Tags) -> Any:
        store_key, operation, send = plan.store_key, plan.operation, plan.send

        async def fetch() -> dict[StoreKey, Any]:
            answer = await self._loader.send(backend, operation, send)
            return {store_key: (freeze_page(answer), answer)}

        def keep(key: StoreKey, result: Any) -> None:
            self.store_page(key, result[0], tags)

        return self._loader.start(
            self._shared.page_flights,
            (store_key,),
            fetch,
            keep,
            lambda key: (key, *tags),
            lambda: (operation, send),
            tags=tags,
        )

    def store_page(self, store_key: StoreKey, page: dict[str, Any], tags: Tags) -> None:
        shared = self._shared
        expires_at = expiry(shared.clock(), shared.ttls(table_of(store_key)).query)
        if expires_at is None or shared.closed:
            return
        shared.store.put(store_key, PageEntry(page, expires_at, tags, entry_size(store_key, page)))

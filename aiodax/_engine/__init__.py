"""The engine: what DynamoDB operations mean for the cache, as units over shared state.

``Engine`` builds the units and is what the facades talk to:

==================  ==========================================================
``items``           GetItem (``items.py``), and the item entries every unit stores
``batch``           BatchGetItem key by key (``batch.py``)
``pages``           Query and Scan pages (``pages.py``)
``writes``          write-through of every write, PartiQL included (``writes.py``)
``invalidator``     the only code that drops entries; the bus seam (``invalidation.py``)
``loader``          the only code that sends a read; the shared-tier seam (``loader.py``)
``shared``          store, flights, write guards (``guards.py``), schemas, counters
==================  ==========================================================

The rules each unit applies are pure and live in ``_rules``; the hit paths, the
one place where speed beats structure, in ``fast_path.py`` (the keys they read in
``hit_keys.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from .._backend import Backend
from .._config import CacheConfig
from .._observe import Observer
from .._rules.policy import RetryPolicy
from .._rules.tables import table_token
from .._rules.wire import ItemKey
from .._tiers import Invalidation, InvalidationBus, SharedTier
from .._tiers.local import DirectLoads, NoBus
from .batch import BatchReads
from .fast_path import bind_batch_get_item, bind_client_get_item, bind_table_get_item
from .hit_keys import python_store_key, wire_store_key
from .invalidation import Invalidator
from .items import ItemReads
from .loader import Loader
from .pages import PageReads
from .shared import Shared
from .views import View
from .writes import WriteThrough

__all__ = ["Engine", "View"]


class Engine:
    """The units of one ``Cache``, wired together; see the module docstring."""

    __slots__ = (
        "_bus",
        "_tier",
        "batch",
        "invalidator",
        "items",
        "loader",
        "pages",
        "shared",
        "writes",
    )

    def __init__(
        self,
        config: CacheConfig,
        *,
        retry: RetryPolicy | None = None,
        bus: InvalidationBus | None = None,
        tier: SharedTier | None = None,
    ) -> None:
        self._bus = bus or NoBus()
        self._tier = tier or DirectLoads()
        self.shared = shared = Shared(config, retry or RetryPolicy())
        self.loader = Loader(shared, self._tier)
        self.invalidator = Invalidator(shared, self._bus)
        self.items = ItemReads(shared, self.loader)
        self.batch = BatchReads(shared, self.items, self.loader)
        self.pages = PageReads(shared, self.loader)
        self.writes = WriteThrough(shared, self.items, self.invalidator)

    @property
    def closed(self) -> bool:
        return self.shared.closed

    def bind_client_get_item(
        self, backend: Backend
    ) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
        return bind_client_get_item(self.shared, backend, self.items.get_item)

    def bind_table_get_item(
        self,
        table: str,
        backend: Backend,
        *,
        key_of: Callable[[dict[Any, Any]], ItemKey | None],
        view: View,
        meta: Any,
        general: Callable[[dict[str, Any]], Awaitable[Any]],
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        """The resource's ``table.get_item``; ``backend`` is the client it reaches."""
        token = table_token(table, self.shared.sites.site_of(backend))
        return bind_table_get_item(
            self.shared, token, key_of=key_of, view=view, meta=meta, general=general
        )

    def bind_client_batch_get_item(
        self, backend: Backend
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def general(request: dict[str, Any]) -> Any:
            return await self.batch.batch_get_item(backend, request)

        site = self.shared.sites.site_of(backend)
        return bind_batch_get_item(self.shared, site, wire_store_key, None, general)

    def bind_resource_batch_get_item(
        self,
        backend: Backend,
        *,
        key_of: Callable[[dict[Any, Any]], ItemKey | None],
        view: View,
        general: Callable[[dict[str, Any]], Awaitable[Any]],
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        site = self.shared.sites.site_of(backend)
        return bind_batch_get_item(self.shared, site, python_store_key(key_of), view, general)

    async def change_table(
        self, backend: Backend, operation: str, request: Mapping[str, Any]
    ) -> Any:
        """Create/Delete/UpdateTable: afterwards, nothing known of the table holds."""
        try:
            return await self.shared.call(backend, operation, request)
        finally:
            self.table_changed(request.get("TableName"))

    def table_changed(self, table: object) -> None:
        """``table`` (a name or an ARN) was created, deleted or updated: forget its
        schemas and entries, on every site."""
        if isinstance(table, str):
            self.invalidator.forget_table(table)

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` of every request sent and coalesced wait (``_observe``)."""
        self.shared.observers += (observer,)

    def remove_observer(self, observer: Observer) -> None:
        shared = self.shared
        shared.observers = tuple(known for known in shared.observers if known is not observer)

    async def start(self) -> None:
        """Start the tiers' background work (the bus's listener)."""
        await self._tier.start(self)
        await self._bus.start(self)

    # ------------------------------------------------------ TierHost (``_tiers``)

    def apply(self, invalidation: Invalidation) -> None:
        self.invalidator.apply(invalidation)

    def degrade(self, ttl: float | None) -> None:
        shared = self.shared
        shared.degraded_ttl = ttl
        if ttl is not None:
            shared.store.expire_by(shared.clock() + ttl)

    def bypass(self, table: str, on: bool) -> None:
        shared = self.shared
        if on:
            shared.bypassed.add(table)
            self.invalidator.drop_table(table, publish=False)
        else:
            shared.bypassed.discard(table)

    async def aclose(self) -> None:
        shared = self.shared
        shared.closed = True
        await shared.item_flights.aclose()
        await shared.page_flights.aclose()
        await shared.schemas.aclose()
        shared.store.clear()
        # The tier first: what it still sends (a lease given up) needs the
        # connections the bus closes.
        await self._tier.aclose()
        await self._bus.aclose()

    def stats(self) -> dict[str, Any]:
        shared = self.shared
        store = shared.store
        return shared.stats.snapshot(
            evicted_count=store.evicted_count,
            evicted_size=store.evicted_size,
            current_size=store.current_size,
            current_entries=len(store),
            in_flight=shared.in_flight,
            writes_in_flight=shared.guards.writes_in_flight,
            tier={**self._tier.stats(), **self._bus.stats()},
        )

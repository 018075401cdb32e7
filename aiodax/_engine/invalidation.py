"""The drop unit: the only code that removes entries, and tells the other processes.

Every drop goes through here: a write's keys (stored or not), a failed write's,
``Cache.invalidate*``, a table created, deleted or updated, and invalidations that
arrive from other processes.  A drop names a table by any of its tokens and
reaches all of them: its name and ARN, on every site (``_rules.tables``); what it
publishes names the table by its bare name.  Each drop, in one step with no await:

1. detaches the flights loading what it drops (later callers start afresh),
   found by what they are filed under, the names of the entries they would fill
   (``Shared.item_flights``, a page's tags): a drop costs what it drops, not what
   is in flight,
2. bumps the generations of its scopes, so fills already out store nothing
   (``guards``),
3. discards the entries, items by key and pages by tag (``_rules.tags``),
4. publishes an ``Invalidation`` on the bus, unless it came from the bus.
"""

from __future__ import annotations

from collections.abc import Hashable

from .._log import LOG as _LOG
from .._rules.tables import TableToken, bare_name
from .._rules.tags import item_key, pages_dropped_by_write, table_tags
from .._rules.wire import ItemKey
from .._tiers import Invalidation, InvalidationBus
from .guards import EVERYTHING
from .shared import Shared


class Invalidator:
    """Drops entries and publishes what it dropped; see the module docstring."""

    __slots__ = ("_bus", "_shared")

    def __init__(self, shared: Shared, bus: InvalidationBus) -> None:
        self._shared = shared
        self._bus = bus

    def drop_item(
        self,
        table: TableToken,
        key: ItemKey,
        *,
        discard: bool = True,
        publish: bool = True,
        held_until: float | None = None,
    ) -> None:
        """Drop an item (any projection) and the pages a write to it makes stale, under
        every token of its table (``_rules.tables``).

        ``discard=False`` keeps the item's entry under ``table`` itself for its
        writer to replace (a write-through stores the new image right after).
        ``held_until``: nothing is stored under what was dropped until then
        (``guards``).
        """
        for alias in self._shared.sites.aliases(table):
            self._drop_item(alias, key, discard or alias != table, held_until)
        if publish:
            self._bus.publish(Invalidation(bare_name(table), key))

    def _drop_item(
        self, table: TableToken, key: ItemKey, discard: bool, held_until: float | None
    ) -> None:
        shared = self._shared
        store_key = item_key(table, key)
        fenced_until = self._fence_end(table)
        shared.item_flights.detach((table, key, None))  # the whole item's load
        shared.item_flights.detach_filed(store_key)  # its projections' (``item_flight_labels``)
        shared.guards.dropped((store_key,), held_until=held_until, fenced_until=fenced_until)
        if discard:
            shared.stats.item_invalidations += shared.store.discard(store_key)
        schema = shared.schemas.known(table)
        partition = None if schema is None else schema.partition_of(key)
        mode = shared.config.query_invalidation
        tags = pages_dropped_by_write(table, mode, partition)
        dropped = self._drop_pages(tags, held_until, fenced_until)
        if dropped and mode == "partition" and partition is None:
            _LOG.info(
                "aiodax: a drop of an item of %s took every cached page of the table "
                "(%d): its key schema is not known in this process",
                bare_name(table),
                dropped,
            )

    def drop_table(
        self, table: TableToken, *, publish: bool = True, held_until: float | None = None
    ) -> None:
        """Drop every item and page of ``table``, under every token of it."""
        for alias in self._shared.sites.aliases(table):
            self._drop_table(alias, held_until)
        if publish:
            self._bus.publish(Invalidation(bare_name(table)))

    def _drop_table(self, table: TableToken, held_until: float | None) -> None:
        shared = self._shared
        items, pages = table_tags(table)
        shared.item_flights.detach_filed(items)
        shared.page_flights.detach_filed(pages)
        shared.guards.dropped(
            (items, pages), held_until=held_until, fenced_until=self._fence_end(table)
        )
        shared.stats.item_invalidations += shared.store.discard_tagged(items)
        shared.stats.query_invalidations += shared.store.discard_tagged(pages)

    def forget_table(self, table: TableToken) -> None:
        """``table`` was created, deleted or updated: forget its schemas and entries."""
        for alias in self._shared.sites.aliases(table):
            self._shared.schemas.forget(alias)
        self.drop_table(table)

    def drop_all(self, *, publish: bool = True, held_until: float | None = None) -> None:
        """Drop everything."""
        shared = self._shared
        shared.item_flights.detach_all()
        shared.page_flights.detach_all()
        fence = shared.config.longest_fence
        shared.guards.dropped(
            (EVERYTHING,),
            held_until=held_until,
            fenced_until=shared.clock() + fence if fence > 0 else None,
        )
        shared.store.clear()
        if publish:
            self._bus.publish(Invalidation(None))

    def apply(self, invalidation: Invalidation) -> None:
        """Drop what another process's ``invalidation`` names, without publishing it again.

        It tells of a write elsewhere: a write in flight here to what it names
        invalidates instead of storing (two processes writing one item end at
        "absent", never at the older value)."""
        self._shared.guards.written_elsewhere(invalidation.table, invalidation.key)
        if invalidation.table is None:
            self.drop_all(publish=False)
        elif invalidation.key is None:
            self.drop_table(invalidation.table, publish=False)
        else:
            self.drop_item(invalidation.table, invalidation.key, publish=False)

    async def published(self) -> None:
        """Wait (briefly: the bus's own bound) until what was published went out."""
        await self._bus.flush()

    def _fence_end(self, table: TableToken) -> float | None:
        """Until when fills of what a drop of ``table``'s entries names read consistently."""
        fills = self._shared.fills(table)
        return self._shared.clock() + fills.fence if fills.fences else None

    def _drop_pages(
        self, tags: tuple[Hashable, ...], held_until: float | None, fenced_until: float | None
    ) -> int:
        """Drop the pages filed under ``tags``; how many were cached."""
        if not tags:
            return 0
        shared = self._shared
        shared.guards.dropped(tags, held_until=held_until, fenced_until=fenced_until)
        dropped = 0
        for tag in tags:
            shared.page_flights.detach_filed(tag)
            dropped += shared.store.discard_tagged(tag)
        shared.stats.query_invalidations += dropped
        return dropped

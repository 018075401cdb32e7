"""Item reads: GetItem from the item cache, misses coalesced; storing item images.

An item's entry holds its whole image and any projections cached of it.  A
projection of top-level attributes is answered from the whole image; any other
is a variant of its own, stored beside it.  A missing item is cached too (a
*negative* entry, for ``negative_ttl``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .._backend import Backend, read_failed_transiently
from .._flight import Flight
from .._rules.failures import Sent
from .._rules.freshness import Decision, decide, hit_horizon, serves_if_error
from .._rules.projection import Projection, project, top_level_names
from .._rules.reads import GetPlan, ItemFlightKey, plan_get
from .._rules.responses import HIT_METADATA, add_answer_metadata, consumed_capacity
from .._rules.tables import TableToken, spelled_name
from .._rules.tags import item_key, item_tags
from .._rules.wire import Image, ItemKey, freeze, thaw
from .._store import ItemEntry, Store, entry_size
from .loader import ItemResult, Loader, item_flight_scopes
from .shared import Shared
from .views import View, get_response_in_view, item_copies


class ItemReads:
    """GetItem through the cache, and the item entries every unit stores."""

    __slots__ = ("_loader", "_shared")

    def __init__(self, shared: Shared, loader: Loader) -> None:
        self._shared = shared
        self._loader = loader

    def lookup(
        self,
        table: TableToken,
        key: ItemKey,
        projection: Projection | None,
        reload: Callable[[], object] | None = None,
    ) -> ItemResult | None:
        """The cached image of ``key`` under ``projection`` the read may serve, or
        ``None``: it must go out.

        A whole item past its hit horizon is served as the table's freshness
        policies decide (``_rules.freshness``); ``reload`` starts its background
        reload (without it, only a fresh entry is served).  A projection is served
        while fresh only.
        """
        shared = self._shared
        entry = shared.store.get(item_key(table, key))
        if not isinstance(entry, ItemEntry):
            return None
        now = shared.clock()
        if projection is None:
            if now < entry.expires_at:
                return ItemResult(entry.image)
            return self._past_horizon(table, key, entry, now, reload)
        found = entry.projections.get(projection) if entry.projections else None
        if found is not None and now < found[1]:
            return ItemResult(found[0])
        names = top_level_names(projection)
        if names is None or not now < entry.fresh_until:
            return None
        whole = entry.image
        return ItemResult(None if whole is None else project(whole, names))

    def _past_horizon(
        self,
        table: TableToken,
        key: ItemKey,
        entry: ItemEntry,
        now: float,
        reload: Callable[[], object] | None,
    ) -> ItemResult | None:
        shared = self._shared
        decision = decide(
            shared.freshness(table), now, entry.fresh_until, entry.load_time, shared.rand
        )
        if decision is Decision.FRESH:
            return ItemResult(entry.image)
        if decision is Decision.MISS or reload is None:
            return ItemResult(entry.image) if now < entry.fresh_until else None
        if shared.item_flights.get((table, key, None)) is None:
            reload()
            if decision is Decision.REFRESH_AHEAD:
                entry.counts.refreshes_ahead += 1
        if decision is Decision.STALE_WHILE_REVALIDATE:
            entry.counts.stale_served += 1
        return ItemResult(entry.image)

    def stale_if_error(
        self, table: TableToken, key: ItemKey, projection: Projection | None, error: Exception
    ) -> ItemResult | None:
        """The expired image of ``key`` under ``projection`` that stands in for a reload
        failing with ``error``, counted as served stale, or ``None``: the caller hears
        the error.

        Only DynamoDB's own trouble qualifies (``_backend.read_failed_transiently``).
        """
        if not read_failed_transiently(error):
            return None
        stale = self.stale(table, key, projection)
        if stale is not None:
            self._shared.stats.table(table).stale_served += 1
        return stale

    def stale(
        self, table: TableToken, key: ItemKey, projection: Projection | None
    ) -> ItemResult | None:
        """The image of ``key`` under ``projection`` within its table's stale-if-error
        window, or ``None``.

        Only an entry still in the store qualifies: a write through the cache has
        dropped or replaced any older than it.  A projection is answered by its own
        variant, or from the whole item when it names top-level attributes, as a
        fresh one is (``lookup``).
        """
        shared = self._shared
        entry = shared.store.get(item_key(table, key))
        if not isinstance(entry, ItemEntry):
            return None
        policy = shared.freshness(table)
        now = shared.clock()
        if projection is None:
            if serves_if_error(policy, now, entry.fresh_until):
                return ItemResult(entry.image)
            return None
        found = entry.projections.get(projection) if entry.projections else None
        if found is not None and serves_if_error(policy, now, found[1]):
            return ItemResult(found[0])
        names = top_level_names(projection)
        if names is None or not serves_if_error(policy, now, entry.fresh_until):
            return None
        whole = entry.image
        return ItemResult(None if whole is None else project(whole, names))

    def hit(
        self, plan: GetPlan, view: View | None = None, backend: Backend | None = None
    ) -> dict[str, Any] | None:
        """The answer to a GetItem from the cache, or ``None`` if it must go out.

        With ``view``, the item is in that view's form (see ``_engine.views``).  A
        closed cache has no entries, so it has no hits either.  With ``backend``, an
        entry near or past its expiry may be served while a reload through it runs.
        """
        reload = None
        if backend is not None and plan.projection is None:

            def reload() -> object:
                return self._start(backend, plan, background=True)

        found = self.lookup(plan.table, plan.key, plan.projection, reload)
        if found is None:
            return None
        counts = self._shared.stats.table(plan.table)
        counts.item_hits += 1
        counts.negative_hits += found.image is None
        return _hit_answer(self._shared.store, plan, found.image, view)

    async def get_item(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """``GetItem``, cached.  With ``view`` (an item view) the item is answered in
        that view's form, kept with the entry."""
        shared = self._shared
        plan = plan_get(request, shared.sites.site_of(backend))
        if plan is None:
            answer = await shared.pass_through(backend, "get_item", request, "bypass")
            return get_response_in_view(answer, view)
        hit = self.hit(plan, view, backend)
        if hit is not None:
            return hit
        shared.check_open()
        shared.sites.note(plan.table)
        counts = shared.stats.table(plan.table)
        counts.item_misses += 1
        flight_key = plan.flight_key
        send = plan.send
        loader = self._loader
        flight = shared.item_flights.get(flight_key)
        leader = flight is None
        sent: Callable[[], Sent] | None = None
        if flight is None:
            flight = self._start(backend, plan)
        else:
            counts.coalesced += 1
            sent = loader.sent_by(flight)
        try:
            joined = None if leader else ("get_item", plan.table)
            waited = await shared.wait(shared.item_flights, (flight,), joined)
            result: ItemResult = waited[flight_key]
        except Exception as error:
            if sent is not None and not loader.is_shared(error, sent, ("get_item", send)):
                # The joined request failed for reasons of its own: this one is sent as
                # it came, as it would have been without the cache.
                answer = await shared.pass_through(backend, "get_item", request, "miss")
                return get_response_in_view(answer, view)
            stale = self.stale_if_error(plan.table, plan.key, plan.projection, error)
            if stale is None:
                raise  # the leader's own error, or one every caller meets
            return _hit_answer(self._shared.store, plan, stale.image, view)
        if result.unprocessed:
            # Joined a BatchGetItem that DynamoDB kept refusing this key: GetItem
            # has no "unprocessed", so ask for the item on the caller's behalf.
            answer = await shared.pass_through(backend, "get_item", request, "miss")
            return get_response_in_view(answer, view)
        image = result.image
        # A joined BatchGetItem flight carries no GetItem answer of its own.
        answer = result.answer or {"ResponseMetadata": HIT_METADATA}
        if image is None:
            response = {}
        elif view is None:
            response = {"Item": thaw(image)}
        else:
            copies = item_copies(shared.store, plan.table, plan.key, plan.projection, image, view)
            response = {"Item": copies()}
        unspent = None
        if plan.capacity is not None:
            unspent = consumed_capacity(plan.capacity, spelled_name(plan.table))
        add_answer_metadata(response, answer, leader, unspent)
        return response

    def _start(
        self, backend: Backend, plan: GetPlan, *, background: bool = False
    ) -> Flight[ItemFlightKey, ItemResult]:
        """The flight of ``plan``'s GetItem; a ``background`` one is awaited by nobody."""
        flight_key = plan.flight_key
        send = plan.send
        loader = self._loader

        async def fetch() -> dict[ItemFlightKey, ItemResult]:
            request = send
            if loader.consistent(flight_key[0], item_flight_scopes(flight_key)):
                request = {**send, "ConsistentRead": True}
            loaded = await loader.send(
                backend, "get_item", request, flight_key[0], flight_key[1], refresh=background
            )
            answer = loaded.answer
            return {flight_key: ItemResult(freeze(answer.get("Item")), answer, age=loaded.age)}

        return loader.start(
            self._shared.item_flights,
            (flight_key,),
            fetch,
            self.keep,
            item_flight_scopes,
            lambda: ("get_item", send),
            background=background,
        )

    def keep(self, flight_key: ItemFlightKey, result: ItemResult, load_time: float) -> None:
        """Store what a flight loaded for ``flight_key`` (nothing for an unprocessed key)
        in ``load_time`` seconds."""
        if not result.unprocessed:
            table, key, projection = flight_key
            self.store_image(table, key, projection, result.image, load_time, result.age)

    def store_image(
        self,
        table: TableToken,
        key: ItemKey,
        projection: Projection | None,
        image: Image,
        load_time: float | None = None,
        age: float = 0.0,
    ) -> None:
        """Cache ``image`` (``None``: missing) as ``key``'s item or its ``projection``,
        loaded in ``load_time`` seconds (``None``: a write's, so the last load's) and
        read from DynamoDB ``age`` seconds ago (its TTL counts from then)."""
        shared = self._shared
        if shared.closed:
            return  # a write that finished after aclose() must not refill the cache
        ttls = shared.ttls(table)
        now = shared.clock()
        expires_at = shared.expiry(now, age, ttls.negative if image is None else ttls.item, table)
        store_key = item_key(table, key)
        if expires_at is None:
            shared.store.discard(store_key)
            return
        counts = shared.stats.table(table)
        if projection is None:
            if load_time is None:
                old = shared.store.peek(store_key)
                load_time = old.load_time if isinstance(old, ItemEntry) else 0.0
            horizon = hit_horizon(shared.freshness(table), expires_at, load_time)
            # The whole item replaces every projection cached before: any of them
            # may predate it.
            entry = ItemEntry(
                image, horizon, None, item_tags(table), 0, expires_at, load_time, counts=counts
            )
        else:
            old = shared.store.peek(store_key)
            projections = {}
            whole, whole_expires_at, whole_until, whole_load = None, -math.inf, -math.inf, 0.0
            if isinstance(old, ItemEntry):
                if old.projections:
                    projections = {p: v for p, v in old.projections.items() if now < v[1]}
                whole, whole_expires_at = old.image, old.expires_at
                whole_until, whole_load = old.fresh_until, old.load_time
            projections[projection] = (image, expires_at)
            entry = ItemEntry(
                whole,
                whole_expires_at,
                projections,
                item_tags(table),
                0,
                whole_until,
                whole_load,
                counts=counts,
            )
        entry.size = entry_size(store_key, (entry.image, entry.projections))
        shared.store.put(store_key, entry)


def _hit_answer(store: Store, plan: GetPlan, image: Image, view: View | None) -> dict[str, Any]:
    """A GetItem response of a cached ``image``."""
    if image is None:
        response: dict[str, Any] = {"ResponseMetadata": HIT_METADATA}
    elif view is None:
        response = {"Item": image.copy(), "ResponseMetadata": HIT_METADATA}
    else:
        copies = item_copies(store, plan.table, plan.key, plan.projection, image, view)
        response = {"Item": copies(), "ResponseMetadata": HIT_METADATA}
    mode = plan.capacity
    if mode is not None:
        response["ConsumedCapacity"] = consumed_capacity(mode, spelled_name(plan.table))
    return response

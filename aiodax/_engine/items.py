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

from .._backend import Backend
from .._rules.failures import Sent
from .._rules.policy import expiry
from .._rules.projection import Projection, project, top_level_names
from .._rules.reads import GetPlan, ItemFlightKey, plan_get
from .._rules.responses import HIT_METADATA, add_answer_metadata, zero_capacity
from .._rules.tables import TableToken, spelled_name
from .._rules.tags import item_key, item_tags
from .._rules.wire import Image, ItemKey, freeze, thaw
from .._store import ItemEntry, entry_size
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
        self, table: TableToken, key: ItemKey, projection: Projection | None
    ) -> ItemResult | None:
        """The fresh cached image of ``key`` under ``projection``, or ``None``: not cached."""
        entry = self._shared.store.get(item_key(table, key))
        if not isinstance(entry, ItemEntry):
            return None
        now = self._shared.clock()
        if projection is None:
            return ItemResult(entry.image) if now < entry.expires_at else None
        found = entry.projections.get(projection) if entry.projections else None
        if found is not None and now < found[1]:
            return ItemResult(found[0])
        names = top_level_names(projection)
        if names is None or not now < entry.expires_at:
            return None
        whole = entry.image
        return ItemResult(None if whole is None else project(whole, names))

    def hit(self, plan: GetPlan, view: View | None = None) -> dict[str, Any] | None:
        """The answer to a GetItem from the cache, or ``None`` if it must go out.

        With ``view``, the item is in that view's form (see ``_engine.views``).  A
        closed cache has no entries, so it has no hits either.
        """
        found = self.lookup(plan.table, plan.key, plan.projection)
        if found is None:
            return None
        image = found.image
        stats = self._shared.stats
        stats.item_hits += 1
        if image is None:
            stats.negative_hits += 1
            response: dict[str, Any] = {"ResponseMetadata": HIT_METADATA}
        elif view is None:
            response = {"Item": image.copy(), "ResponseMetadata": HIT_METADATA}
        else:
            copies = item_copies(
                self._shared.store, plan.table, plan.key, plan.projection, image, view
            )
            response = {"Item": copies(), "ResponseMetadata": HIT_METADATA}
        if plan.wants_capacity:
            response["ConsumedCapacity"] = zero_capacity(spelled_name(plan.table))
        return response

    async def get_item(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """``GetItem``, cached.  With ``view`` (an item view) the item is answered in
        that view's form, kept with the entry."""
        shared = self._shared
        plan = plan_get(request, shared.sites.site_of(backend))
        if plan is None:
            return get_response_in_view(await shared.call(backend, "get_item", request), view)
        hit = self.hit(plan, view)
        if hit is not None:
            return hit
        shared.check_open()
        shared.sites.note(plan.table)
        shared.stats.item_misses += 1
        flight_key = plan.flight_key
        send = plan.send
        loader = self._loader
        flight = shared.item_flights.get(flight_key)
        leader = flight is None
        sent: Callable[[], Sent] | None = None
        if flight is None:

            async def fetch() -> dict[ItemFlightKey, ItemResult]:
                request = send
                if loader.consistent(flight_key[0], item_flight_scopes(flight_key)):
                    request = {**send, "ConsistentRead": True}
                answer = await loader.send(backend, "get_item", request)
                return {flight_key: ItemResult(freeze(answer.get("Item")), answer)}

            flight = loader.start(
                shared.item_flights,
                (flight_key,),
                fetch,
                self.keep,
                item_flight_scopes,
                lambda: ("get_item", send),
            )
        else:
            shared.stats.coalesced += 1
            sent = loader.sent_by(flight)
        try:
            result: ItemResult = (await shared.wait(shared.item_flights, (flight,)))[flight_key]
        except Exception as error:
            if sent is None or loader.is_shared(error, sent, ("get_item", send)):
                raise  # the leader's own error, or one every caller meets
            # The joined request failed for reasons of its own: this one is sent as
            # it came, as it would have been without the cache.
            return get_response_in_view(await shared.call(backend, "get_item", request), view)
        if result.unprocessed:
            # Joined a BatchGetItem that DynamoDB kept refusing this key: GetItem
            # has no "unprocessed", so ask for the item on the caller's behalf.
            return get_response_in_view(await shared.call(backend, "get_item", request), view)
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
        add_answer_metadata(response, answer, request, spelled_name(plan.table), leader)
        return response

    def keep(self, flight_key: ItemFlightKey, result: ItemResult) -> None:
        """Store what a flight loaded for ``flight_key`` (nothing for an unprocessed key)."""
        if not result.unprocessed:
            table, key, projection = flight_key
            self.store_image(table, key, projection, result.image)

    def store_image(
        self, table: TableToken, key: ItemKey, projection: Projection | None, image: Image
    ) -> None:
        """Cache ``image`` (``None``: missing) as ``key``'s item or its ``projection``."""
        shared = self._shared
        if shared.closed:
            return  # a write that finished after aclose() must not refill the cache
        ttls = shared.ttls(table)
        now = shared.clock()
        expires_at = expiry(now, ttls.negative if image is None else ttls.item)
        store_key = item_key(table, key)
        if expires_at is None:
            shared.store.discard(store_key)
            return
        if projection is None:
            # The whole item replaces every projection cached before: any of them
            # may predate it.
            entry = ItemEntry(image, expires_at, None, item_tags(table), 0)
        else:
            old = shared.store.peek(store_key)
            projections = {}
            whole, whole_expires_at = None, -math.inf
            if isinstance(old, ItemEntry):
                if old.projections:
                    projections = {p: v for p, v in old.projections.items() if now < v[1]}
                whole, whole_expires_at = old.image, old.expires_at
            projections[projection] = (image, expires_at)
            entry = ItemEntry(whole, whole_expires_at, projections, item_tags(table), 0)
        entry.size = entry_size(store_key, (entry.image, entry.projections))
        shared.store.put(store_key, entry)

"""Batch reads: BatchGetItem answered key by key from the item cache.

Each key is a hit, joins a flight already loading it (a GetItem's or another
batch's), or goes into the one BatchGetItem this call sends for the rest.  The
answer is assembled as DynamoDB's: ``Responses`` per table, ``UnprocessedKeys``
for keys DynamoDB kept refusing after the retries, in the caller's own form.
Under stale-if-error, keys whose load failed for DynamoDB's reasons are answered
from their expired entries and the rest returned unprocessed (``_stand_ins``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from typing import Any

from .._backend import Backend, read_failed_transiently
from .._flight import Flight
from .._rules.failures import Sent
from .._rules.reads import BatchPlan, ItemFlightKey, plan_batch_get
from .._rules.responses import batch_metadata, consumed_capacity
from .._rules.tables import spelled_name
from .._rules.wire import WireItem, thaw
from .items import ItemReads
from .loader import UNPROCESSED, ItemResult, Loader, Spent, batch_request, item_flight_scopes
from .shared import Shared
from .views import View, batch_response_in_view, item_copies


class BatchReads:
    """BatchGetItem through the item cache; see the module docstring."""

    __slots__ = ("_items", "_loader", "_shared")

    def __init__(self, shared: Shared, items: ItemReads, loader: Loader) -> None:
        self._shared = shared
        self._items = items
        self._loader = loader

    async def batch_get_item(
        self, backend: Backend, request: dict[str, Any], view: View | None = None
    ) -> dict[str, Any]:
        """``BatchGetItem``, per key cached.  With ``view`` (an item view), items and
        unprocessed keys are answered in its form, as ``ItemReads.get_item``'s."""
        shared = self._shared
        plan = plan_batch_get(request, shared.sites.site_of(backend))
        if plan is not None:
            for table in plan.tables:
                shared.sites.note(table)
            # One DescribeTable per table, ever: keys of other attributes are refused.
            schemas = await shared.schemas.get_all(plan.tables, backend)
            if not plan.keys_match(schemas):
                plan = None
        if plan is None:
            answer = await shared.pass_through(backend, "batch_get_item", request, "bypass")
            return batch_response_in_view(answer, view)
        shared.check_open()
        spent = Spent()
        results, loaded, joined = await self._gather(backend, plan, spent)
        response: dict[str, Any] = {
            "Responses": self._responses(plan, results, view),
            "UnprocessedKeys": self._unprocessed(plan, results, view),
            "ResponseMetadata": batch_metadata(loaded, spent.metadata, joined),
        }
        mode = plan.capacity
        if mode is not None:
            # BatchGetItem reads tables, never indexes: INDEXES adds only "Table".
            response["ConsumedCapacity"] = [
                consumed_capacity(mode, spelled, spent.units.get(spelled, 0.0))
                for spelled in map(spelled_name, plan.tables)
            ]
        return response

    async def _gather(
        self, backend: Backend, plan: BatchPlan, spent: Spent
    ) -> tuple[dict[ItemFlightKey, ItemResult], bool, bool]:
        """Every key's result: hits, joined flights, one load for the rest; whether
        this call sent a request of its own, and whether it joined others'.

        A joined flight that failed for reasons of its own request (see
        ``Loader.is_shared``) costs its keys one BatchGetItem of this caller's own.
        """
        shared = self._shared
        stats = shared.stats
        flights = shared.item_flights
        loader = self._loader
        results: dict[ItemFlightKey, ItemResult] = {}
        #: each joined flight: what it sends, and the keys this batch wants of it
        joined: dict[Flight[ItemFlightKey, Any], tuple[Callable[[], Sent], list[ItemFlightKey]]]
        joined = {}
        to_load: list[ItemFlightKey] = []
        #: keys served from entries near or past expiry, to reload in the background
        to_reload: list[ItemFlightKey] = []
        for flight_key in plan.keys:
            found = self._items.lookup(
                *flight_key,
                partial(to_reload.append, flight_key) if flight_key[2] is None else None,
            )
            counts = stats.table(flight_key[0])
            if found is not None:
                counts.item_hits += 1
                counts.negative_hits += found.image is None
                results[flight_key] = found
                continue
            counts.item_misses += 1
            flight = flights.get(flight_key)
            if flight is not None:
                counts.coalesced += 1
                if flight not in joined:
                    joined[flight] = (loader.sent_by(flight), [])
                joined[flight][1].append(flight_key)
            else:
                to_load.append(flight_key)
        if to_reload:
            self._reload(backend, plan, tuple(to_reload))
        waiting = list(joined)
        own = None
        if to_load:
            load_keys = tuple(to_load)

            async def fetch() -> dict[ItemFlightKey, ItemResult]:
                return await loader.batch(backend, plan, load_keys, spent)

            own = loader.start(
                flights,
                load_keys,
                fetch,
                self._items.keep,
                item_flight_scopes,
                lambda: ("batch_get_item", batch_request(plan, load_keys)),
            )
            waiting.insert(0, own)
        if not waiting:
            return results, False, False
        # With stale-if-error, this batch's own failure is one of several to sort out
        # (``_stand_ins``) once every flight is done, not raised at once.
        stands_in = any(shared.freshness(table).stale_if_error > 0 for table in plan.tables)
        loaded, failed = await loader.settle(flights, waiting, own=None if stands_in else own)
        #: what this batch's keys failed with: each error, and the keys it took
        failures: list[tuple[Exception, tuple[ItemFlightKey, ...]]] = []
        resend: list[ItemFlightKey] = []
        for flight, error in failed:
            if flight is own:
                if error is None:
                    resend.extend(load_keys)  # cancelled: nothing of it arrives
                else:
                    failures.append((error, load_keys))
                continue
            sent, keys = joined[flight]
            own_request = ("batch_get_item", batch_request(plan, keys))
            if error is not None and loader.is_shared(error, sent, own_request):
                if not stands_in:
                    raise error
                failures.append((error, tuple(keys)))
            else:
                resend.extend(keys)
        if resend:
            shared.check_open()
            try:
                loaded.update(await loader.batch(backend, plan, tuple(resend), spent))
            except Exception as error:
                if not stands_in:
                    raise
                failures.append((error, tuple(resend)))
        if failures:
            loaded.update(self._stand_ins(failures))
        for flight_key, result in loaded.items():
            if flight_key in plan.wanted:
                results[flight_key] = result
        return results, bool(to_load or resend), bool(joined)

    def _stand_ins(
        self, failures: list[tuple[Exception, tuple[ItemFlightKey, ...]]]
    ) -> dict[ItemFlightKey, ItemResult]:
        """Stale-if-error for the keys of failed loads: each key's expired entry within
        its table's window, the others ``UNPROCESSED``.

        A partly stale batch answers as DynamoDB answers a partly processed one
        (throttling or an internal failure on some keys): it succeeds, and returns
        the keys it could not read in ``UnprocessedKeys``, which the caller retries
        and, if DynamoDB still fails, hears the error of.  Raises the first error
        when any is the request's own (never hidden) or when no key has an entry to
        stand in (nothing served stale: the batch fails as without the policy).
        """
        for error, _ in failures:
            if not read_failed_transiently(error):
                raise error
        stand_ins: dict[ItemFlightKey, ItemResult] = {}
        served = []
        for _, keys in failures:
            for flight_key in keys:
                stale = self._items.stale(*flight_key)
                if stale is None:
                    stand_ins[flight_key] = UNPROCESSED
                else:
                    stand_ins[flight_key] = stale
                    served.append(flight_key[0])
        if not served:
            raise failures[0][0]
        stats = self._shared.stats
        for table in served:
            stats.table(table).stale_served += 1
        return stand_ins

    def _reload(self, backend: Backend, plan: BatchPlan, keys: tuple[ItemFlightKey, ...]) -> None:
        """One background BatchGetItem of ``keys``, awaited by nobody."""

        async def fetch() -> dict[ItemFlightKey, ItemResult]:
            return await self._loader.batch(backend, plan, keys, Spent(), refresh=True)

        self._loader.start(
            self._shared.item_flights,
            keys,
            fetch,
            self._items.keep,
            item_flight_scopes,
            lambda: ("batch_get_item", batch_request(plan, keys)),
            background=True,
        )

    def _responses(
        self, plan: BatchPlan, results: dict[ItemFlightKey, ItemResult], view: View | None
    ) -> dict[str, list[Any]]:
        responses: dict[str, list[Any]] = {spelled_name(table): [] for table in plan.tables}
        store = self._shared.store
        for flight_key in plan.keys:
            result = results[flight_key]
            image: WireItem | None = result.image
            if image is None:
                continue
            table, key, projection = flight_key
            items = responses[spelled_name(table)]
            if view is None:
                items.append(thaw(image))
            else:
                items.append(item_copies(store, table, key, projection, image, view)())
        return responses

    def _unprocessed(
        self, plan: BatchPlan, results: dict[ItemFlightKey, ItemResult], view: View | None
    ) -> dict[str, dict[str, Any]]:
        unprocessed: dict[str, dict[str, Any]] = {}
        for flight_key in plan.keys:
            if not results[flight_key].unprocessed:
                continue
            table = flight_key[0]
            spelled = spelled_name(table)
            spec = unprocessed.get(spelled)
            if spec is None:
                spec = unprocessed[spelled] = copy.deepcopy(plan.unprocessed_spec(table))
                spec["Keys"] = []
            wanted = plan.wanted[flight_key]
            spec["Keys"].append(copy.deepcopy(wanted) if view is None else view(wanted)[0]())
        return unprocessed

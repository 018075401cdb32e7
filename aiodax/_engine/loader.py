"""The miss path: the only code that sends a read to DynamoDB, and stores its answer.

Every miss (a GetItem, the unanswered keys of a BatchGetItem, a Query or Scan page)
becomes a *flight* here, so that concurrent identical misses share one request,
and goes out through the ``SharedTier`` (``_tiers``), which a single process's
cache sends straight to DynamoDB.  What the flight brings is stored in the same
step as it arrives, key by key, where the write guards allow it: not after a drop
of any scope the entry is filed under, and never once the cache is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from .._backend import Backend
from .._flight import Flight, Flights
from .._rules.reads import BatchPlan, ItemFlightKey
from .._rules.tables import TableToken
from .._rules.tags import Tags, item_scopes
from .._rules.wire import Image, WireItem, freeze
from .._tiers import Load, SharedTier
from .shared import Shared

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What a read learnt of one item: its image (``None``: missing), and DynamoDB's answer.

    ``answer`` is the GetItem response that brought it, ``None`` for a key of a
    BatchGetItem or a hit.  ``unprocessed``: DynamoDB kept refusing the key.
    """

    image: Image
    answer: Mapping[str, Any] | None = None
    unprocessed: bool = False


UNPROCESSED: Final = ItemResult(None, unprocessed=True)


def item_flight_scopes(flight_key: ItemFlightKey) -> Tags:
    """What a drop names that makes a fill of ``flight_key`` stale (``_rules.tags``)."""
    return item_scopes(flight_key[0], flight_key[1])


class Loader:
    """Starts the flights of misses and sends them; see the module docstring."""

    __slots__ = ("_shared", "_tier")

    def __init__(self, shared: Shared, tier: SharedTier) -> None:
        self._shared = shared
        self._tier = tier

    def start(
        self,
        flights: Flights[K, V],
        keys: Iterable[K],
        fetch: Callable[[], Awaitable[Mapping[K, V]]],
        keep: Callable[[K, V, float], None],
        scopes: Callable[[K], Iterable[Hashable]],
        *,
        tags: tuple[Hashable, ...] = (),
        background: bool = False,
    ) -> Flight[K, V]:
        """A flight loading ``keys`` with ``fetch``; ``keep`` stores each key's result
        with the load's duration on the cache's clock (refresh-ahead's δ).

        A ``background`` flight is a reload nobody awaits (``_flight``)."""
        shared = self._shared
        guards = shared.guards
        clock = shared.clock

        async def load() -> Mapping[K, V]:
            generation = guards.open_fill()
            try:
                started = clock()
                results = await fetch()
                load_time = clock() - started
                # No await from here to the flight's end: a drop cannot come
                # between the guards' answer and the store.
                if not shared.closed:
                    for key, value in results.items():
                        if guards.may_store(generation, scopes(key)):
                            keep(key, value, load_time)
                return results
            finally:
                guards.close_fill(generation)

        return flights.start(keys, load, tags=tags, background=background)

    def consistent(self, table: TableToken, scopes: Iterable[Hashable]) -> bool:
        """Whether a fill of ``table`` filed under ``scopes``, going out now, reads with
        ``ConsistentRead=True``: always (``"strong"``), inside a fence (``"fenced"``,
        see ``guards``), or never (``"eventual"``)."""
        shared = self._shared
        consistency = shared.fills(table).consistency
        if consistency == "fenced":
            return shared.guards.fenced(scopes)
        return consistency == "strong"

    async def send(self, backend: Backend, operation: str, request: dict[str, Any]) -> Any:
        """DynamoDB's answer to one read, through the shared tier."""
        shared = self._shared
        if request.get("ConsistentRead") is True or (
            operation == "batch_get_item"
            and any(spec.get("ConsistentRead") is True for spec in request["RequestItems"].values())
        ):
            shared.stats.consistent_fills += 1
        return await self._tier.load(
            Load(operation, request), lambda: shared.call(backend, operation, request)
        )

    async def batch(
        self,
        backend: Backend,
        plan: BatchPlan,
        keys: tuple[ItemFlightKey, ...],
        consumed: dict[str, float],
    ) -> dict[ItemFlightKey, ItemResult]:
        """BatchGetItem of ``keys``, retrying unprocessed keys with the retry policy's backoff.

        Keys still unprocessed after the last attempt are ``UNPROCESSED``;
        ``consumed`` adds up the capacity spent per table.
        """
        results: dict[ItemFlightKey, ItemResult] = dict.fromkeys(keys, UNPROCESSED)
        remaining = list(keys)
        delays = self._shared.retry.delays()
        while remaining:
            consistent = {
                key[0] for key in remaining if self.consistent(key[0], item_flight_scopes(key))
            }
            send: dict[str, Any] = {
                "RequestItems": plan.request_items(remaining, consistent),
                "ReturnConsumedCapacity": "TOTAL",
            }
            answer = await self.send(backend, "batch_get_item", send)
            for capacity in answer.get("ConsumedCapacity") or ():
                table = capacity.get("TableName")
                consumed[table] = consumed.get(table, 0.0) + capacity.get("CapacityUnits", 0.0)
            unprocessed = {
                plan.unprocessed_key(table, wire)
                for table, spec in (answer.get("UnprocessedKeys") or {}).items()
                for wire in spec.get("Keys", ())
            }
            returned: dict[ItemFlightKey, WireItem] = {}
            for table, items in (answer.get("Responses") or {}).items():
                for item in items:
                    flight_key, visible = plan.identify(table, item)
                    returned[flight_key] = visible
            for flight_key in remaining:
                if flight_key not in unprocessed:
                    results[flight_key] = ItemResult(freeze(returned.get(flight_key)))
            remaining = [key for key in remaining if key in unprocessed]
            if remaining:
                delay = next(delays, None)
                if delay is None:
                    break
                await asyncio.sleep(delay)
        return results

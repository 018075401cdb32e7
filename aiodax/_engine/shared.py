"""What the engine's units share: configuration, store, flights, guards, counters.

One ``Shared`` per ``Cache``.  It is the only place a DynamoDB request is counted
and observed (``call``, ``_observe``), and it knows whether the cache is closed: a
closed cache has no entries, starts no loads and stores nothing a late answer
brings.  Every flight of the cache (item, page and schema loads) is one of
``Flights`` made here, so that a wait ``aclose`` cuts short raises
``CacheClosedError`` wherever it is (``_flight``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Hashable, Mapping
from typing import Any, TypeVar

from .._backend import Backend
from .._config import CacheConfig, Fills, TTLs
from .._errors import CacheClosedError
from .._flight import Flight, Flights
from .._observe import BackendCall, CoalescedWait, Observer, notify_call, notify_wait
from .._rules.freshness import Freshness
from .._rules.policy import RetryPolicy, expiry
from .._rules.reads import ItemFlightKey
from .._rules.responses import mark_status
from .._rules.tables import TableToken, bare_name, spelled_name
from .._rules.tags import StoreKey, item_key, item_tags
from .._stats import Stats
from .._store import Store
from .guards import WriteGuards
from .schemas import Schemas
from .sites import Sites

K = TypeVar("K", bound=Any)
V = TypeVar("V")


def closed_during_request() -> CacheClosedError:
    return CacheClosedError("the aiodax.Cache was closed before this request finished")


def item_flight_labels(flight_key: ItemFlightKey) -> tuple[Hashable, ...]:
    """What drops detach an item load by, beside its flight key: its table's tags and,
    loading a projection, its item's store key.

    A load of the whole item (the commonest by far) is found by its flight key
    itself, ``(table, key, None)``: filing it by item too would cost every miss.
    """
    table, key, projection = flight_key
    if projection is None:
        return item_tags(table)
    return (*item_tags(table), item_key(table, key))


class Shared:
    """The state every unit reads and writes; see the module docstring."""

    __slots__ = (
        "_fills",
        "_ttls",
        "bypassed",
        "clock",
        "closed",
        "config",
        "degraded_ttl",
        "guards",
        "item_flights",
        "observers",
        "page_flights",
        "rand",
        "retry",
        "schemas",
        "sites",
        "stats",
        "store",
    )

    def __init__(self, config: CacheConfig, retry: RetryPolicy) -> None:
        self.config = config
        self.clock = config.clock
        self.retry = retry
        #: refresh-ahead's draws (``_rules.freshness``): ``Cache(random=...)``
        self.rand = config.draw
        self.store = Store(config.max_bytes)
        self.stats = Stats()
        self.sites = Sites()
        self.schemas = Schemas(self.call, closed_during_request)
        self.guards = WriteGuards(self.clock)
        self.item_flights: Flights[ItemFlightKey, Any] = Flights(
            closed_error=closed_during_request, filed_under=item_flight_labels
        )
        # A page load is filed under its tags alone (``Loader.start`` passes them).
        self.page_flights: Flights[StoreKey, Any] = Flights(closed_error=closed_during_request)
        self._ttls: dict[TableToken, TTLs] = {}
        self._fills: dict[TableToken, Fills] = {}
        self.closed = False
        #: while a tier cannot vouch for this process's entries, how long any is kept
        #: (``TierHost.degrade``); ``None``: as long as its TTL
        self.degraded_ttl: float | None = None
        #: tables (bare names) the tier cannot vouch for (``TierHost.bypass``):
        #: nothing of them is stored
        self.bypassed: set[str] = set()
        #: told of every request sent and every coalesced wait (``_observe``)
        self.observers: tuple[Observer, ...] = ()

    def ttls(self, table: TableToken) -> TTLs:
        found = self._ttls.get(table)
        if found is None:
            # Table overrides name tables: an ARN's and every site's tokens share them.
            found = self._ttls[table] = self.config.ttls_for(bare_name(table))
        return found

    def freshness(self, table: TableToken) -> Freshness:
        return self.ttls(table).freshness

    def fills(self, table: TableToken) -> Fills:
        found = self._fills.get(table)
        if found is None:
            found = self._fills[table] = self.config.fills_for(bare_name(table))
        return found

    def expiry(self, now: float, age: float, ttl: float, table: TableToken) -> float | None:
        """When an entry of ``table`` read from DynamoDB ``age`` seconds before ``now``
        stops being fresh (``_rules.policy.expiry``), kept no longer than a degraded
        tier allows; ``None``: do not store it (nor while ``table`` is bypassed)."""
        if self.bypassed and bare_name(table) in self.bypassed:
            self.stats.table(table).stream_bypassed_fills += 1
            return None
        expires_at = expiry(now - age, ttl)
        if expires_at is None:
            return None
        if self.degraded_ttl is not None:
            expires_at = min(expires_at, now + self.degraded_ttl)
        return expires_at if expires_at > now else None

    async def call(
        self, backend: Backend, operation: str, request: Mapping[str, Any], kind: str = "other"
    ) -> Any:
        """The one way a request reaches DynamoDB: counted, then awaited, and told to
        the observers as a ``kind`` of call (``_observe.BackendCall``)."""
        self.stats.backend_requests[operation] += 1
        if not self.observers:
            return await getattr(backend, operation)(**request)
        started_ns, start = time.time_ns(), time.perf_counter()
        answer = None
        error: BaseException | None = None
        try:
            answer = await getattr(backend, operation)(**request)
        except BaseException as exc:
            error = exc
            raise
        finally:
            call = BackendCall(
                operation,
                kind,
                request,
                started_ns,
                time.perf_counter() - start,
                error,
                answer if isinstance(answer, Mapping) else None,
            )
            notify_call(self.observers, call)
        return answer

    async def pass_through(
        self, backend: Backend, operation: str, request: Mapping[str, Any], status: str
    ) -> Any:
        """``request`` sent as it came, its answer marked with ``status``: ``"bypass"``
        (the cache does not serve such a read) or ``"miss"`` (a read the cache
        could not answer for this caller)."""
        kind = "bypass" if status == "bypass" else "miss"
        return mark_status(await self.call(backend, operation, request, kind), status)

    def check_open(self) -> None:
        if self.closed:
            raise CacheClosedError("this aiodax.Cache is closed")

    async def wait(
        self,
        flights: Flights[K, V],
        waiting: Collection[Flight[K, V]],
        joined: tuple[str, TableToken] | None = None,
    ) -> dict[K, V]:
        """Await ``waiting`` (``Flights.wait``: a wait cut short by ``aclose`` says so);
        ``joined``: the operation and table of another caller's load this one joined,
        told to the observers."""
        if joined is None or not self.observers:
            return await flights.wait(waiting)
        started_ns, start = time.time_ns(), time.perf_counter()
        error: BaseException | None = None
        try:
            return await flights.wait(waiting)
        except BaseException as exc:
            error = exc
            raise
        finally:
            operation, table = joined
            wait = CoalescedWait(
                operation, spelled_name(table), started_ns, time.perf_counter() - start, error
            )
            notify_wait(self.observers, wait)

    @property
    def in_flight(self) -> int:
        return len(self.item_flights) + len(self.page_flights)

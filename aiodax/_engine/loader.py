"""The miss path: the only code that sends a read to DynamoDB, and stores its answer.

Every miss (a GetItem, the unanswered keys of a BatchGetItem, a Query or Scan page)
becomes a *flight* here, so that concurrent identical misses share one request,
and goes out through the ``SharedTier`` (``_tiers``), which a single process's
cache sends straight to DynamoDB.  What the flight brings is stored in the same
step as it arrives, key by key, where the write guards allow it: not after a drop
of any scope the entry is filed under, and never once the cache is closed.

A flight's failure reaches the callers who joined it only when it would have been
theirs too (``_rules.failures``): each flight remembers what it sent, and a joiner
whose own request differs and whose leader's request failed for reasons of its
own sends its own request, once, uncoalesced (``is_shared``, ``settle``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    CapacityNotAvailableError,
    ChecksumError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .._backend import Backend
from .._errors import CacheClosedError
from .._flight import Flight, Flights
from .._log import LOG as _LOG
from .._rules.failures import Failure, Sent, failure_is_shared
from .._rules.reads import BatchPlan, ItemFlightKey
from .._rules.tables import TableToken, bare_name, spelled_name
from .._rules.tags import Tags, item_scopes
from .._rules.wire import Image, ItemKey, WireItem, freeze
from .._tiers import Load, Loaded, SharedTier
from .shared import Shared

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What a read learnt of one item: its image (``None``: missing), and DynamoDB's answer.

    ``answer`` is the GetItem response that brought it, ``None`` for a key of a
    BatchGetItem or a hit.  ``unprocessed``: DynamoDB kept refusing the key.
    ``age``: seconds since DynamoDB gave the answer (a shared tier's copy is older
    than its load).
    """

    image: Image
    answer: Mapping[str, Any] | None = None
    unprocessed: bool = False
    age: float = 0.0


UNPROCESSED: Final = ItemResult(None, unprocessed=True)

#: botocore's errors that come after the request went out: no (whole) answer
#: arrived, which says nothing about the request itself.
_NO_ANSWER: Final = (
    BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
    CapacityNotAvailableError,
)


def failure_of(error: BaseException) -> Failure:
    """What ``error`` tells about whose failure it is (see ``_rules.failures``)."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return Failure(
            code if isinstance(code, str) else None, status if isinstance(status, int) else None
        )
    if isinstance(error, BotoCoreError) and not isinstance(error, _NO_ANSWER):
        return Failure(refused=True)  # parameters, credentials, configuration: never sent
    return Failure()


def item_flight_scopes(flight_key: ItemFlightKey) -> Tags:
    """What a drop names that makes a fill of ``flight_key`` stale (``_rules.tags``)."""
    return item_scopes(flight_key[0], flight_key[1])


class Loader:
    """Starts the flights of misses and sends them; see the module docstring."""

    __slots__ = ("_sent", "_shared", "_tier")

    def __init__(self, shared: Shared, tier: SharedTier) -> None:
        self._shared = shared
        self._tier = tier
        #: what each flight in progress sends, built only when a joiner needs it
        self._sent: dict[Flight[Any, Any], Callable[[], Sent]] = {}

    def start(
        self,
        flights: Flights[K, V],
        keys: Iterable[K],
        fetch: Callable[[], Awaitable[Mapping[K, V]]],
        keep: Callable[[K, V, float], None],
        scopes: Callable[[K], Iterable[Hashable]],
        sent: Callable[[], Sent],
        *,
        tags: tuple[Hashable, ...] = (),
        background: bool = False,
    ) -> Flight[K, V]:
        """A flight loading ``keys`` with ``fetch``; ``keep`` stores each key's result
        with the load's duration on the cache's clock (refresh-ahead's δ).

        ``sent`` says what ``fetch`` sends (its first request), for the callers
        who join the flight and must tell whether its failure is theirs.  A
        ``background`` flight is a reload nobody awaits (``_flight``).
        """
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

        flight = flights.start(keys, load, tags=tags, background=background)
        sending = self._sent
        sending[flight] = sent
        flight.task.add_done_callback(lambda _: sending.pop(flight, None))
        return flight

    def sent_by(self, flight: Flight[Any, Any]) -> Callable[[], Sent]:
        """What ``flight`` sends; asked when joining it, while it is in flight."""
        return self._sent[flight]

    def is_shared(self, error: Exception, sent: Callable[[], Sent], own: Sent) -> bool:
        """Whether a joiner whose request is ``own`` gets ``error``, its flight's failure.

        ``False``: the joined flight's request failed for reasons of its own, and
        the joiner sends ``own`` instead (once, uncoalesced: what it would have
        sent without the cache).  A closed cache is every caller's.
        """
        if isinstance(error, CacheClosedError):
            return True
        return failure_is_shared(failure_of(error), sent(), own)

    async def settle(
        self,
        flights: Flights[K, V],
        waiting: Sequence[Flight[K, V]],
        *,
        own: Flight[K, V] | None = None,
    ) -> tuple[dict[K, V], list[tuple[Flight[K, V], Exception | None]]]:
        """Every flight's results, and each other flight that failed with its error.

        ``own``, the caller's own flight, comes first in ``waiting``: its failure
        is the caller's and raised at once.  ``Flights.wait`` leaves every flight
        at the first failure, so the others are joined again: one failure costs
        nothing the others bring.  A flight cancelled meanwhile because this
        caller was its last is failed with ``None``: nothing of it arrives.  A
        closed cache, or the caller's own cancellation, raises.
        """
        results: dict[K, V] = {}
        failed: list[tuple[Flight[K, V], Exception | None]] = []
        pending = list(waiting)
        while pending:
            try:
                results.update(await self._shared.wait(flights, pending))
                break
            except CacheClosedError:
                raise
            except Exception:
                if own is not None and _has_failed(own):
                    raise
            # The loop ends: the flight that raised is done, so fewer remain.
            pending = _sort_out(pending, results, failed)
        return results, failed

    def consistent(self, table: TableToken, scopes: Iterable[Hashable]) -> bool:
        """Whether a fill of ``table`` filed under ``scopes``, going out now, reads with
        ``ConsistentRead=True``: always (``"strong"``), inside a fence (``"fenced"``,
        see ``guards``), or never (``"eventual"``)."""
        shared = self._shared
        consistency = shared.fills(table).consistency
        if consistency == "fenced":
            return shared.guards.fenced(scopes)
        return consistency == "strong"

    async def send(
        self,
        backend: Backend,
        operation: str,
        request: dict[str, Any],
        table: TableToken | None = None,
        key: ItemKey | None = None,
        *,
        lives_until: float | None = None,
        refresh: bool = False,
        eventual_only: bool = False,
        parts: tuple[Load, ...] = (),
    ) -> Loaded:
        """DynamoDB's answer to one read of ``table`` (``key``: a GetItem's), through
        the shared tier.

        ``lives_until``: the answer is kept at most until then (a secondary-index
        page read inside a fence); ``refresh``: a background reload of an entry
        still served; ``eventual_only``: DynamoDB has no consistent read of it (a
        secondary index); ``parts``: a BatchGetItem's keys (``Load.parts``).  They
        tell the tier what it may answer with.
        """
        shared = self._shared
        consistent = request.get("ConsistentRead") is True or (
            operation == "batch_get_item"
            and any(spec.get("ConsistentRead") is True for spec in request["RequestItems"].values())
        )
        if consistent:
            shared.stats.consistent_fills += 1
        ttl = negative_ttl = fence = 0.0
        if table is not None:
            fence = self._fence(table)
            ttls = shared.ttls(table)
            if operation == "get_item":
                ttl, negative_ttl = ttls.item, ttls.negative
            else:
                ttl = ttls.query
            if lives_until is not None:
                ttl = min(ttl, max(0.0, lives_until - shared.clock()))
        load = Load(
            operation,
            request,
            shared.sites.label_of(backend),
            None if table is None else bare_name(table),
            key,
            ttl=ttl,
            negative_ttl=negative_ttl,
            fenced=consistent or lives_until is not None,
            refresh=refresh,
            fence=fence,
            eventual_only=eventual_only,
            parts=parts,
        )

        def fetch(narrowed: dict[str, Any] | None = None) -> Awaitable[Any]:
            return shared.call(
                backend, operation, request if narrowed is None else narrowed, "miss"
            )

        return await self._tier.load(load, fetch)

    def _batch_parts(
        self,
        backend: Backend,
        plan: BatchPlan,
        keys: Iterable[ItemFlightKey],
        send: dict[str, Any],
        refresh: bool,
    ) -> tuple[Load, ...]:
        """Each of ``keys``, which ``send`` asks for, as the GetItem that reads it
        (``Load.parts``)."""
        shared = self._shared
        site = shared.sites.label_of(backend)
        parts = []
        for flight_key in keys:
            table, key = flight_key[0], flight_key[1]
            spelled = spelled_name(table)
            request = {"TableName": spelled, "Key": plan.wanted[flight_key]}
            spec = send["RequestItems"][spelled]
            request.update((name, value) for name, value in spec.items() if name != "Keys")
            ttls = shared.ttls(table)
            parts.append(
                Load(
                    "get_item",
                    request,
                    site,
                    bare_name(table),
                    key,
                    ttl=ttls.item,
                    negative_ttl=ttls.negative,
                    fenced=spec.get("ConsistentRead") is True,
                    refresh=refresh,
                    fence=self._fence(table),
                )
            )
        return tuple(parts)

    def _fence(self, table: TableToken) -> float:
        """Seconds a drop fences fills of ``table`` (``0``: its fills never fence)."""
        fills = self._shared.fills(table)
        return fills.fence if fills.fences else 0.0

    async def batch(
        self,
        backend: Backend,
        plan: BatchPlan,
        keys: tuple[ItemFlightKey, ...],
        spent: Spent,
        *,
        refresh: bool = False,
    ) -> dict[ItemFlightKey, ItemResult]:
        """BatchGetItem of ``keys``, retrying unprocessed keys with the retry policy's backoff.

        Keys still unprocessed after the last attempt are ``UNPROCESSED``;
        ``spent`` adds up the capacity spent per table and keeps DynamoDB's last
        metadata.  ``refresh``: a background reload of entries still served.
        """
        results: dict[ItemFlightKey, ItemResult] = dict.fromkeys(keys, UNPROCESSED)
        remaining = list(keys)
        delays = self._shared.retry.delays()
        while remaining:
            consistent = {
                key[0] for key in remaining if self.consistent(key[0], item_flight_scopes(key))
            }
            send = batch_request(plan, remaining, consistent)
            parts = self._batch_parts(backend, plan, remaining, send, refresh)
            loaded = await self.send(backend, "batch_get_item", send, refresh=refresh, parts=parts)
            answer = loaded.answer
            spent.add(answer)
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
                    results[flight_key] = ItemResult(
                        freeze(returned.get(flight_key)), age=loaded.age
                    )
            remaining = [key for key in remaining if key in unprocessed]
            if remaining:
                delay = next(delays, None)
                if delay is None:
                    _LOG.warning(
                        "aiodax: DynamoDB left %d key(s) of a BatchGetItem unprocessed after "
                        "every retry: returned to the caller as UnprocessedKeys",
                        len(remaining),
                    )
                    break
                _LOG.info(
                    "aiodax: DynamoDB left %d key(s) of a BatchGetItem unprocessed: "
                    "retrying in %.3f s",
                    len(remaining),
                    delay,
                )
                await asyncio.sleep(delay)
        return results


class Spent:
    """What the BatchGetItems one call sends bring back besides items: the capacity
    units per table (``units``) and DynamoDB's last ``ResponseMetadata`` (``metadata``,
    ``None`` until an answer carrying one arrives)."""

    __slots__ = ("metadata", "units")

    def __init__(self) -> None:
        self.units: dict[str, float] = {}
        self.metadata: dict[str, Any] | None = None

    def add(self, answer: Mapping[str, Any]) -> None:
        for capacity in answer.get("ConsumedCapacity") or ():
            table = capacity.get("TableName")
            self.units[table] = self.units.get(table, 0.0) + capacity.get("CapacityUnits", 0.0)
        metadata = answer.get("ResponseMetadata")
        if metadata:
            self.metadata = metadata


def batch_request(
    plan: BatchPlan, keys: Iterable[ItemFlightKey], consistent: Collection[TableToken] = ()
) -> dict[str, Any]:
    """The BatchGetItem a load of ``keys`` sends (its capacity counted, for the caller);
    the tables in ``consistent`` read with ``ConsistentRead=True`` (a fence)."""
    return {
        "RequestItems": plan.request_items(keys, consistent),
        "ReturnConsumedCapacity": "TOTAL",
    }


def _has_failed(flight: Flight[Any, Any]) -> bool:
    task = flight.task
    return task.done() and not task.cancelled() and task.exception() is not None


def _sort_out(
    pending: list[Flight[K, V]],
    results: dict[K, V],
    failed: list[tuple[Flight[K, V], Exception | None]],
) -> list[Flight[K, V]]:
    """Take the results and failures of the done flights; the others, to join again."""
    rest = []
    for flight in pending:
        task = flight.task
        if not task.done():
            if task.cancelling():  # this caller was its last: it will bring nothing
                failed.append((flight, None))
            else:
                rest.append(flight)
        elif task.cancelled():
            failed.append((flight, None))
        elif (error := task.exception()) is None:
            results.update(task.result())
        elif isinstance(error, Exception):
            failed.append((flight, error))
        else:
            raise error
    return rest

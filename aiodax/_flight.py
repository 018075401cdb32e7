"""Single-flight: concurrent identical loads share one backend request.

A *flight* is one backend call that answers one or more keys (one key for GetItem
or a page, up to a hundred for a BatchGetItem chunk).  It runs in its own task;
every caller, the first included, awaits it through ``asyncio.shield``, so a
cancelled or timed-out caller only leaves.  When the last caller leaves, the call
is cancelled and its keys are forgotten at once: a newcomer starts a fresh flight
instead of inheriting a cancellation.

What a flight loaded is stored by its ``load`` itself (``_engine.loader``), and
whether it may be is decided there (``_engine.guards``).  A drop *detaches* the
keys of flights it makes stale: the result still reaches the callers already
waiting, whose reads overlapped the drop, but callers arriving after it start a
new flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flight(Generic[K, V]):
    """One load in progress, for ``keys``, and how many callers await it."""

    __slots__ = ("keys", "tags", "task", "waiters")

    def __init__(self, keys: tuple[K, ...], tags: tuple[Hashable, ...]) -> None:
        self.keys = keys
        #: What drops find the flight by, besides its keys (a page's tags).
        self.tags = tags
        self.waiters = 0
        self.task: asyncio.Task[Mapping[K, V]]


class Flights(Generic[K, V]):
    """The flights in progress, by key."""

    __slots__ = ("_by_key", "_tasks")

    def __init__(self) -> None:
        self._by_key: dict[K, Flight[K, V]] = {}
        self._tasks: set[asyncio.Task[Mapping[K, V]]] = set()

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: K) -> Flight[K, V] | None:
        return self._by_key.get(key)

    def start(
        self,
        keys: Iterable[K],
        load: Callable[[], Awaitable[Mapping[K, V]]],
        *,
        tags: tuple[Hashable, ...] = (),
        background: bool = False,
    ) -> Flight[K, V]:
        """A flight running ``load``.  A ``background`` one (a reload nobody awaits,
        started for the cache itself) is never cancelled by callers leaving it;
        ``aclose`` still cancels it."""
        flight: Flight[K, V] = Flight(tuple(keys), tags)
        if background:
            flight.waiters = 1  # the cache's own: never left, so never reaching 0
        for key in flight.keys:
            self._by_key[key] = flight
        flight.task = asyncio.get_running_loop().create_task(self._run(flight, load))
        self._tasks.add(flight.task)
        flight.task.add_done_callback(self._finished)
        return flight

    async def _run(
        self,
        flight: Flight[K, V],
        load: Callable[[], Awaitable[Mapping[K, V]]],
    ) -> Mapping[K, V]:
        try:
            return await load()
        finally:
            self._unregister(flight)

    def _finished(self, task: asyncio.Task[Mapping[K, V]]) -> None:
        self._tasks.discard(task)
        # Marks a failure as retrieved even when every caller has left already.
        if not task.cancelled():
            task.exception()

    def _unregister(self, flight: Flight[K, V]) -> None:
        for key in flight.keys:
            if self._by_key.get(key) is flight:
                del self._by_key[key]

    def detach(self, key: K) -> None:
        """Callers asking for ``key`` from now on start a new flight."""
        self._by_key.pop(key, None)

    def detach_where(self, predicate: Callable[[K, Flight[K, V]], bool]) -> None:
        for key in [key for key, flight in self._by_key.items() if predicate(key, flight)]:
            del self._by_key[key]

    async def wait(self, flights: Collection[Flight[K, V]]) -> dict[K, V]:
        """Await every flight; on cancellation or failure, leave them cleanly."""
        for flight in flights:
            flight.waiters += 1
        pending = dict.fromkeys(flights)
        results: dict[K, V] = {}
        try:
            for flight in flights:
                results.update(await asyncio.shield(flight.task))
                del pending[flight]
                flight.waiters -= 1
        except BaseException:
            for flight in pending:
                self._leave(flight)
            raise
        return results

    def _leave(self, flight: Flight[K, V]) -> None:
        flight.waiters -= 1
        if flight.waiters == 0 and not flight.task.done():
            self._unregister(flight)
            flight.task.cancel()

    async def aclose(self) -> None:
        """Cancel every flight and wait until their tasks are gone."""
        self._by_key.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

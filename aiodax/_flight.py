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
new flight.  Drops find those keys through an index of the *labels* each key is
filed under (what its owner's ``filed_under`` says of the key, and the flight's
``tags``), so that a drop costs what it detaches, not what is in flight.

``aclose`` cancels every flight.  A caller whose wait it cut short gets the
owner's ``closed_error``, an ordinary exception, unless that caller's own task was
being cancelled too: a ``CancelledError`` in a task nobody cancelled would be
taken by asyncio (task groups, ``gather``, timeouts) for a cancellation of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _no_labels(_: Hashable) -> tuple[Hashable, ...]:
    return ()


class Flight(Generic[K, V]):
    """One load in progress, for ``keys``, and how many callers await it."""

    __slots__ = ("keys", "labels", "tags", "task", "waiters")

    def __init__(self, keys: tuple[K, ...], tags: tuple[Hashable, ...]) -> None:
        self.keys = keys
        #: What drops find the flight by, besides its keys (a page's tags).
        self.tags = tags
        #: each key's labels, in ``keys``' order, kept so a flight's end need not
        #: ask for them again (``Flights._file``)
        self.labels: tuple[tuple[Hashable, ...], ...] = ()
        self.waiters = 0
        self.task: asyncio.Task[Mapping[K, V]]


class Flights(Generic[K, V]):
    """The flights in progress, by key and by label; see the module docstring.

    :param closed_error: what a caller whose wait ``aclose`` cut short raises, and
        what ``start`` raises once closed.
    :param filed_under: the labels a key is filed under (its table, say), beside
        its flight's ``tags``; called once per key of every flight, so kept cheap.
    """

    __slots__ = ("_by_key", "_closed", "_closed_error", "_filed", "_filed_under", "_tasks")

    def __init__(
        self,
        *,
        closed_error: Callable[[], Exception],
        filed_under: Callable[[K], tuple[Hashable, ...]] = _no_labels,
    ) -> None:
        self._closed_error = closed_error
        self._filed_under = filed_under
        self._by_key: dict[K, Flight[K, V]] = {}
        #: label → the keys filed under it (a dict: ordered, O(1) removal)
        self._filed: dict[Hashable, dict[K, None]] = {}
        self._tasks: set[asyncio.Task[Mapping[K, V]]] = set()
        self._closed = False

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
        if self._closed:
            raise self._closed_error()
        flight: Flight[K, V] = Flight(tuple(keys), tags)
        if background:
            flight.waiters = 1  # the cache's own: never left, so never reaching 0
        self._file(flight)
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

    # ------------------------------------------------------------------ index

    def _file(self, flight: Flight[K, V]) -> None:
        """Register ``flight`` under its keys and their labels (a miss path: kept lean)."""
        by_key, filed, filed_under, tags = self._by_key, self._filed, self._filed_under, flight.tags
        every_label = []
        for key in flight.keys:
            if key in by_key:
                self.detach(key)  # one flight a key: its labels are the newer flight's
            by_key[key] = flight
            labels = filed_under(key) + tags if tags else filed_under(key)
            every_label.append(labels)
            for label in labels:
                keys = filed.get(label)
                if keys is None:
                    filed[label] = {key: None}
                else:
                    keys[key] = None
        flight.labels = tuple(every_label)

    def _unfile(self, key: K, labels: tuple[Hashable, ...]) -> None:
        filed = self._filed
        for label in labels:
            keys = filed.get(label)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del filed[label]

    def detach(self, key: K) -> None:
        """Callers asking for ``key`` from now on start a new flight."""
        flight = self._by_key.pop(key, None)
        if flight is not None:
            self._unfile(key, self._filed_under(key) + flight.tags)

    def detach_filed(self, label: Hashable) -> None:
        """``detach`` every key filed under ``label``."""
        keys = self._filed.pop(label, None)
        if keys:
            for key in keys:
                self.detach(key)

    def detach_all(self) -> None:
        self._by_key.clear()
        self._filed.clear()

    def _unregister(self, flight: Flight[K, V]) -> None:
        by_key, filed = self._by_key, self._filed
        for key, labels in zip(flight.keys, flight.labels, strict=True):
            if by_key.get(key) is flight:
                del by_key[key]
                # ``_unfile``, inlined: this runs for every key of every load.
                for label in labels:
                    keys = filed.get(label)
                    if keys is not None:
                        keys.pop(key, None)
                        if not keys:
                            del filed[label]

    # ---------------------------------------------------------------- callers

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
        except BaseException as error:
            for flight in pending:
                self._leave(flight)
            if isinstance(error, asyncio.CancelledError) and self._closed:
                task = asyncio.current_task()
                if task is None or task.cancelling() == 0:
                    raise self._closed_error() from None
            raise
        return results

    def _leave(self, flight: Flight[K, V]) -> None:
        flight.waiters -= 1
        if flight.waiters == 0 and not flight.task.done():
            self._unregister(flight)
            flight.task.cancel()

    async def aclose(self) -> None:
        """Cancel every flight and wait until their tasks are gone."""
        self._closed = True
        self.detach_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

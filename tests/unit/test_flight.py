"""Single-flight (``_flight``): concurrent identical loads share one task, and leave it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import pytest

import aiodax
from aiodax._flight import Flights
from tests.unit.fakes import FakeBackend


class Closed(Exception):
    """What these tests' flights raise to a caller whose wait ``aclose`` cut short."""


def make_flights(
    filed_under: Callable[[str], tuple[Hashable, ...]] | None = None,
) -> Flights[str, int]:
    if filed_under is None:
        return Flights(closed_error=Closed)
    return Flights(closed_error=Closed, filed_under=filed_under)


class Load:
    """A load of ``key`` that waits for ``release`` and records what happened to it."""

    def __init__(self, key: str, value: int, *, fails: str | None = None) -> None:
        self.key = key
        self.value = value
        #: the message of the ``RuntimeError`` the load raises, made afresh so that
        #: nothing but the task holds it
        self.fails = fails
        self.release = asyncio.Event()
        self.started = 0
        self.cancelled = 0

    async def __call__(self) -> Mapping[str, int]:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fails is not None:
            raise RuntimeError(self.fails)
        return {self.key: self.value}


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.contextmanager
def loop_exceptions() -> Iterator[list[dict[str, Any]]]:
    """What the running loop reports (``Task exception was never retrieved``…) meanwhile."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(context)

    loop.set_exception_handler(handler)
    try:
        yield reported
    finally:
        gc.collect()
        loop.set_exception_handler(previous)


def waiter(flights: Flights[str, int], key: str) -> asyncio.Task[dict[str, int]]:
    flight = flights.get(key)
    assert flight is not None
    return asyncio.create_task(flights.wait((flight,)))


def joined(flights: Flights[str, int], key: str, load: Callable[[], Any]) -> Any:
    """The flight of ``key``, started with ``load`` unless one is in progress."""
    return flights.get(key) or flights.start((key,), load)


async def test_concurrent_waiters_share_one_load() -> None:
    flights = make_flights()
    load = Load("k", 1)
    flights.start(("k",), load)
    waiters = [waiter(flights, "k") for _ in range(3)]
    await settle()
    load.release.set()
    async with asyncio.timeout(1):
        results = await asyncio.gather(*waiters)
    assert results == [{"k": 1}] * 3
    assert load.started == 1


async def test_a_finished_flight_is_forgotten_and_the_next_caller_starts_afresh() -> None:
    flights = make_flights()
    first = Load("k", 1)
    first.release.set()
    flight = flights.start(("k",), first)
    assert flights.get("k") is flight
    async with asyncio.timeout(1):
        assert await flights.wait((flight,)) == {"k": 1}
    assert flights.get("k") is None
    assert len(flights) == 0


async def test_a_flight_of_many_keys_is_found_by_each_of_them() -> None:
    flights = make_flights()
    load = Load("a", 1)
    flight = flights.start(("a", "b"), load)
    assert flights.get("a") is flight
    assert flights.get("b") is flight
    assert len(flights) == 2
    load.release.set()
    async with asyncio.timeout(1):
        await flights.wait((flight,))
    assert len(flights) == 0


async def test_a_cancelled_waiter_leaves_without_cancelling_the_others() -> None:
    flights = make_flights()
    load = Load("k", 1)
    flights.start(("k",), load)
    leaving, staying = waiter(flights, "k"), waiter(flights, "k")
    await settle()
    leaving.cancel()
    await settle()
    assert leaving.cancelled()
    assert load.cancelled == 0
    assert flights.get("k") is not None
    load.release.set()
    async with asyncio.timeout(1):
        assert await staying == {"k": 1}
    assert load.started == 1


async def test_the_last_waiter_leaving_cancels_the_load_and_a_newcomer_starts_fresh() -> None:
    flights = make_flights()
    old = Load("k", 1)
    flights.start(("k",), old)
    only = waiter(flights, "k")
    await settle()
    only.cancel()
    await settle()
    assert old.cancelled == 1
    assert flights.get("k") is None
    new = Load("k", 2)
    new.release.set()
    flight = joined(flights, "k", new)
    async with asyncio.timeout(1):
        assert await flights.wait((flight,)) == {"k": 2}
    assert new.started == 1


async def test_a_waiter_timing_out_on_its_own_leaves_the_others_their_answer() -> None:
    flights = make_flights()
    load = Load("k", 1)
    flight = flights.start(("k",), load)
    patient = waiter(flights, "k")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await flights.wait((flight,))
    assert load.cancelled == 0
    load.release.set()
    async with asyncio.timeout(1):
        assert await patient == {"k": 1}


async def test_detach_sends_newcomers_to_a_new_flight_while_waiters_keep_the_old_one() -> None:
    flights = make_flights()
    old, new = Load("k", 1), Load("k", 2)
    flights.start(("k",), old)
    early = waiter(flights, "k")
    await settle()
    flights.detach("k")
    assert flights.get("k") is None
    fresh = joined(flights, "k", new)
    late = asyncio.create_task(flights.wait((fresh,)))
    old.release.set()
    async with asyncio.timeout(1):
        assert await early == {"k": 1}
    # The old flight, finishing, must not forget the new one.
    assert flights.get("k") is fresh
    new.release.set()
    async with asyncio.timeout(1):
        assert await late == {"k": 2}
    assert (old.started, new.started) == (1, 1)


def item_labels(key: str) -> tuple[Hashable, ...]:
    """An item load's key ``table/item/projection``, filed under its table and item."""
    table, item, _ = key.split("/")
    return (table, f"{table}/{item}")


def assert_forgotten(flights: Flights[str, int]) -> None:
    """Nothing in flight, and nothing left in the index either."""
    assert len(flights) == 0
    assert flights._filed == {}


async def test_detach_filed_by_table_detaches_that_tables_keys_only() -> None:
    flights = make_flights(item_labels)
    keys = ["t1/a/whole", "t1/b/whole", "t2/a/whole"]
    loads = {key: Load(key, n) for n, key in enumerate(keys)}
    started = {key: flights.start((key,), load) for key, load in loads.items()}
    flights.detach_filed("t1")
    assert [flights.get(key) for key in keys] == [None, None, started["t2/a/whole"]]
    for load in loads.values():
        load.release.set()
    # the detached flights still answer the callers already waiting
    async with asyncio.timeout(1):
        assert await flights.wait(started.values()) == {key: n for n, key in enumerate(keys)}
    assert_forgotten(flights)


async def test_detach_filed_by_item_detaches_every_projection_of_that_item_only() -> None:
    flights = make_flights(item_labels)
    keys = ["t1/a/whole", "t1/a/proj", "t1/b/whole", "t2/a/whole"]
    loads = {key: Load(key, n) for n, key in enumerate(keys)}
    started = {key: flights.start((key,), load) for key, load in loads.items()}
    flights.detach_filed("t1/a")
    assert [flights.get(key) for key in keys] == [None, None, *(started[k] for k in keys[2:])]
    for load in loads.values():
        load.release.set()
    async with asyncio.timeout(1):
        await flights.wait(started.values())
    assert_forgotten(flights)


async def test_detach_filed_of_one_key_of_a_batch_detaches_that_key_only() -> None:
    flights = make_flights(item_labels)
    batch = ("t1/a/whole", "t1/b/whole", "t2/c/whole")
    load = Load("t1/a/whole", 1)
    flight = flights.start(batch, load)
    flights.detach_filed("t1/b")
    assert [flights.get(key) for key in batch] == [flight, None, flight]
    flights.detach_filed("t2")
    assert [flights.get(key) for key in batch] == [flight, None, None]
    load.release.set()
    async with asyncio.timeout(1):
        await flights.wait((flight,))
    assert_forgotten(flights)


async def test_detach_filed_by_tag_detaches_the_flights_of_that_tag_only() -> None:
    flights = make_flights()
    loads = {key: Load(key, n) for n, key in enumerate(["p1", "p2", "p3"])}
    tags: dict[str, tuple[Hashable, ...]] = {
        "p1": (("t", "pages"), ("t", "partition", "A")),
        "p2": (("t", "pages"), ("t", "table-wide")),
        "p3": (("u", "pages"),),
    }
    started = {key: flights.start((key,), load, tags=tags[key]) for key, load in loads.items()}
    flights.detach_filed(("t", "partition", "A"))
    assert [flights.get(key) for key in loads] == [None, started["p2"], started["p3"]]
    flights.detach_filed(("t", "pages"))
    assert [flights.get(key) for key in loads] == [None, None, started["p3"]]
    flights.detach_filed(("t", "pages"))  # nothing left to detach
    flights.detach_filed("never filed")
    assert flights.get("p3") is started["p3"]
    for load in loads.values():
        load.release.set()
    async with asyncio.timeout(1):
        await flights.wait(started.values())
    assert_forgotten(flights)


async def test_a_drop_looks_only_at_what_it_detaches() -> None:
    asked: list[str] = []

    def counted_labels(key: str) -> tuple[Hashable, ...]:
        asked.append(key)
        return item_labels(key)

    flights = make_flights(counted_labels)
    loads = [Load(f"t/{n}/whole", n) for n in range(1_000)]
    started = [flights.start((load.key,), load) for load in loads]
    asked.clear()
    flights.detach_filed("t/7")
    flights.detach("t/8/whole")
    flights.detach_filed("t/no such item")
    assert asked == ["t/7/whole", "t/8/whole"]
    flights.detach_all()
    for load in loads:
        load.release.set()
    async with asyncio.timeout(1):
        await flights.wait(started)
    assert_forgotten(flights)


async def test_a_key_detached_and_loaded_again_keeps_its_new_flights_labels() -> None:
    flights = make_flights(item_labels)
    old, new = Load("t/a/whole", 1), Load("t/a/whole", 2)
    first = flights.start(("t/a/whole",), old)
    flights.detach_filed("t/a")
    second = flights.start(("t/a/whole",), new)
    old.release.set()
    async with asyncio.timeout(1):
        await flights.wait((first,))
    # the old flight's end must not unfile the new flight
    assert flights.get("t/a/whole") is second
    flights.detach_filed("t")
    assert flights.get("t/a/whole") is None
    new.release.set()
    async with asyncio.timeout(1):
        await flights.wait((second,))
    assert_forgotten(flights)


async def test_the_index_is_empty_after_flights_end_fail_are_cancelled_or_detached() -> None:
    flights = make_flights(item_labels)
    ending = [Load(f"t/{n}/whole", n) for n in range(3)]
    failing = Load("t/f/whole", 0, fails="backend down")
    leaving = Load("t/l/whole", 0)
    detached = Load("t/d/whole", 0)
    tagged = Load("t/g/whole", 0)
    finished = [flights.start((load.key,), load) for load in ending]
    finished.append(flights.start((failing.key,), failing, tags=("tag",)))
    finished.append(flights.start((detached.key,), detached, tags=("tag",)))
    finished.append(flights.start((tagged.key,), tagged, tags=("tag", "other")))
    flights.start((leaving.key,), leaving, tags=("tag",))
    left = waiter(flights, leaving.key)
    await settle()
    left.cancel()  # the last caller leaving cancels its flight
    flights.detach(detached.key)
    flights.detach_filed("other")
    for load in [*ending, failing, detached, tagged]:
        load.release.set()
    async with asyncio.timeout(1):
        outcomes = await asyncio.gather(
            *(flights.wait((flight,)) for flight in finished), return_exceptions=True
        )
    assert isinstance(outcomes[3], RuntimeError)
    await settle()
    assert leaving.cancelled == 1
    assert_forgotten(flights)


async def test_detach_all_and_aclose_empty_the_index() -> None:
    flights = make_flights(item_labels)
    loads = [Load(f"t/{n}/whole", n) for n in range(3)]
    started = [flights.start((load.key,), load, tags=("tag",)) for load in loads]
    flights.detach_all()
    assert_forgotten(flights)
    fresh = Load("t/0/whole", 9)
    flights.start((fresh.key,), fresh, tags=("tag",))
    async with asyncio.timeout(1):
        await flights.aclose()
    assert_forgotten(flights)
    assert all(flight.task.cancelled() for flight in started)


async def test_a_failing_load_raises_to_every_waiter_and_reports_nothing_to_the_loop() -> None:
    flights = make_flights()
    load = Load("k", 1, fails="backend down")
    with loop_exceptions() as reported:
        flights.start(("k",), load)
        waiters = [waiter(flights, "k") for _ in range(3)]
        await settle()
        load.release.set()
        async with asyncio.timeout(1):
            outcomes = await asyncio.gather(*waiters, return_exceptions=True)
        assert [str(outcome) for outcome in outcomes] == ["backend down"] * 3
        assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
        del waiters, outcomes
    assert reported == []
    assert flights.get("k") is None


async def test_a_load_failing_with_nobody_waiting_reports_nothing_to_the_loop() -> None:
    flights = make_flights()
    load = Load("k", 1, fails="backend down")
    with loop_exceptions() as reported:
        flights.start(("k",), load)
        load.release.set()
        await settle()
        assert flights.get("k") is None
    assert reported == []


async def test_a_waiter_of_two_flights_cancelled_leaves_both() -> None:
    flights = make_flights()
    a, b = Load("a", 1), Load("b", 2)
    both = (flights.start(("a",), a), flights.start(("b",), b))
    task = asyncio.create_task(flights.wait(both))
    await settle()
    a.release.set()
    await settle()
    task.cancel()
    await settle()
    assert b.cancelled == 1
    assert a.cancelled == 0
    assert len(flights) == 0


async def test_a_waiter_of_two_flights_gets_both_results() -> None:
    flights = make_flights()
    a, b = Load("a", 1), Load("b", 2)
    both = (flights.start(("a",), a), flights.start(("b",), b))
    a.release.set()
    b.release.set()
    async with asyncio.timeout(1):
        assert await flights.wait(both) == {"a": 1, "b": 2}


async def test_aclose_cancels_every_flight_and_waits_until_its_task_is_gone() -> None:
    flights = make_flights()
    loads = [Load(key, 0) for key in "abc"]
    started = [flights.start((load.key,), load) for load in loads]
    waiting = asyncio.create_task(flights.wait(started[:1]))
    await settle()
    async with asyncio.timeout(1):
        await flights.aclose()
    assert all(flight.task.done() and flight.task.cancelled() for flight in started)
    assert [load.cancelled for load in loads] == [1, 1, 1]
    assert len(flights) == 0
    # a caller nobody cancelled is told why its wait ended, not handed a cancellation
    with pytest.raises(Closed):
        async with asyncio.timeout(1):
            await waiting
    assert not waiting.cancelled()


async def test_a_caller_cancelled_as_flights_close_is_cancelled() -> None:
    flights = make_flights()
    load = Load("k", 0)
    flight = flights.start(("k",), load)
    cancelled = asyncio.create_task(flights.wait((flight,)))
    told = asyncio.create_task(flights.wait((flight,)))
    await settle()
    cancelled.cancel()
    async with asyncio.timeout(1):
        await flights.aclose()
        outcomes = await asyncio.gather(cancelled, told, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert isinstance(outcomes[1], Closed)


async def test_closed_flights_start_nothing() -> None:
    flights = make_flights()
    await flights.aclose()
    load = Load("k", 0)
    with pytest.raises(Closed):
        flights.start(("k",), load)
    await settle()
    assert load.started == 0
    assert_forgotten(flights)


async def test_aclose_of_flights_with_nothing_in_flight_returns_at_once() -> None:
    flights = make_flights()
    async with asyncio.timeout(1):
        await flights.aclose()
    assert len(flights) == 0


# ------------------------------------------------- the cache's drops find its loads


class HeldBackend(FakeBackend):
    """A ``FakeBackend`` whose every read is counted, then waits for ``held``."""

    def __init__(self) -> None:
        super().__init__({"t": {"a": {"pk": {"S": "a"}, "v": {"S": "1"}}}, "u": {}})
        self.held = self.gate = asyncio.Event()

    async def batch_get_item(self, **request: Any) -> dict[str, Any]:
        answer = await super().batch_get_item(**request)  # counted, then held
        await self.held.wait()
        return answer

    async def scan(self, **request: Any) -> dict[str, Any]:
        answer = await super().scan(**request)
        await self.held.wait()
        return answer


KEY = {"pk": {"S": "a"}}
READS: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "whole item": ("get_item", lambda table: {"TableName": table, "Key": KEY}),
    "projection": (
        "get_item",
        lambda table: {"TableName": table, "Key": KEY, "ProjectionExpression": "v"},
    ),
    "batch key": ("batch_get_item", lambda table: {"RequestItems": {table: {"Keys": [KEY]}}}),
    "scan page": ("scan", lambda table: {"TableName": table}),
}
DROPS: dict[str, Callable[[aiodax.Cache], None]] = {
    "item": lambda cache: cache.invalidate("t", KEY),
    "table": lambda cache: cache.invalidate_table("t"),
}


@pytest.mark.parametrize("drop", DROPS, ids=str)
@pytest.mark.parametrize("read", READS, ids=str)
async def test_a_drop_detaches_the_loads_it_makes_stale_and_no_others(read: str, drop: str) -> None:
    operation, request = READS[read]
    backend = HeldBackend()
    async with aiodax.Cache() as cache:
        cached = cache.wrap(backend.client())
        call = getattr(cached, operation)
        reads: list[asyncio.Task[Any]] = []

        async def start(table: str) -> None:
            reads.append(asyncio.create_task(call(**request(table))))
            await settle()

        await start("t")
        await start("u")
        DROPS[drop](cache)
        try:
            # after the drop a read of "t" sends its own request; one of "u" joins the old
            await start("t")
            await start("u")
            assert backend.calls[operation] == 3
            # what a newcomer would join: the fresh load and the other table's
            assert cache.stats()["InFlight"] == 2
        finally:
            backend.held.set()
            async with asyncio.timeout(1):
                await asyncio.gather(*reads)
        assert cache.stats()["InFlight"] == 0

"""Single-flight (``_flight``): concurrent identical loads share one task, and leave it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from aiodax._flight import Flights


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
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
    first = Load("k", 1)
    first.release.set()
    flight = flights.start(("k",), first)
    assert flights.get("k") is flight
    async with asyncio.timeout(1):
        assert await flights.wait((flight,)) == {"k": 1}
    assert flights.get("k") is None
    assert len(flights) == 0


async def test_a_flight_of_many_keys_is_found_by_each_of_them() -> None:
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
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


async def test_detach_where_detaches_only_the_flights_it_picks() -> None:
    flights: Flights[str, int] = Flights()
    loads = {key: Load(key, n) for n, key in enumerate(["a1", "a2", "b1"])}
    started = {key: flights.start((key,), load) for key, load in loads.items()}
    flights.detach_where(lambda key, _: key.startswith("a"))
    assert flights.get("a1") is None
    assert flights.get("a2") is None
    assert flights.get("b1") is started["b1"]
    for load in loads.values():
        load.release.set()
    async with asyncio.timeout(1):
        assert await flights.wait(started.values()) == {"a1": 0, "a2": 1, "b1": 2}


async def test_a_failing_load_raises_to_every_waiter_and_reports_nothing_to_the_loop() -> None:
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
    load = Load("k", 1, fails="backend down")
    with loop_exceptions() as reported:
        flights.start(("k",), load)
        load.release.set()
        await settle()
        assert flights.get("k") is None
    assert reported == []


async def test_a_waiter_of_two_flights_cancelled_leaves_both() -> None:
    flights: Flights[str, int] = Flights()
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
    flights: Flights[str, int] = Flights()
    a, b = Load("a", 1), Load("b", 2)
    both = (flights.start(("a",), a), flights.start(("b",), b))
    a.release.set()
    b.release.set()
    async with asyncio.timeout(1):
        assert await flights.wait(both) == {"a": 1, "b": 2}


async def test_aclose_cancels_every_flight_and_waits_until_its_task_is_gone() -> None:
    flights: Flights[str, int] = Flights()
    loads = [Load(key, 0) for key in "abc"]
    started = [flights.start((load.key,), load) for load in loads]
    waiting = asyncio.create_task(flights.wait(started[:1]))
    await settle()
    async with asyncio.timeout(1):
        await flights.aclose()
    assert all(flight.task.done() and flight.task.cancelled() for flight in started)
    assert [load.cancelled for load in loads] == [1, 1, 1]
    assert len(flights) == 0
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(1):
            await waiting


async def test_aclose_of_flights_with_nothing_in_flight_returns_at_once() -> None:
    flights: Flights[str, int] = Flights()
    async with asyncio.timeout(1):
        await flights.aclose()
    assert len(flights) == 0

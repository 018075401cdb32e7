"""``redis_step``: Redis failures are waited out, a cancellation never is."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from aiodax.streams._common import Counters
from aiodax.streams._reader import redis_step


async def test_failures_are_retried_until_redis_answers() -> None:
    counters = Counters()
    failures = [RedisConnectionError("refused"), OSError("reset")]

    async def step(value: int) -> int:
        if failures:
            raise failures.pop(0)
        return value

    assert await redis_step(counters, lambda: 0.0, step, 5) == 5
    assert counters.redis_failures == 2


async def test_a_cancellation_that_comes_out_as_a_timeout_is_not_retried() -> None:
    counters = Counters()
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            # What a client's own read timeout may turn a cancellation into.
            raise TimeoutError("read timed out") from None

    task = asyncio.create_task(redis_step(counters, lambda: 0.0, step))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert counters.redis_failures == 0


async def test_a_cancellation_a_step_swallows_still_stops_the_caller() -> None:
    counters = Counters()
    started = asyncio.Event()

    async def step() -> bool:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            # What a client's connection handling may do while Redis restarts.
            return False
        return True

    task = asyncio.create_task(redis_step(counters, lambda: 0.0, step))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

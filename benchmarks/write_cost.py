"""What a write costs while many keys are loading: a 25-put BatchWriteItem beside 20,000 loads.

Every key a write names is dropped, and a drop detaches the loads in flight that
it makes stale.  This measures what that costs when many loads are out: one
process, no server, a fake backend that answers ``DescribeTable`` and
``BatchWriteItem`` at once and holds every ``BatchGetItem`` until the end.  In
one cache 200 BatchGetItems of 100 keys (20,000 keys) are loading; in another
nothing is.  A BatchWriteItem of 25 puts (keys none of the loads asks for) is
timed through each, rounds interleaved.  The fake answers without awaiting, so a
write's time is all CPU: how long it holds the event loop.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import aiodax

from ._common import Contender, environment, fmt_ratio, fmt_us, markdown_table, measure

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TABLE = "aiodax-bench"
LOADS = 200
KEYS_PER_LOAD = 100
PUTS = 25
ROUNDS = 7
WRITES = 200
METADATA = {"RequestId": "fake", "HTTPStatusCode": 200, "RetryAttempts": 0}


class SlowBackend:
    """Just enough of a DynamoDB client: schema and writes at once, reads held."""

    def __init__(self) -> None:
        self.meta = SimpleNamespace(
            service_model=SimpleNamespace(service_name="dynamodb"), events=SimpleNamespace()
        )
        self.release = asyncio.Event()
        #: set once ``LOADS`` BatchGetItems are held
        self.all_held = asyncio.Event()
        self.reads_waiting = 0

    async def describe_table(self, **request: Any) -> dict[str, Any]:
        key_schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
        return {"Table": {"TableName": request["TableName"], "KeySchema": key_schema}}

    async def get_item(self, **request: Any) -> dict[str, Any]:
        raise NotImplementedError("the benchmark sends no GetItem")

    async def batch_get_item(self, **request: Any) -> dict[str, Any]:
        self.reads_waiting += 1
        if self.reads_waiting == LOADS:
            self.all_held.set()
        try:
            await self.release.wait()
        finally:
            self.reads_waiting -= 1
        return {"Responses": {}, "UnprocessedKeys": {}, "ResponseMetadata": METADATA}

    async def batch_write_item(self, **request: Any) -> dict[str, Any]:
        return {"UnprocessedItems": {}, "ResponseMetadata": METADATA}


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


async def _start_loads(cached: Any, backend: SlowBackend) -> list[asyncio.Task[Any]]:
    """``LOADS`` BatchGetItems of ``KEYS_PER_LOAD`` keys each, all held by the backend."""
    loads = [
        asyncio.create_task(
            cached.batch_get_item(
                RequestItems={
                    TABLE: {"Keys": [_key(f"loading-{n}-{i}") for i in range(KEYS_PER_LOAD)]}
                }
            )
        )
        for n in range(LOADS)
    ]
    async with asyncio.timeout(60):
        await backend.all_held.wait()
    return loads


def _writer(name: str, cached: Any) -> Contender:
    request = {
        TABLE: [
            {"PutRequest": {"Item": {**_key(f"written-{i}"), "v": {"N": "1"}}}} for i in range(PUTS)
        ]
    }

    async def run(n: int) -> None:
        for _ in range(n):
            await cached.batch_write_item(RequestItems=request)

    return Contender(name, run, WRITES)


async def run() -> str:
    loading_backend, idle_backend = SlowBackend(), SlowBackend()
    async with aiodax.Cache() as loading_cache, aiodax.Cache() as idle_cache:
        loading = loading_cache.wrap(cast("DynamoDBClient", loading_backend))
        idle = idle_cache.wrap(cast("DynamoDBClient", idle_backend))
        loads = await _start_loads(loading, loading_backend)
        try:
            in_flight = loading_cache.stats()["InFlight"]
            assert in_flight == LOADS * KEYS_PER_LOAD, in_flight
            busy_name, calm_name = f"{in_flight:,} keys loading", "nothing loading"
            timings = await measure([_writer(busy_name, loading), _writer(calm_name, idle)], ROUNDS)
            # The writes named no key being loaded: every load is still out.
            assert loading_cache.stats()["InFlight"] == in_flight
        finally:
            for task in loads:
                task.cancel()
            await asyncio.gather(*loads, return_exceptions=True)
    busy_t, calm_t = timings[busy_name], timings[calm_name]
    rows = [
        [name, fmt_us(timing.min_us), fmt_us(timing.median_us)]
        for name, timing in ((calm_name, calm_t), (busy_name, busy_t))
    ]
    ratio = f"{fmt_ratio(busy_t.min_us / calm_t.min_us)} / "
    ratio += fmt_ratio(busy_t.median_us / calm_t.median_us)
    return "\n".join(
        [
            "### A write while keys are loading",
            "",
            f"A {PUTS}-put `batch_write_item` through the cache (the fake backend answers at "
            f"once: the time is CPU on the event loop), with {LOADS} `batch_get_item`s of "
            f"{KEYS_PER_LOAD} other keys held in flight, and with none; {ROUNDS} interleaved "
            f"rounds of {WRITES} writes.",
            "",
            markdown_table(["", "min µs per write", "median µs per write"], rows),
            "",
            f"With {in_flight:,} keys loading ÷ with none (min / median): {ratio}.",
            "",
            environment(["aiodax"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

"""The Redis tier: how fast a write reaches other processes, and what the tier costs.

Measured with real processes (``multiprocessing`` spawn, each with its own event loop,
client and ``Cache``) against a moto server and a ``redis-server`` of their own, both
in child processes on 127.0.0.1:

- **propagation**: one writer puts a new value of one item every 10 ms; every other
  process keeps reading it through its cache and stamps (``time.monotonic``, which
  all processes share) the first read that returns a value at least as new.  Per
  write and reader, the delay from the writer's ``put_item`` returning to that read
  starting.  *idle*: readers read every millisecond; *busy*: every reader serves at
  least 5,000 hits/s besides.
- **hit cost**: an L1 hit through a cache with the tier on, next to one without,
  rounds interleaved in one process.
- **write cost**: ``put_item`` through a cache with the tier, without, and uncached.

Bounded: a few hundred writes per scenario, every process stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event as EventType
from typing import TYPE_CHECKING, Any

import aioboto3

import aiodax
from aiodax.testing.servers import client_kwargs

from ._common import Contender, environment, fmt_ratio, fmt_us, markdown_table, measure

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TABLE = "aiodax-bench"
KEY = {"pk": {"S": "hot"}}
WRITES = 1000
SPACING = 0.01
WRITE_SAMPLES = 300
NAMESPACE = "bench"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@contextlib.contextmanager
def _servers() -> Iterator[tuple[str, str]]:
    """A redis-server and a moto server, each in a process of its own."""
    redis_port, moto_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        redis = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(redis_port, redis, "redis-server")
            _wait_for(moto_port, moto, "moto")
            yield f"redis://127.0.0.1:{redis_port}/0", f"http://127.0.0.1:{moto_port}"
        finally:
            for process in (redis, moto):
                process.kill()
                process.wait()


def _tier(redis_url: str, scenario: str = "") -> aiodax.RedisTier:
    # A namespace per scenario: the shared copies of one are not the next one's (the
    # item is reset between them by a write that bypasses the caches).
    return aiodax.RedisTier(redis_url, namespace=f"{NAMESPACE}{scenario}")


# ------------------------------------------------------------------ readers


def _reader(
    redis_url: str,
    moto_url: str,
    scenario: str,
    busy: bool,
    ready: EventType,
    stop: EventType,
    results: Any,
) -> None:
    results.put(asyncio.run(_read(redis_url, moto_url, scenario, busy, ready, stop)))


async def _read(
    redis_url: str, moto_url: str, scenario: str, busy: bool, ready: EventType, stop: EventType
) -> tuple[list[tuple[int, float]], int, float]:
    """(value, when the read that first returned it started), reads made, seconds."""
    seen: list[tuple[int, float]] = []
    reads = 0
    async with (
        aioboto3.Session().client("dynamodb", **client_kwargs(moto_url)) as raw,
        aiodax.Cache(redis=_tier(redis_url, scenario)) as cache,
    ):
        client = cache.wrap(raw)
        last = -1
        ready.set()
        started = time.monotonic()
        while not stop.is_set():
            # Busy: ten hits per millisecond besides the one stamped.
            for _ in range(10 if busy else 1):
                at = time.monotonic()
                answer = await client.get_item(TableName=TABLE, Key=KEY)
                reads += 1
                value = int(answer["Item"]["v"]["N"])
                if value > last:
                    seen.append((value, at))
                    last = value
            await asyncio.sleep(0.001)
        return seen, reads, time.monotonic() - started


# ------------------------------------------------------------------ scenarios


async def _propagation(
    raw: DynamoDBClient, redis_url: str, moto_url: str, processes: int, busy: bool
) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results = context.Queue()
    readies = [context.Event() for _ in range(processes - 1)]
    scenario = f"-{processes}-{'busy' if busy else 'idle'}"
    await raw.put_item(TableName=TABLE, Item={**KEY, "v": {"N": "0"}})
    workers = [
        context.Process(
            target=_reader, args=(redis_url, moto_url, scenario, busy, ready, stop, results)
        )
        for ready in readies
    ]
    for worker in workers:
        worker.start()
    try:
        loop = asyncio.get_running_loop()
        for ready in readies:
            await loop.run_in_executor(None, ready.wait, 60)
        returned: dict[int, float] = {}
        sent: dict[int, float] = {}
        async with aiodax.Cache(redis=_tier(redis_url, scenario)) as cache:
            writer = cache.wrap(raw)
            await asyncio.sleep(0.5)  # every reader has the first value cached
            for value in range(1, WRITES + 1):
                sent[value] = time.monotonic()
                await writer.put_item(TableName=TABLE, Item={**KEY, "v": {"N": str(value)}})
                returned[value] = time.monotonic()
                await asyncio.sleep(SPACING)
            await asyncio.sleep(0.5)
        stop.set()
        gathered = [await loop.run_in_executor(None, results.get, True, 60) for _ in workers]
    finally:
        stop.set()
        _stop(workers)
    after_return: list[float] = []
    after_send: list[float] = []
    rates: list[float] = []
    for seen, reads, seconds in gathered:
        rates.append(reads / seconds)
        for value, at in returned.items():
            first = _first_seen(seen, value)
            if first is not None:
                # A reader may see the write before the writer returns: the bus
                # is told before the write is acknowledged.
                after_return.append(max(0.0, first - at))
                after_send.append(first - sent[value])
    return {
        **{f"return {name}": ms for name, ms in _percentiles(after_return).items()},
        **{f"send {name}": ms for name, ms in _percentiles(after_send).items()},
        "reads_per_s": min(rates),
        "missing": WRITES * (processes - 1) - len(after_return),
    }


def _stop(workers: list[Any]) -> None:
    """Wait for the reader processes to finish; kill what does not."""
    for worker in workers:
        worker.join(30)
        if worker.is_alive():
            worker.kill()


def _first_seen(seen: list[tuple[int, float]], value: int) -> float | None:
    """When a reader's first read returning ``value`` or newer started, if one did."""
    return next((when for newer, when in seen if newer >= value), None)


def _percentiles(delays: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``delays`` (seconds), in milliseconds."""
    delays = sorted(delays)
    return {
        "p50": statistics.median(delays) * 1000,
        "p99": delays[max(0, int(len(delays) * 0.99) - 1)] * 1000,
        "max": delays[-1] * 1000,
    }


async def _hit_and_write_costs(raw: DynamoDBClient, redis_url: str) -> tuple[str, str]:
    async with aiodax.Cache() as plain_cache, aiodax.Cache(redis=_tier(redis_url)) as tier_cache:
        plain, tiered = plain_cache.wrap(raw), tier_cache.wrap(raw)
        await raw.put_item(TableName=TABLE, Item={**KEY, "v": {"N": "1"}})
        for client in (plain, tiered):
            await client.get_item(TableName=TABLE, Key=KEY)

        def hits(client: aiodax.CachedClient) -> Any:
            async def run(n: int) -> None:
                for _ in range(n):
                    await client.get_item(TableName=TABLE, Key=KEY)

            return run

        timings = await measure(
            [
                Contender("L1 hit, no tier", hits(plain), 20_000),
                Contender("L1 hit, Redis tier on", hits(tiered), 20_000),
            ],
            rounds=9,
        )
        off, on = timings["L1 hit, no tier"], timings["L1 hit, Redis tier on"]
        hit_rows = [
            [name, fmt_us(t.min_us), fmt_us(t.median_us), fmt_ratio(t.min_us / off.min_us)]
            for name, t in ((off.name, off), (on.name, on))
        ]
        hit_table = markdown_table(["", "min µs", "median µs", "vs no tier (min)"], hit_rows)

        samples: dict[str, list[float]] = {"uncached": [], "no tier": [], "Redis tier": []}
        writers: dict[str, Any] = {"uncached": raw, "no tier": plain, "Redis tier": tiered}
        for at in range(WRITE_SAMPLES):
            for name, client in writers.items():
                item = {"pk": {"S": f"w{at % 50}"}, "v": {"N": str(at)}}
                started = time.perf_counter()
                await client.put_item(TableName=TABLE, Item=item)
                samples[name].append((time.perf_counter() - started) * 1000)
        base = statistics.median(samples["no tier"])
        write_rows = [
            [name, f"{statistics.median(values):.2f}", f"{statistics.median(values) - base:+.2f}"]
            for name, values in samples.items()
        ]
        write_table = markdown_table(["put_item", "p50 ms", "vs no tier (ms)"], write_rows)
        return hit_table, write_table


async def run() -> str:
    with _servers() as (redis_url, moto_url):
        async with aioboto3.Session().client("dynamodb", **client_kwargs(moto_url)) as raw:
            await raw.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            rows = []
            for processes in (4, 8):
                for busy in (False, True):
                    found = await _propagation(raw, redis_url, moto_url, processes, busy)
                    rows.append(
                        [
                            f"{processes} processes, {'busy' if busy else 'idle'}",
                            *(f"{found[f'return {name}']:.1f}" for name in ("p50", "p99", "max")),
                            *(f"{found[f'send {name}']:.1f}" for name in ("p50", "p99")),
                            f"{found['reads_per_s']:,.0f}",
                            int(found["missing"]),
                        ]
                    )
            hit_table, write_table = await _hit_and_write_costs(raw, redis_url)
    propagation = markdown_table(
        [
            "writer → other processes",
            "after return p50 ms",
            "p99",
            "max",
            "after send p50 ms",
            "p99",
            "reads/s per reader (min)",
            "never seen",
        ],
        rows,
    )
    return "\n\n".join(
        [
            "### Redis tier (benchmarks/redis_tier.py)",
            environment(["aiodax", "redis", "moto"]) + f"; {os.cpu_count()} cores",
            f"Propagation over {WRITES} writes, one every {SPACING * 1000:.0f} ms:",
            propagation,
            hit_table,
            write_table,
        ]
    )

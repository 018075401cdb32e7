"""A hot key read by eight processes and written ten times a second: DynamoDB reads
and staleness with per-process caches, with the bus alone, and with the shared L2.

Real processes (``multiprocessing`` spawn, each with its own event loop, client and
``Cache``), a moto server and a ``redis-server`` of their own on 127.0.0.1, and a
``CountingProxy`` in front of moto that counts every GetItem where it arrives, so
the figures do not come from aiodax's own counters.  Eight readers read the key
every millisecond; a ninth process's cache writes a new value every 100 ms.

- **per-process caches** (no tier): each process reads DynamoDB once per TTL and
  never hears of the writes: few reads, most of them stale;
- **bus only** (``shared_l2=False``): every write drops every process's entry,
  and each process reads DynamoDB again: one read per write and process;
- **bus and shared L2** (the default): the first process's miss takes the lease,
  the others wait for its copy: about one read per write.

A write is *seen* by a reader at its first read returning it or a newer value;
*never seen*: (write, reader) pairs with no such read before the run ended.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from multiprocessing.synchronize import Event as EventType
from typing import Any

import aioboto3

import aiodax
from aiodax.testing import CountingProxy
from aiodax.testing.servers import client_kwargs

from ._common import environment, markdown_table
from .redis_tier import _first_seen, _percentiles, _servers, _stop

TABLE = "aiodax-bench-hot"
KEY = {"pk": {"S": "hot"}}
READERS = 8
WRITES = 50
SPACING = 0.1
#: (label, the tier's options; ``None``: no tier)
SETUPS: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("per-process caches, no tier", None),
    ("bus only (shared_l2=False)", {"shared_l2": False}),
    ("bus and shared L2", {}),
)


def _cache(redis_url: str, options: dict[str, Any] | None) -> aiodax.Cache:
    if options is None:
        return aiodax.Cache()
    return aiodax.Cache(redis=aiodax.RedisTier(redis_url, namespace="hot", **options))


def _reader(
    redis_url: str,
    endpoint: str,
    options: dict[str, Any] | None,
    ready: EventType,
    stop: EventType,
    results: Any,
) -> None:
    results.put(asyncio.run(_read(redis_url, endpoint, options, ready, stop)))


async def _read(
    redis_url: str,
    endpoint: str,
    options: dict[str, Any] | None,
    ready: EventType,
    stop: EventType,
) -> tuple[list[tuple[int, float]], int, float]:
    """(value, when the read that first returned it started), reads made, seconds."""
    seen: list[tuple[int, float]] = []
    reads = 0
    async with (
        aioboto3.Session().client("dynamodb", **client_kwargs(endpoint)) as raw,
        _cache(redis_url, options) as cache,
    ):
        client = cache.wrap(raw)
        last = -1
        await client.get_item(TableName=TABLE, Key=KEY)
        ready.set()
        started = time.monotonic()
        while not stop.is_set():
            at = time.monotonic()
            value = int((await client.get_item(TableName=TABLE, Key=KEY))["Item"]["v"]["N"])
            reads += 1
            if value > last:
                seen.append((value, at))
                last = value
            await asyncio.sleep(0.001)
        return seen, reads, time.monotonic() - started


async def _scenario(
    redis_url: str, proxy: CountingProxy, raw: Any, options: dict[str, Any] | None
) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    readies = [context.Event() for _ in range(READERS)]
    await raw.put_item(TableName=TABLE, Item={**KEY, "v": {"N": "0"}})
    workers = [
        context.Process(target=_reader, args=(redis_url, proxy.url, options, ready, stop, results))
        for ready in readies
    ]
    for worker in workers:
        worker.start()
    loop = asyncio.get_running_loop()
    try:
        for ready in readies:
            await loop.run_in_executor(None, ready.wait, 60)
        returned: dict[int, float] = {}
        async with _cache(redis_url, options) as cache:
            writer = cache.wrap(raw)
            await asyncio.sleep(0.5)
            proxy.reset()
            for value in range(1, WRITES + 1):
                await writer.put_item(TableName=TABLE, Item={**KEY, "v": {"N": str(value)}})
                returned[value] = time.monotonic()
                await asyncio.sleep(SPACING)
            await asyncio.sleep(0.5)
        stop.set()
        reads = proxy.count("GetItem")
        gathered = [await loop.run_in_executor(None, results.get, True, 60) for _ in workers]
    finally:
        stop.set()
        _stop(workers)
    delays: list[float] = []
    rates: list[float] = []
    for seen, made, seconds in gathered:
        rates.append(made / seconds)
        for value, at in returned.items():
            first = _first_seen(seen, value)
            if first is not None:
                delays.append(max(0.0, first - at))
    return {
        "reads": reads,
        "never_seen": WRITES * READERS - len(delays),
        "p99": _percentiles(delays)["p99"] if delays else float("nan"),
        "reads_per_s": min(rates),
    }


async def run() -> str:
    with _servers() as (redis_url, moto_url):
        async with (
            aioboto3.Session().client("dynamodb", **client_kwargs(moto_url)) as raw,
            CountingProxy(moto_url) as proxy,
        ):
            await raw.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            found = {
                label: await _scenario(redis_url, proxy, raw, options) for label, options in SETUPS
            }
    bus_only = found["bus only (shared_l2=False)"]["reads"]
    rows = [
        [
            label,
            int(result["reads"]),
            f"{bus_only / result['reads']:.1f}×" if result["reads"] else "—",
            int(result["never_seen"]),
            "—" if result["never_seen"] else f"{result['p99']:.1f}",
            f"{result['reads_per_s']:,.0f}",
        ]
        for label, result in found.items()
    ]
    return "\n\n".join(
        [
            "### A hot key, eight processes, ten writes a second (benchmarks/hot_key.py)",
            environment(["aiodax", "redis", "moto"]) + f"; {os.cpu_count()} cores",
            f"{READERS} reader processes, {WRITES} writes {SPACING * 1000:.0f} ms apart; "
            "GetItems counted at a proxy in front of moto:",
            markdown_table(
                [
                    "",
                    "GetItems reaching DynamoDB",
                    "fewer than bus only",
                    "(write, reader) never seen",
                    "seen p99 ms",
                    "reads/s per reader (min)",
                ],
                rows,
            ),
        ]
    )

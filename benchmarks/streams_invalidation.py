"""Writes that bypass the cache, seen through DynamoDB Streams (``aiodax streams``).

A plain client (no aiodax) puts a new value of one item every ``SPACING`` s,
``WRITES`` times; two reader processes (spawned: each its own loop, client and
``Cache(redis=...)``) keep reading it through their caches, which would serve the
old value for the whole TTL, and stamp (``time.monotonic``, shared by every process)
the first read returning a value at least as new.  Per write and reader: the delay
from the write's return to that read.  A ``StreamsInvalidator`` runs in a process
of its own at the default 250 ms idle poll; its CPU time and its Redis commands per
record are reported.  On moto's server and on DynamoDB Local, each in a process of
its own with a private redis-server, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import AsyncIterator
from multiprocessing.synchronize import Event as EventType
from typing import Any

import aioboto3

import aiodax
from aiodax.testing.servers import (
    ServerUnavailable,
    client_kwargs,
    dynamodb_local,
    string_key_table,
)

from ._common import environment, markdown_table
from .redis_tier import KEY, NAMESPACE, TABLE, _percentiles, _reader, _servers

WRITES = 250
SPACING = 0.03
READERS = 2


def _invalidator(
    endpoint: str, redis_url: str, ready: EventType, stop: EventType, results: Any
) -> None:
    results.put(asyncio.run(_invalidate(endpoint, redis_url, ready, stop)))


async def _invalidate(
    endpoint: str, redis_url: str, ready: EventType, stop: EventType
) -> dict[str, Any]:
    """Follow the table's stream until ``stop``: the invalidator's stats and CPU."""
    session = aioboto3.Session()
    async with (
        session.client("dynamodbstreams", **client_kwargs(endpoint)) as client,
        aiodax.StreamsInvalidator(
            [TABLE], client=client, redis=redis_url, namespace=NAMESPACE
        ) as invalidator,
    ):
        cpu = time.process_time()
        wall = time.monotonic()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        return {
            **invalidator.stats(),
            "cpu": time.process_time() - cpu,
            "wall": time.monotonic() - wall,
        }


@contextlib.asynccontextmanager
async def _streamed_table(endpoint: str) -> AsyncIterator[Any]:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(endpoint)) as raw:
        spec = string_key_table(TABLE)
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
        await raw.create_table(**spec)
        await raw.put_item(TableName=TABLE, Item={**KEY, "v": {"N": "0"}})
        yield raw


async def _scenario(endpoint: str, redis_url: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    stop, stop_invalidator = context.Event(), context.Event()
    results, invalidator_results = context.Queue(), context.Queue()
    readies = [context.Event() for _ in range(READERS)]
    invalidator_ready = context.Event()
    async with _streamed_table(endpoint) as raw:
        processes = [
            context.Process(
                target=_reader, args=(redis_url, endpoint, "", False, ready, stop, results)
            )
            for ready in readies
        ]
        processes.append(
            context.Process(
                target=_invalidator,
                args=(
                    endpoint,
                    redis_url,
                    invalidator_ready,
                    stop_invalidator,
                    invalidator_results,
                ),
            )
        )
        for process in processes:
            process.start()
        try:
            loop = asyncio.get_running_loop()
            for ready in [*readies, invalidator_ready]:
                await loop.run_in_executor(None, ready.wait, 90)
            await asyncio.sleep(1.0)  # every reader has value 0 cached, the stream is followed
            returned: dict[int, float] = {}
            for value in range(1, WRITES + 1):
                await raw.put_item(TableName=TABLE, Item={**KEY, "v": {"N": str(value)}})
                returned[value] = time.monotonic()
                await asyncio.sleep(SPACING)
            await asyncio.sleep(2.0)
            stop.set()
            stop_invalidator.set()
            gathered = [await loop.run_in_executor(None, results.get, True, 60) for _ in readies]
            invalidated = await loop.run_in_executor(None, invalidator_results.get, True, 60)
        finally:
            stop.set()
            stop_invalidator.set()
            for process in processes:
                process.join(30)
                if process.is_alive():
                    process.kill()
    delays: list[float] = []
    for seen, _, _ in gathered:
        for value, at in returned.items():
            first = next((when for newer, when in seen if newer >= value), None)
            if first is not None:
                delays.append(max(0.0, first - at))
    records = max(1, invalidated["Records"])
    return {
        **_percentiles(delays),
        "missing": WRITES * READERS - len(delays),
        "records": invalidated["Records"],
        "commands_per_record": invalidated["RedisCommands"] / records,
        "cpu_ms_per_record": invalidated["cpu"] * 1000 / records,
        "cpu_share": invalidated["cpu"] / invalidated["wall"],
    }


async def run() -> str:
    rows: list[list[Any]] = []
    with _servers() as (redis_url, moto_url):
        rows.append(["moto", *_row(await _scenario(moto_url, redis_url))])
    try:
        with _servers() as (redis_url, _), dynamodb_local() as local_url:
            rows.append(["DynamoDB Local", *_row(await _scenario(local_url, redis_url))])
    except ServerUnavailable as missing:
        rows.append(["DynamoDB Local", f"not run: {missing.reason}", "", "", "", "", "", ""])
    table = markdown_table(
        [
            "bypassing write → every reader",
            "p50 ms",
            "p99 ms",
            "max ms",
            "never seen",
            "Redis commands / record",
            "CPU ms / record",
            "invalidator CPU",
        ],
        rows,
    )
    return "\n\n".join(
        [
            "### DynamoDB Streams invalidation (benchmarks/streams_invalidation.py)",
            environment(["aiodax", "redis", "moto"]) + f"; {os.cpu_count()} cores",
            f"{WRITES} plain puts of one item, one every {SPACING * 1000:.0f} ms; "
            f"{READERS} caching reader processes; 250 ms idle poll:",
            table,
        ]
    )


def _row(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['p50']:.0f}",
        f"{result['p99']:.0f}",
        f"{result['max']:.0f}",
        str(result["missing"]),
        f"{result['commands_per_record']:.2f}",
        f"{result['cpu_ms_per_record']:.2f}",
        f"{result['cpu_share'] * 100:.1f}% of a core",
    ]

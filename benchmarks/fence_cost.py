"""What the fence costs: consistent reads on the stampede load with 5% writes.

The load of ``aiodax stampede`` (``aiodax.stampede``): 100 workers started at once,
GetItem and Query of 20 keys (Zipf 1.1), 5% of the requests ``put_item``.  Each
write drops its item and its partition's pages, and for ``fence`` seconds (2 s)
after it every fill of what it dropped reads with ``ConsistentRead=True``.  The
same seeded plan is replayed with ``fill_consistency="eventual"`` (no fence, DAX's
behaviour), ``"fenced"`` (the default) and ``"strong"`` (every fill consistent),
each with a fresh cache, against moto's server on a free loopback port behind an
``aiodax.testing.CountingProxy``, which counts the reads and their
``ConsistentRead`` where they arrive.

Read capacity is DynamoDB's rule applied to those counts (moto does not meter it):
every item here is under 4 KB and every Query reads one, so a read costs 1 read
capacity unit consistent and 0.5 eventually consistent.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import aioboto3

import aiodax
from aiodax.stampede import (
    DataPlane,
    LoadSpec,
    Target,
    drive,
    key_value,
    percentile,
    plan_operations,
    prepare_table,
)
from aiodax.testing import CountingProxy
from aiodax.testing.servers import client_kwargs, moto_server

from ._common import environment, fmt_ratio, markdown_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

SPEC = LoadSpec(
    requests=2000, concurrency=100, keys=20, op="mixed", write_ratio=0.05, duration=30.0
)
MODES = ("eventual", "fenced", "strong")
READS = ("GetItem", "Query")
#: read capacity units of one read of an item under 4 KB
EVENTUAL_RCU = 0.5
CONSISTENT_RCU = 1.0


@dataclass(frozen=True)
class Run:
    reads: int
    consistent: int
    consistent_fills: int
    latencies: tuple[float, ...]
    errors: int
    seconds: float

    @property
    def capacity(self) -> float:
        return (self.reads - self.consistent) * EVENTUAL_RCU + self.consistent * CONSISTENT_RCU


async def _run(
    client: DynamoDBClient, proxy: CountingProxy, table: str, hash_key: str, mode: str
) -> Run:
    plan = plan_operations(SPEC)
    async with aiodax.Cache(item_ttl=SPEC.ttl, query_ttl=SPEC.ttl, fill_consistency=mode) as cache:
        cached = cache.wrap(client)
        gc.collect()
        proxy.reset()
        load = await drive(
            cast(DataPlane, cached),
            table,
            hash_key,
            plan,
            concurrency=SPEC.concurrency,
            duration=SPEC.duration,
        )
        stats = cache.stats()
    reads = [entry for entry in proxy.log if entry.operation in READS]
    return Run(
        reads=len(reads),
        consistent=sum(entry.consistent for entry in reads),
        consistent_fills=stats["ConsistentFills"],
        latencies=tuple(sorted(load.latencies)),
        errors=sum(load.errors.values()),
        seconds=load.elapsed,
    )


async def run() -> str:
    runs: dict[str, Run] = {}
    with moto_server() as url:
        async with CountingProxy(url, log_size=100_000) as proxy:
            target = Target(
                proxy.url,
                f"aiodax-bench-fence-{uuid.uuid4().hex[:8]}",
                create=True,
                seed=True,
                label="moto (embedded)",
            )
            kwargs = client_kwargs(proxy.url, max_pool_connections=SPEC.pool_size)
            async with aioboto3.Session().client("dynamodb", **kwargs) as client:
                hash_key = await prepare_table(client, target, SPEC)
                try:
                    # A client's first request costs ~100 ms more: not in any run.
                    await client.get_item(
                        TableName=target.table, Key={hash_key: {"S": key_value(SPEC.keys)}}
                    )
                    for mode in MODES:
                        runs[mode] = await _run(client, proxy, target.table, hash_key, mode)
                finally:
                    await client.delete_table(TableName=target.table)
    plan = plan_operations(SPEC)
    writes = sum(kind == "put" for kind, _ in plan)
    eventual = runs["eventual"]
    rows = []
    for mode, result in runs.items():
        rows.append(
            [
                f'"{mode}"',
                f"{result.reads:,}",
                f"{result.consistent:,}",
                f"{result.consistent_fills:,}",
                f"{result.capacity:,.1f}",
                fmt_ratio(result.capacity / eventual.capacity),
                f"{percentile(result.latencies, 0.5) * 1000:,.1f}",
                f"{percentile(result.latencies, 0.99) * 1000:,.1f}",
                f"{result.seconds:,.1f}",
                f"{result.errors:,}",
            ]
        )
    header = [
        "fill_consistency",
        "reads at the server",
        "of them consistent",
        "ConsistentFills",
        "read capacity (RCU)",
        "÷ eventual",
        "p50 ms",
        "p99 ms",
        "run s",
        "errors",
    ]
    fenced = runs["fenced"]
    return "\n".join(
        [
            "### The fence's cost: consistent reads on the stampede load with 5% writes",
            "",
            f"{SPEC.requests:,} requests from {SPEC.concurrency} workers started at once, "
            f"{SPEC.keys} keys (Zipf {SPEC.skew}), half GetItem half Query, {writes} of them "
            f"`put_item`; fence {aiodax.Cache().config.fence:.0f} s. The same seeded plan per "
            "mode, a fresh cache each; reads (GetItem and Query) and their `ConsistentRead` "
            "counted by a `CountingProxy` in front of moto's server (127.0.0.1). Read "
            f"capacity: {CONSISTENT_RCU} RCU a consistent read, {EVENTUAL_RCU} an eventual "
            "one (items under 4 KB).",
            "",
            markdown_table(header, rows),
            "",
            f"Fenced ÷ eventual: {fmt_ratio(fenced.reads / eventual.reads)} the reads, "
            f"{fmt_ratio(fenced.capacity / eventual.capacity)} the read capacity.",
            "",
            environment(["aiodax", "aioboto3", "moto"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

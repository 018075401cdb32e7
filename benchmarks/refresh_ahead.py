"""A hot key across TTL boundaries, with and without refresh-ahead.

200 asyncio workers read one item through one cache for a few seconds, each read
followed by a short sleep (a hit never yields to the event loop, so unpaced workers
would starve it).  The item's TTL is 1 s: the run crosses several TTL boundaries.
Without refresh-ahead, every worker that reads at a boundary misses and waits for the
one GetItem its miss coalesces onto; with it (XFetch, ``β = 1``), a read shortly
before the boundary starts one background reload and every reader is served.

DynamoDB is moto's server on a free loopback port behind an
``aiodax.testing.CountingProxy``: the GetItems per TTL are counted where they
arrive, not by the cache.  Rounds alternate the two caches; latencies are pooled.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aioboto3

import aiodax
from aiodax.stampede import percentile
from aiodax.testing import CountingProxy
from aiodax.testing.servers import client_kwargs, moto_server, string_key_table

from ._common import environment, fmt_ratio, markdown_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TABLE = "aiodax-bench-refresh-ahead"
KEY = {"pk": {"S": "hot"}}
WORKERS = 200
#: seconds each worker sleeps after a read: 200 workers ask about 10,000 times a second
PACE = 0.02
TTL = 1.0
#: seconds of one round: five TTLs
DURATION = 5.0
ROUNDS = 2
BETA = 1.0


@dataclass
class Tally:
    """What the rounds of one cache measured, pooled."""

    latencies: list[float] = field(default_factory=list)
    #: GetItems that reached the server (the proxy's count)
    server_gets: int = 0
    #: reads that missed the cache and waited for DynamoDB
    misses: int = 0
    refreshes_ahead: int = 0
    seconds: float = 0.0


async def _round(client: DynamoDBClient, proxy: CountingProxy, beta: float | None) -> Tally:
    """One round: a fresh cache, warmed by one read, then ``WORKERS`` for ``DURATION``."""
    tally = Tally()
    async with aiodax.Cache(item_ttl=TTL, refresh_ahead=beta) as cache:
        cached = cache.wrap(client)
        await cached.get_item(TableName=TABLE, Key=KEY)
        gc.collect()
        before = cache.stats()
        proxy.reset()
        latencies = tally.latencies
        started = time.monotonic()
        deadline = started + DURATION

        async def worker() -> None:
            while time.monotonic() < deadline:
                begun = time.perf_counter()
                await cached.get_item(TableName=TABLE, Key=KEY)
                latencies.append(time.perf_counter() - begun)
                await asyncio.sleep(PACE)

        async with asyncio.timeout(DURATION + 30):
            await asyncio.gather(*(worker() for _ in range(WORKERS)))
        tally.seconds = time.monotonic() - started
        tally.server_gets = proxy.count("GetItem")
        after = cache.stats()
        tally.misses = after["ItemCacheMisses"] - before["ItemCacheMisses"]
        tally.refreshes_ahead = after["RefreshesAhead"] - before["RefreshesAhead"]
    return tally


def _pooled(tallies: list[Tally]) -> Tally:
    pooled = Tally()
    for tally in tallies:
        pooled.latencies.extend(tally.latencies)
        pooled.server_gets += tally.server_gets
        pooled.misses += tally.misses
        pooled.refreshes_ahead += tally.refreshes_ahead
        pooled.seconds += tally.seconds
    return pooled


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    return f"{milliseconds:,.3f}" if milliseconds < 10 else f"{milliseconds:,.1f}"


async def run() -> str:
    contenders: dict[str, float | None] = {
        "without refresh-ahead": None,
        f"refresh_ahead={BETA}": BETA,
    }
    rounds: dict[str, list[Tally]] = {name: [] for name in contenders}
    with moto_server() as url:
        async with CountingProxy(url) as proxy:
            kwargs = client_kwargs(proxy.url)
            async with aioboto3.Session().client("dynamodb", **kwargs) as client:
                await client.create_table(**string_key_table(TABLE))
                await client.put_item(TableName=TABLE, Item={**KEY, "v": {"S": "x" * 200}})
                try:
                    for _ in range(ROUNDS):
                        for name, beta in contenders.items():
                            rounds[name].append(await _round(client, proxy, beta))
                finally:
                    await client.delete_table(TableName=TABLE)
    pooled = {name: _pooled(tallies) for name, tallies in rounds.items()}
    rows = []
    for name, tally in pooled.items():
        ordered = sorted(tally.latencies)
        ttls = tally.seconds / TTL
        rows.append(
            [
                name,
                f"{len(ordered):,}",
                _ms(percentile(ordered, 0.50)),
                _ms(percentile(ordered, 0.99)),
                _ms(percentile(ordered, 0.999)),
                _ms(ordered[-1]),
                f"{tally.misses:,}",
                f"{tally.server_gets:,}",
                f"{tally.server_gets / ttls:.2f}",
                f"{tally.refreshes_ahead:,}",
            ]
        )
    without, with_ = (sorted(t.latencies) for t in pooled.values())
    p99_ratio = percentile(without, 0.99) / percentile(with_, 0.99)
    header = [
        "",
        "reads",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "reads that waited (misses)",
        "GetItem at the server",
        "GetItem per TTL",
        "RefreshesAhead",
    ]
    return "\n".join(
        [
            "### A hot key across TTL boundaries: refresh-ahead",
            "",
            f"{WORKERS} asyncio workers read one item, each sleeping {PACE * 1000:.0f} ms "
            f"between reads, for {DURATION:.0f} s (item_ttl={TTL:.0f} s: "
            f"{DURATION / TTL:.0f} TTL boundaries) per round; {ROUNDS} rounds per cache, "
            "alternating, pooled. GetItems counted by a `CountingProxy` in front of moto's "
            "server (127.0.0.1).",
            "",
            markdown_table(header, rows),
            "",
            f"p99 without ÷ with refresh-ahead: {fmt_ratio(p99_ratio)}.",
            "",
            environment(["aiodax", "aioboto3", "moto"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

"""Soak: a bounded mixed read/write load with injected faults, checked for consistency.

Not part of CI nor of ``python -m benchmarks`` (its point is to run long); run it
by hand::

    .venv/bin/python -m benchmarks.soak               # 60 s
    .venv/bin/python -m benchmarks.soak --seconds 600 --workers 32

An embedded moto server on 127.0.0.1 serves one table. Workers read (get, batch
get, query, scan) and write (put, update, delete, conditional put, batch write,
transaction) a small hot key set through one ``Cache`` over an
``InstrumentedClient`` that, at random, injects throttling, 5xx before and after
sending, timeouts, lost connections and latency. Every few seconds the load
pauses (a quiescent point) and every key and partition is read through the cache
and compared with DynamoDB's consistent answer: any difference is a consistency
violation, and there must be none. Reports operations, errors by kind, hit ratio,
coalescing, violations and peak RSS; exits 1 on a violation.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from collections import Counter
from typing import Any

import aioboto3
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import aiodax
from aiodax.testing import InstrumentedClient
from aiodax.testing.servers import client_kwargs, moto_server, string_key_table

TABLE = "aiodax-soak"
PARTITIONS = ("p0", "p1")
SORT_KEYS = tuple(f"s{i}" for i in range(8))
URL = "http://127.0.0.1:1"

FAULTS: list[tuple[str, Any, str]] = [
    ("throttled", "ProvisionedThroughputExceededException", "before"),
    ("throttling", "ThrottlingException", "before"),
    ("5xx-before", "InternalServerError", "before"),
    ("5xx-after", "InternalServerError", "after"),
    ("timeout-after", lambda: ReadTimeoutError(endpoint_url=URL), "after"),
    ("connection", lambda: EndpointConnectionError(endpoint_url=URL), "before"),
]
OPERATIONS = (
    "get_item",
    "batch_get_item",
    "query",
    "scan",
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
)


def key(partition: str, sort: str) -> dict[str, Any]:
    return {"pk": {"S": partition}, "sk": {"S": sort}}


def query_request(partition: str) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": partition}},
    }


class Soak:
    def __init__(self, cached: aiodax.CachedClient, raw: InstrumentedClient, seed: int) -> None:
        self.cached = cached
        self.raw = raw
        self.random = random.Random(seed)
        self.operations: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.violations: list[str] = []

    def inject(self) -> None:
        """Now and then, a fault or some latency on a random operation."""
        roll = self.random.random()
        operation = self.random.choice(OPERATIONS)
        if roll < 0.05:
            name, error, when = self.random.choice(FAULTS)
            self.raw.fail(operation, error, when=when)  # type: ignore[arg-type]
            self.faults[name] += 1
        elif roll < 0.10:
            self.raw.delay(operation, self.random.random() * 0.02, times=1)

    async def one(self) -> None:
        r = self.random
        partition, sort = r.choice(PARTITIONS), r.choice(SORT_KEYS)
        k = key(partition, sort)
        value = {"S": f"v{r.randrange(1_000_000)}"}
        kind = r.choices(
            ["get", "batch_get", "query", "scan", "put", "update", "delete", "cond", "batch", "tx"],
            weights=[40, 8, 10, 3, 10, 8, 4, 3, 3, 3],
        )[0]
        c = self.cached
        self.inject()
        try:
            if kind == "get":
                await c.get_item(TableName=TABLE, Key=k)
            elif kind == "batch_get":
                keys = [key(partition, s) for s in r.sample(SORT_KEYS, 3)]
                await c.batch_get_item(RequestItems={TABLE: {"Keys": keys}})
            elif kind == "query":
                await c.query(**query_request(partition))
            elif kind == "scan":
                await c.scan(TableName=TABLE)
            elif kind == "put":
                await c.put_item(TableName=TABLE, Item={**k, "v": value})
            elif kind == "update":
                await c.update_item(
                    TableName=TABLE,
                    Key=k,
                    UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": value},
                )
            elif kind == "delete":
                await c.delete_item(TableName=TABLE, Key=k)
            elif kind == "cond":
                await c.put_item(
                    TableName=TABLE,
                    Item={**k, "v": value},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            elif kind == "batch":
                await c.batch_write_item(
                    RequestItems={TABLE: [{"PutRequest": {"Item": {**k, "v": value}}}]}
                )
            else:
                await c.transact_write_items(
                    TransactItems=[{"Put": {"TableName": TABLE, "Item": {**k, "v": value}}}]
                )
        except ClientError as error:
            self.errors[error.response["Error"]["Code"]] += 1
        except Exception as error:  # injected timeouts and lost connections
            self.errors[type(error).__name__] += 1
        finally:
            self.operations[kind] += 1

    async def worker(self, until: float) -> None:
        while time.monotonic() < until:
            await self.one()

    async def check(self) -> None:
        """At a quiescent point: every cached read equals DynamoDB's consistent one."""
        self.raw.clear_rules()
        direct = self.raw.wrapped
        for partition in PARTITIONS:
            for sort in SORT_KEYS:
                k = key(partition, sort)
                through = await self.cached.get_item(TableName=TABLE, Key=k)
                truth = await direct.get_item(TableName=TABLE, Key=k, ConsistentRead=True)
                if through.get("Item") != truth.get("Item"):
                    self.violations.append(f"item {partition}/{sort}: {through} != {truth}")
            page = await self.cached.query(**query_request(partition))
            truth_page = await direct.query(**query_request(partition), ConsistentRead=True)
            if page["Items"] != truth_page["Items"]:
                self.violations.append(f"query {partition}: pages differ")


async def soak(seconds: float, workers: int, check_every: float, seed: int) -> int:
    with moto_server() as url:
        kwargs = client_kwargs(url, max_attempts=1, max_pool_connections=workers)
        async with aioboto3.Session().client("dynamodb", **kwargs) as client:
            await client.create_table(**string_key_table(TABLE, "pk", "sk"))
            try:
                raw = InstrumentedClient(client)
                async with aiodax.Cache(item_ttl=None, query_ttl=None) as cache:
                    runner = Soak(cache.wrap(raw), raw, seed)  # type: ignore[call-overload]
                    started = time.monotonic()
                    end = started + seconds
                    checks = 0
                    while time.monotonic() < end:
                        until = min(end, time.monotonic() + check_every)
                        await asyncio.gather(*(runner.worker(until) for _ in range(workers)))
                        await runner.check()
                        checks += 1
                    elapsed = time.monotonic() - started
                    stats = cache.stats()
            finally:
                await client.delete_table(TableName=TABLE)
    print(report(runner, stats, elapsed, checks))
    return 1 if runner.violations else 0


def report(runner: Soak, stats: dict[str, Any], elapsed: float, checks: int) -> str:
    total = sum(runner.operations.values())
    hits = stats["ItemCacheHits"] + stats["QueryCacheHits"] + stats["ScanCacheHits"]
    misses = stats["ItemCacheMisses"] + stats["QueryCacheMisses"] + stats["ScanCacheMisses"]
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    lines = [
        "## Soak",
        "",
        f"- duration: {elapsed:.0f} s, {checks} quiescent checks",
        f"- operations: {total:,} ({total / elapsed:,.0f}/s): "
        + ", ".join(f"{k} {v:,}" for k, v in runner.operations.most_common()),
        "- faults injected: " + (", ".join(f"{k} {v}" for k, v in runner.faults.items()) or "0"),
        "- errors by kind: " + (", ".join(f"{k} {v}" for k, v in runner.errors.items()) or "0"),
        f"- hit ratio: {hits / max(1, hits + misses):.1%} ({hits:,} hits, {misses:,} misses)",
        f"- coalesced requests: {stats['CoalescedRequests']:,}",
        f"- backend requests: {stats['BackendRequestCount']:,}",
        f"- consistency violations: {len(runner.violations)}",
        f"- peak RSS: {peak_rss_mib:,.0f} MiB",
    ]
    lines.extend(f"  - {v}" for v in runner.violations[:10])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--check-every", type=float, default=2.0, help="seconds between checks")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}")
    return asyncio.run(soak(args.seconds, args.workers, args.check_every, seed))


if __name__ == "__main__":
    sys.exit(main())

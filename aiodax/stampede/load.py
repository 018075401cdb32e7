"""The load: what a stampede sends, decided up front, and the driver that sends it.

What makes it a stampede: every worker starts at once and most requests want the
same few keys (Zipf-distributed), so an uncached service sends DynamoDB one request
per read while aiodax sends one per key, however many readers miss it together.

:func:`plan_operations` decides the whole load from a :class:`LoadSpec` (both runs
replay the same plan), :func:`make_item` is what the seeded and written items look
like, and :func:`drive` sends a plan through any client and measures it into a
:class:`LoadResult`.  All of it is pure but :func:`drive`, which needs only a
:class:`DataPlane`: no server, no table set-up.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

OpChoice = Literal["get", "query", "mixed"]
OpKind = Literal["get", "query", "put"]
#: One planned request: what to send, and the popularity rank of its key (0 = hottest).
Operation = tuple[OpKind, int]

OP_CHOICES: Final[tuple[OpChoice, ...]] = ("get", "query", "mixed")
#: How long requests still in flight when ``duration`` ran out may take to finish
#: before they are cancelled (and counted as unfinished).
_GRACE_SECONDS: Final = 10.0
_PROGRESS_INTERVAL: Final = 0.25


@dataclass(frozen=True)
class LoadSpec:
    """The load both runs replay; the defaults are the command's (``scripts/demo``'s)."""

    requests: int = 1000
    concurrency: int = 200
    #: seconds each run may take at most; a run stops issuing requests then
    duration: float = 40.0
    keys: int = 1
    #: Zipf exponent: key of popularity rank r (from 1) is chosen with weight 1/r**skew
    skew: float = 1.1
    write_ratio: float = 0.0
    op: OpChoice = "get"
    #: item and query TTL of the cached run, in seconds
    ttl: float = 300.0
    seed: int = 0
    #: the aiohttp connection pool of each run's client; ``None``: one per worker, so
    #: that no worker queues for a connection (botocore's own default is 10, which
    #: lets a worker that just finished take the connection again before the queued
    #: ones wake: some requests starve for seconds, and the median flatters)
    max_connections: int | None = None

    @property
    def pool_size(self) -> int:
        """The connections each run's client may open."""
        return self.concurrency if self.max_connections is None else self.max_connections


class DataPlane(Protocol):
    """The three calls the load makes: a plain, an instrumented or a cached client."""

    def get_item(self, **request: Any) -> Awaitable[Any]: ...
    def query(self, **request: Any) -> Awaitable[Any]: ...
    def put_item(self, **request: Any) -> Awaitable[Any]: ...


@dataclass
class LoadResult:
    """What :func:`drive` measured of one run."""

    #: seconds per finished request, failed ones included
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: seconds from the first request sent to the last one finished
    elapsed: float = 0.0
    #: requests cancelled in flight after ``duration`` and the grace period
    unfinished: int = 0
    #: ``duration`` ran out before the plan did
    stopped_early: bool = False


# ---------------------------------------------------------------------------
# The plan (pure)


def key_value(rank: int) -> str:
    """The partition key value of the item of popularity ``rank`` (0 = hottest)."""
    return f"stampede#{rank:06d}"


def zipf_weights(keys: int, skew: float) -> list[float]:
    """Relative popularity of ranks 1..keys: ``1 / rank**skew`` (``skew=0``: uniform)."""
    return [1.0 / rank**skew for rank in range(1, keys + 1)]


def plan_operations(spec: LoadSpec) -> list[Operation]:
    """The whole load, decided up front from ``spec.seed``: both runs replay it."""
    rng = random.Random(spec.seed)
    ranks = rng.choices(
        range(spec.keys), weights=zipf_weights(spec.keys, spec.skew), k=spec.requests
    )
    plan: list[Operation] = []
    for rank in ranks:
        # Draw both numbers every time, so that changing one ratio does not reshuffle
        # which keys the rest of the plan reads.
        is_write = rng.random() < spec.write_ratio
        read: OpKind = spec.op if spec.op != "mixed" else ("get" if rng.random() < 0.5 else "query")
        plan.append(("put" if is_write else read, rank))
    return plan


def make_item(hash_key: str, rank: int, version: int = 0) -> dict[str, Any]:
    """A ten-attribute wire-format item: strings, numbers, a set, a map, a boolean."""
    value = key_value(rank)
    return {
        hash_key: {"S": value},
        "name": {"S": f"Customer {rank}"},
        "email": {"S": f"customer{rank}@example.com"},
        "status": {"S": "active"},
        "tier": {"S": ("gold", "silver", "bronze")[rank % 3]},
        "balance": {"N": f"{1000 + rank}.25"},
        "version": {"N": str(version)},
        "tags": {"SS": ["stampede", "hot" if rank == 0 else "warm"]},
        "address": {"M": {"city": {"S": "Lisbon"}, "zip": {"S": f"1100-{rank % 1000:03d}"}}},
        "verified": {"BOOL": rank % 2 == 0},
    }


# ---------------------------------------------------------------------------
# Driving a load


async def drive(
    client: DataPlane,
    table: str,
    hash_key: str,
    plan: Sequence[Operation],
    *,
    concurrency: int,
    duration: float,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Send ``plan`` through ``client`` from ``concurrency`` workers started at once.

    A failed request is counted by exception class and the load goes on.  After
    ``duration`` seconds no new request starts; those in flight get a grace period,
    then are cancelled.  ``on_progress(finished, errors)`` is called a few times a
    second while the load runs.
    """
    result = LoadResult()
    latencies = result.latencies
    errors = result.errors
    next_index = 0
    versions = 0
    stopping = False

    async def send(kind: OpKind, rank: int) -> None:
        nonlocal versions
        key = key_value(rank)
        if kind == "get":
            await client.get_item(TableName=table, Key={hash_key: {"S": key}})
        elif kind == "query":
            await client.query(
                TableName=table,
                KeyConditionExpression="#k = :k",
                ExpressionAttributeNames={"#k": hash_key},
                ExpressionAttributeValues={":k": {"S": key}},
            )
        else:
            versions += 1
            await client.put_item(TableName=table, Item=make_item(hash_key, rank, versions))

    async def worker() -> None:
        nonlocal next_index
        while not stopping and next_index < len(plan):
            kind, rank = plan[next_index]
            next_index += 1
            started = time.perf_counter()
            try:
                await send(kind, rank)
            except Exception as error:  # counted and reported: a load test goes on
                errors[type(error).__name__] += 1
            latencies.append(time.perf_counter() - started)

    async def report_progress(report: Callable[[int, int], None]) -> None:
        while True:
            report(len(latencies), sum(errors.values()))
            await asyncio.sleep(_PROGRESS_INTERVAL)

    ticker = None if on_progress is None else asyncio.create_task(report_progress(on_progress))
    started = time.perf_counter()
    # Created in one go, the workers all send their first request in the same turn
    # of the event loop: the stampede.
    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(plan)))]
    try:
        _, pending = await asyncio.wait(workers, timeout=duration)
        if pending:
            stopping = result.stopped_early = True
            _, pending = await asyncio.wait(pending, timeout=_GRACE_SECONDS)
        result.elapsed = time.perf_counter() - started
    finally:
        for task in workers:
            task.cancel()
        if ticker is not None:
            ticker.cancel()
        await asyncio.gather(*workers, *([ticker] if ticker else []), return_exceptions=True)
    result.unfinished = next_index - len(latencies)
    if on_progress is not None:
        on_progress(len(latencies), sum(errors.values()))
    return result

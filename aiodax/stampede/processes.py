"""``aiodax stampede --processes N``: one load from N processes, with and without the tier.

The plan is dealt out to N processes (``multiprocessing`` spawn: each has its own
event loop, client and cache), which start together and replay their share three
times: uncached, with a cache per process, and with the caches joined by the Redis
tier.  Each process counts what its client sent to DynamoDB (``InstrumentedClient``,
below the cache) and logs when each read started and which version it returned, and
when each write was acknowledged.  From the logs, a read is *stale* when it returned
an older version of its item than a write some process had acknowledged before the
read began; its staleness is how long before.

Pure parts (dealing the plan out, judging staleness) are functions of their
arguments; the rest runs the processes.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import aioboto3

from .. import Cache, RedisTier
from ..testing import InstrumentedClient
from ..testing.servers import client_kwargs
from .load import LoadSpec, Operation, key_value, make_item, plan_operations
from .target import Target, prepare_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

Mode = Literal["uncached", "per-process caches", "Redis tier"]
#: (rank, version, when): a read's start and what it returned, or a write's ack.
Stamp = tuple[int, int, float]
#: How long after its spawn every process of a run starts its load, so they start together.
_START_DELAY = 3.0


@dataclass(frozen=True)
class Job:
    """What one process of one run does."""

    endpoint_url: str
    region: str
    table: str
    hash_key: str
    operations: tuple[Operation, ...]
    concurrency: int
    ttl: float
    mode: Mode
    redis_url: str | None
    namespace: str
    max_connections: int
    start_at: float


@dataclass
class ProcessResult:
    """What one process of a run measured."""

    calls: Counter[str] = field(default_factory=Counter)
    reads: list[Stamp] = field(default_factory=list)
    writes: list[Stamp] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class RunSummary:
    """One run of every process, summed up."""

    mode: Mode
    #: requests that reached DynamoDB, by operation (``get_item``…)
    calls: dict[str, int]
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    stale_reads: int
    worst_staleness_ms: float


# ---------------------------------------------------------------- pure parts


def deal(plan: Sequence[Operation], processes: int) -> list[tuple[Operation, ...]]:
    """Operation i goes to process i mod ``processes``: each gets every key's share."""
    return [tuple(plan[rank::processes]) for rank in range(processes)]


def staleness(reads: Sequence[Stamp], writes: Sequence[Stamp]) -> tuple[int, float]:
    """How many ``reads`` were stale, and the worst staleness in seconds.

    A write's version is when it was sent (``time.monotonic_ns``, a clock every
    process shares), its stamp when it was acknowledged.  A read that returned the
    version of write V is stale when another write W of the item was sent after V
    was acknowledged (so DynamoDB applied W after V) and acknowledged before the read
    began; its staleness runs from W's acknowledgement.  Writes that overlapped V may
    have landed in either order, so reading V after them is not counted.  Version 0
    is the item as seeded before the run.
    """
    by_item: dict[int, list[tuple[float, float]]] = {}
    acked_at: dict[tuple[int, int], float] = {}
    for rank, version, acked in writes:
        by_item.setdefault(rank, []).append((version / 1e9, acked))
        acked_at[rank, version] = acked
    #: per item: send times in order, and the earliest acknowledgement of the writes
    #: sent at or after each
    later: dict[int, tuple[list[float], list[float]]] = {}
    for rank, sent_acked in by_item.items():
        sent_acked.sort()
        sends = [sent for sent, _ in sent_acked]
        earliest = [0.0] * len(sent_acked)
        soonest = float("inf")
        for at in range(len(sent_acked) - 1, -1, -1):
            soonest = min(soonest, sent_acked[at][1])
            earliest[at] = soonest
        later[rank] = (sends, earliest)
    stale, worst = 0, 0.0
    for rank, version, started in reads:
        found = later.get(rank)
        if found is None or version < 0:
            continue
        written = float("-inf") if version == 0 else acked_at.get((rank, version))
        if written is None:
            continue  # a version no write of this run sent
        sends, earliest = found
        at = bisect.bisect_right(sends, written)
        if at < len(sends) and earliest[at] < started:
            stale += 1
            worst = max(worst, started - earliest[at])
    return stale, worst


def summarize(mode: Mode, results: Sequence[ProcessResult]) -> RunSummary:
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    reads: list[Stamp] = []
    writes: list[Stamp] = []
    for result in results:
        calls.update(result.calls)
        errors.update(result.errors)
        latencies.extend(result.latencies)
        reads.extend(result.reads)
        writes.extend(result.writes)
    latencies.sort()
    stale, worst = staleness(reads, writes)

    def percentile(fraction: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1000

    return RunSummary(
        mode,
        dict(calls),
        len(latencies),
        sum(errors.values()),
        percentile(0.5),
        percentile(0.99),
        stale,
        worst * 1000,
    )


# ------------------------------------------------------------------ processes


def _process_main(job: Job, results: Any) -> None:
    results.put(asyncio.run(_replay(job)))


async def _replay(job: Job) -> ProcessResult:
    result = ProcessResult()
    session = aioboto3.Session()
    kwargs = client_kwargs(
        job.endpoint_url, region=job.region, max_pool_connections=job.max_connections
    )
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(session.client("dynamodb", **kwargs))
        await client.get_item(  # a client's first request is slow: not part of the load
            TableName=job.table, Key={job.hash_key: {"S": "stampede#warm-up"}}
        )
        counted = InstrumentedClient(client)
        plane: Any = counted
        if job.mode != "uncached":
            tier = None
            if job.mode == "Redis tier":
                assert job.redis_url is not None
                tier = RedisTier(job.redis_url, namespace=job.namespace)
            cache = await stack.enter_async_context(
                Cache(item_ttl=job.ttl, query_ttl=job.ttl, redis=tier)
            )
            plane = cache.wrap(cast("DynamoDBClient", counted))
        await asyncio.sleep(max(0.0, job.start_at - time.monotonic()))
        pending = list(reversed(job.operations))

        async def worker() -> None:
            while pending:
                kind, rank = pending.pop()
                key = {job.hash_key: {"S": key_value(rank)}}
                started = time.monotonic()
                try:
                    if kind == "put":
                        version = time.monotonic_ns()
                        item = make_item(job.hash_key, rank, version)
                        await plane.put_item(TableName=job.table, Item=item)
                        result.writes.append((rank, version, time.monotonic()))
                    else:
                        answer = await plane.get_item(TableName=job.table, Key=key)
                        found = answer.get("Item")
                        version = int(found["version"]["N"]) if found else -1
                        result.reads.append((rank, version, started))
                except Exception as error:  # counted and reported: a load test goes on
                    result.errors[type(error).__name__] += 1
                result.latencies.append(time.monotonic() - started)

        await asyncio.gather(*(worker() for _ in range(job.concurrency)))
        result.calls = Counter(counted.calls)
    return result


async def run_processes(
    target: Target, spec: LoadSpec, processes: int, redis_url: str | None
) -> list[RunSummary]:
    """The three runs (two without ``redis_url``), one after the other."""
    session = aioboto3.Session()
    async with session.client(
        "dynamodb", **client_kwargs(target.endpoint_url, region=target.region)
    ) as admin:
        hash_key = await prepare_table(admin, target, spec)
        # Every read is a GetItem here: the staleness check follows items.
        plan = [("put" if kind == "put" else "get", rank) for kind, rank in plan_operations(spec)]
        shares = deal(cast("list[Operation]", plan), processes)
        modes: list[Mode] = ["uncached", "per-process caches"]
        if redis_url is not None:
            modes.append("Redis tier")
        summaries = []
        for mode in modes:
            # The same starting item for every run: each begins from version 0.
            for rank in range(spec.keys):
                await admin.put_item(TableName=target.table, Item=make_item(hash_key, rank))
            namespace = f"stampede-{uuid.uuid4().hex[:12]}"  # the run's processes share it
            start_at = time.monotonic() + _START_DELAY
            jobs = [
                Job(
                    target.endpoint_url,
                    target.region,
                    target.table,
                    hash_key,
                    share,
                    max(1, spec.concurrency // processes),
                    spec.ttl,
                    mode,
                    redis_url,
                    namespace,
                    max(1, spec.pool_size // processes),
                    start_at,
                )
                for share in shares
            ]
            summaries.append(summarize(mode, await _run(jobs, spec.duration)))
        if target.create:
            with contextlib.suppress(Exception):
                await admin.delete_table(TableName=target.table)
    return summaries


async def _run(jobs: Sequence[Job], duration: float) -> list[ProcessResult]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    children = [context.Process(target=_process_main, args=(job, queue)) for job in jobs]
    for child in children:
        child.start()
    loop = asyncio.get_running_loop()
    try:
        return [
            await loop.run_in_executor(None, queue.get, True, _START_DELAY + duration + 30)
            for _ in children
        ]
    finally:
        for child in children:
            await loop.run_in_executor(None, child.join, 10)
            if child.is_alive():
                child.kill()
                child.join()
        queue.close()


def format_processes_report(
    spec: LoadSpec, target: Target, processes: int, summaries: Sequence[RunSummary]
) -> str:
    """The side-by-side table of the runs."""
    keys = "1 key" if spec.keys == 1 else f"{spec.keys:,} keys (Zipf s={spec.skew:g})"
    lines = [
        f"aiodax stampede: {spec.requests:,} GetItem/PutItem requests over {keys}, "
        f"{spec.write_ratio:.0%} writes, from {processes} processes "
        f"(concurrency {max(1, spec.concurrency // processes):,} each), against {target.label}",
        "",
    ]
    rows = [
        ("DynamoDB GetItem", [f"{s.calls.get('get_item', 0):,}" for s in summaries]),
        ("DynamoDB PutItem", [f"{s.calls.get('put_item', 0):,}" for s in summaries]),
        ("requests", [f"{s.requests:,}" for s in summaries]),
        ("errors", [f"{s.errors:,}" for s in summaries]),
        ("latency p50 ms", [f"{s.p50_ms:.3f}" for s in summaries]),
        ("latency p99 ms", [f"{s.p99_ms:.3f}" for s in summaries]),
        ("stale reads", [f"{s.stale_reads:,}" for s in summaries]),
        ("worst staleness ms", [f"{s.worst_staleness_ms:.1f}" for s in summaries]),
    ]
    titles = [s.mode for s in summaries]
    label_width = max(len(label) for label, _ in rows)
    widths = [
        max(len(title), *(len(cells[i]) for _, cells in rows)) for i, title in enumerate(titles)
    ]
    lines.append(
        " " * label_width + "".join(f"  {t:>{w}}" for t, w in zip(titles, widths, strict=True))
    )
    for label, cells in rows:
        lines.append(
            f"{label:<{label_width}}"
            + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        )
    lines.append("")
    lines.append(
        "stale read: a read returned an item's version although a later write of it (sent "
        "after that version was acknowledged) had been acknowledged before the read began"
    )
    return "\n".join(lines)

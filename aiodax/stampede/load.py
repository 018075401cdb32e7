"""The stampede: one load run twice, uncached and then through aiodax, counted and compared.

What makes it a stampede: every worker starts at once and most requests want the
same few keys (Zipf-distributed), so an uncached service sends DynamoDB one request
per read while aiodax sends one per key, however many readers miss it together.

The pieces are kept apart so that most of them are pure and testable alone:
:func:`plan_operations` decides the whole load up front (both runs replay the same
plan), :func:`drive` sends a plan through any client and measures it,
:func:`summarize` and :func:`format_report` turn measurements into numbers and text,
and :func:`run_stampede` wires them to a DynamoDB endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, cast

import aioboto3
from botocore.exceptions import BotoCoreError, ClientError

from .._cache import Cache
from ..testing import InstrumentedClient
from ..testing.servers import ClientKwargs, client_kwargs, string_key_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import WriteRequestTypeDef

OpChoice = Literal["get", "query", "mixed"]
OpKind = Literal["get", "query", "put"]
#: One planned request: what to send, and the popularity rank of its key (0 = hottest).
Operation = tuple[OpKind, int]

OP_CHOICES: Final[tuple[OpChoice, ...]] = ("get", "query", "mixed")
#: How long requests still in flight when ``duration`` ran out may take to finish
#: before they are cancelled (and counted as unfinished).
_GRACE_SECONDS: Final = 10.0
_PROGRESS_INTERVAL: Final = 0.25
_BATCH_WRITE_LIMIT: Final = 25
_SEED_CONCURRENCY: Final = 8
_SEED_ATTEMPTS: Final = 8


@dataclass(frozen=True)
class LoadSpec:
    """The load both runs replay; the defaults are the command's."""

    requests: int = 2000
    concurrency: int = 200
    #: seconds each run may take at most; a run stops issuing requests then
    duration: float = 60.0
    keys: int = 1
    #: Zipf exponent: key of popularity rank r (from 1) is chosen with weight 1/r**skew
    skew: float = 1.1
    write_ratio: float = 0.0
    op: OpChoice = "get"
    #: item and query TTL of the cached run, in seconds
    ttl: float = 300.0
    seed: int = 0
    #: the aiohttp connection pool of each run's client (botocore's default is 10)
    max_connections: int = 10


@dataclass(frozen=True)
class Target:
    """Where the load goes: a loopback endpoint and a table with a string partition key."""

    endpoint_url: str
    table: str
    #: create the table (an embedded server starts empty) instead of requiring it
    create: bool
    #: put the ``keys`` items the load reads before it starts
    seed: bool
    #: for the report's header, e.g. "moto (embedded)"
    label: str
    region: str = "us-east-1"


class TargetError(Exception):
    """The target cannot take the load (missing table, wrong key schema, unreachable)."""


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


@dataclass
class RunResult:
    """One run: the load's measurements and what reached DynamoDB meanwhile."""

    load: LoadResult
    backend_calls: Counter[str]
    cached: bool
    #: counters from ``Cache.stats()`` (empty for the uncached run)
    cache_stats: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StampedeResult:
    spec: LoadSpec
    target: Target
    uncached: RunResult
    cached: RunResult


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


# ---------------------------------------------------------------------------
# The target table


async def prepare_table(client: DynamoDBClient, target: Target, spec: LoadSpec) -> str:
    """Create (if asked) and seed the target table; return its partition key's name."""
    try:
        if target.create:
            await client.create_table(**string_key_table(target.table))
        hash_key = await _wait_for_table(client, target)
        if target.seed:
            await _seed(client, target.table, hash_key, spec.keys)
    except ClientError as error:
        raise TargetError(f"{target.endpoint_url}: {error}") from error
    except BotoCoreError as error:  # connection refused, timeouts
        raise TargetError(f"{target.endpoint_url}: {error}") from error
    return hash_key


async def _wait_for_table(client: DynamoDBClient, target: Target) -> str:
    try:
        async with asyncio.timeout(30):
            while True:
                description = (await client.describe_table(TableName=target.table))["Table"]
                if description.get("TableStatus") == "ACTIVE":
                    break
                await asyncio.sleep(0.1)
    except client.exceptions.ResourceNotFoundException:
        raise TargetError(
            f"table {target.table!r} not found at {target.endpoint_url} in region "
            f"{target.region} (DynamoDB Local started without -sharedDb keeps one database "
            "per access key and region; aiodax signs with access key 'testing')"
        ) from None
    except TimeoutError:
        raise TargetError(f"table {target.table!r} did not become ACTIVE within 30 s") from None
    key_schema = description.get("KeySchema", [])
    hash_key = next(e["AttributeName"] for e in key_schema if e["KeyType"] == "HASH")
    if any(e["KeyType"] == "RANGE" for e in key_schema):
        raise TargetError(
            f"table {target.table!r} has a sort key: the stampede needs a table keyed by a "
            "string partition key alone"
        )
    types = {d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]}
    if types.get(hash_key) != "S":
        raise TargetError(
            f"table {target.table!r}: partition key {hash_key!r} is of type "
            f"{types.get(hash_key)}, the stampede needs a string (S) key"
        )
    return hash_key


async def _seed(client: DynamoDBClient, table: str, hash_key: str, keys: int) -> None:
    """Put the ``keys`` items, 25 to a BatchWriteItem, a few batches at a time."""
    semaphore = asyncio.Semaphore(_SEED_CONCURRENCY)

    async def write(ranks: range) -> None:
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": make_item(hash_key, rank)}} for rank in ranks
        ]
        async with semaphore:
            for attempt in range(_SEED_ATTEMPTS):
                answer = await client.batch_write_item(RequestItems={table: requests})
                # DynamoDB hands back the unprocessed requests in the shape it was sent.
                unprocessed = answer.get("UnprocessedItems", {}).get(table, [])
                requests = cast("list[WriteRequestTypeDef]", unprocessed)
                if not requests:
                    return
                await asyncio.sleep(0.05 * 2**attempt)
        raise TargetError(f"could not seed {table!r}: DynamoDB kept items unprocessed")

    async with asyncio.TaskGroup() as group:
        for start in range(0, keys, _BATCH_WRITE_LIMIT):
            group.create_task(write(range(start, min(start + _BATCH_WRITE_LIMIT, keys))))


# ---------------------------------------------------------------------------
# The two runs


async def run_stampede(
    target: Target,
    spec: LoadSpec,
    *,
    on_progress: Callable[[str, int, int, int], None] | None = None,
) -> StampedeResult:
    """Prepare the table, then run ``spec`` uncached and cached against it.

    ``on_progress(run, finished, total, errors)`` reports each run's progress, ``run``
    being "uncached" or "cached".
    """
    session = aioboto3.Session()
    kwargs = client_kwargs(
        target.endpoint_url, region=target.region, max_pool_connections=spec.max_connections
    )
    async with session.client("dynamodb", **kwargs) as admin:
        hash_key = await prepare_table(admin, target, spec)
        try:
            return await _run_both(session, kwargs, target, spec, hash_key, on_progress)
        finally:
            if target.create:
                # moto keeps tables for the life of the process, not of its server.
                with contextlib.suppress(ClientError, BotoCoreError):
                    await admin.delete_table(TableName=target.table)


async def _run_both(
    session: aioboto3.Session,
    kwargs: ClientKwargs,
    target: Target,
    spec: LoadSpec,
    hash_key: str,
    on_progress: Callable[[str, int, int, int], None] | None,
) -> StampedeResult:
    plan = plan_operations(spec)

    def progress_of(run: str) -> Callable[[int, int], None] | None:
        if on_progress is None:
            return None
        report = on_progress
        return lambda finished, errors: report(run, finished, len(plan), errors)

    # A fresh client per run, warmed up first (not counted) as a long-lived
    # application client would be: a client's first request costs ~100 ms more.
    async with session.client("dynamodb", **kwargs) as client:
        await _warm_up(client, target.table, hash_key, plan)
        _collect_garbage()
        counted = InstrumentedClient(client)
        load = await drive(
            cast(DataPlane, counted),
            target.table,
            hash_key,
            plan,
            concurrency=spec.concurrency,
            duration=spec.duration,
            on_progress=progress_of("uncached"),
        )
        uncached = RunResult(load, Counter(counted.calls), cached=False)

    async with (
        session.client("dynamodb", **kwargs) as client,
        Cache(item_ttl=spec.ttl, query_ttl=spec.ttl) as cache,
    ):
        await _warm_up(client, target.table, hash_key, plan)
        _collect_garbage()
        counted = InstrumentedClient(client)
        cached_client = cache.wrap(cast("DynamoDBClient", counted))
        load = await drive(
            cast(DataPlane, cached_client),
            target.table,
            hash_key,
            plan,
            concurrency=spec.concurrency,
            duration=spec.duration,
            on_progress=progress_of("cached"),
        )
        cached = RunResult(load, Counter(counted.calls), cached=True, cache_stats=cache.stats())

    return StampedeResult(spec, target, uncached, cached)


def _collect_garbage() -> None:
    """Collect now what earlier work left, so that no run pays for another's garbage.

    With moto's server in this process the heap is large: a full collection that
    the uncached run's garbage triggers takes 0.2 s, enough to be the cached run's p99.
    """
    gc.collect()


async def _warm_up(
    client: DynamoDBClient, table: str, hash_key: str, plan: Sequence[Operation]
) -> None:
    """One read of each kind the plan makes, of a key the plan never reads."""
    key = {hash_key: {"S": "stampede#warm-up"}}
    kinds = {kind for kind, _ in plan}
    try:
        if "get" in kinds or "put" in kinds:
            await client.get_item(TableName=table, Key=key)
        if "query" in kinds:
            await client.query(
                TableName=table,
                KeyConditionExpression="#k = :k",
                ExpressionAttributeNames={"#k": hash_key},
                ExpressionAttributeValues={":k": key[hash_key]},
            )
    except (ClientError, BotoCoreError) as error:
        raise TargetError(f"the warm-up read of {table!r} failed: {error}") from error


# ---------------------------------------------------------------------------
# Reporting (pure)

#: The numbers every run reports, in the order of the table and the JSON object.
REPORT_KEYS: Final = (
    "requests",
    "backend_requests",
    "coalesced",
    "hit_ratio",
    "errors",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "throughput_rps",
)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(run: RunResult) -> dict[str, Any]:
    """One run's report: the ``REPORT_KEYS`` numbers first, then details."""
    load = run.load
    ordered = sorted(load.latencies)
    stats = run.cache_stats
    hits = stats.get("ItemCacheHits", 0) + stats.get("QueryCacheHits", 0)
    misses = stats.get("ItemCacheMisses", 0) + stats.get("QueryCacheMisses", 0)

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 3)

    return {
        "requests": len(ordered),
        "backend_requests": sum(run.backend_calls.values()),
        "coalesced": int(stats.get("CoalescedRequests", 0)),
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else 0.0,
        "errors": sum(load.errors.values()),
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p90_ms": ms(percentile(ordered, 0.90)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1] if ordered else 0.0),
        "throughput_rps": round(len(ordered) / load.elapsed, 1) if load.elapsed > 0 else 0.0,
        "errors_by_kind": dict(sorted(load.errors.items())),
        "backend_requests_by_operation": dict(sorted(run.backend_calls.items())),
        "elapsed_s": round(load.elapsed, 3),
        "unfinished": load.unfinished,
        "stopped_early": load.stopped_early,
    }


def report_object(result: StampedeResult) -> dict[str, dict[str, Any]]:
    """The ``--json`` output: ``{"uncached": {...}, "cached": {...}}``."""
    return {"uncached": summarize(result.uncached), "cached": summarize(result.cached)}


def _cell(name: str, value: Any) -> str:
    if name == "hit_ratio":
        return f"{value:.1%}"
    if name.endswith("_ms"):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _times(before: float, after: float) -> str:
    """How many times ``after`` fits in ``before``, e.g. "2,000x"."""
    if after <= 0:
        return "inf x" if before > 0 else "n/a"
    ratio = before / after
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:,.1f}x"


def format_report(result: StampedeResult) -> str:
    """The side-by-side table printed at the end of a run, with its context."""
    spec, target = result.spec, result.target
    uncached, cached = summarize(result.uncached), summarize(result.cached)
    keys = "1 key" if spec.keys == 1 else f"{spec.keys:,} keys (Zipf s={spec.skew:g})"
    writes = f", {spec.write_ratio:.0%} writes" if spec.write_ratio else ""
    lines = [
        f"aiodax stampede: {spec.requests:,} {spec.op} requests over {keys}{writes}, "
        f"concurrency {spec.concurrency:,}, against {target.label}",
        "",
    ]
    label_width = max(len(name) for name in REPORT_KEYS)
    columns = [
        [_cell(name, summary[name]) for name in REPORT_KEYS] for summary in (uncached, cached)
    ]
    widths = [
        max(len(title), *(len(c) for c in column))
        for title, column in zip(("uncached", "cached"), columns, strict=True)
    ]
    lines.append(f"{'':<{label_width}}  {'uncached':>{widths[0]}}  {'cached':>{widths[1]}}")
    for index, name in enumerate(REPORT_KEYS):
        lines.append(
            f"{name:<{label_width}}  {columns[0][index]:>{widths[0]}}  "
            f"{columns[1][index]:>{widths[1]}}"
        )
    for run_name, summary in (("uncached", uncached), ("cached", cached)):
        if summary["errors_by_kind"]:
            kinds = ", ".join(f"{k}: {n:,}" for k, n in summary["errors_by_kind"].items())
            lines.append(f"{run_name} errors: {kinds}")
        if summary["stopped_early"]:
            lines.append(
                f"{run_name}: --duration {spec.duration:g} s ran out after "
                f"{summary['requests']:,} requests ({summary['unfinished']:,} cancelled in flight)"
            )
    lines += [
        "",
        f"requests reaching DynamoDB: {uncached['backend_requests']:,} uncached, "
        f"{cached['backend_requests']:,} cached "
        f"({_times(uncached['backend_requests'], cached['backend_requests'])} fewer)",
        f"p99 latency: {_cell('p99_ms', uncached['p99_ms'])} ms uncached, "
        f"{_cell('p99_ms', cached['p99_ms'])} ms cached "
        f"({_times(uncached['p99_ms'], cached['p99_ms'])} lower)",
    ]
    return "\n".join(lines)

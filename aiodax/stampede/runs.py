"""The two runs: one load replayed uncached and then through aiodax, each counted.

:func:`run_stampede` prepares the target table, then replays the same plan twice,
each time with a fresh, warmed-up client whose requests to DynamoDB are counted: first
the plain client, then the client wrapped by an ``aiodax.Cache``.  The outcome is a
:class:`StampedeResult` of two :class:`RunResult`, for :mod:`aiodax.stampede.report`.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import aioboto3
from botocore.exceptions import BotoCoreError, ClientError

from .. import Cache
from ..testing import InstrumentedClient
from ..testing.servers import ClientKwargs, client_kwargs
from .load import DataPlane, LoadResult, LoadSpec, Operation, drive, plan_operations
from .target import Target, TargetError, prepare_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

#: The two runs, in the order they are made: the names ``on_progress`` reports.
RunName = Literal["uncached", "cached"]


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
    """Both runs of one stampede, with the load and the target they had."""

    spec: LoadSpec
    target: Target
    uncached: RunResult
    cached: RunResult


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
        target.endpoint_url, region=target.region, max_pool_connections=spec.pool_size
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

    def progress_of(run: RunName) -> Callable[[int, int], None] | None:
        if on_progress is None:
            return None
        report = on_progress
        return lambda finished, errors: report(run, finished, len(plan), errors)

    async def run(name: RunName) -> RunResult:
        async with contextlib.AsyncExitStack() as stack:
            # A fresh client per run, warmed up first (not counted) as a long-lived
            # application client would be: a client's first request costs ~100 ms more.
            client = await stack.enter_async_context(session.client("dynamodb", **kwargs))
            cache = None
            if name == "cached":
                cache = Cache(item_ttl=spec.ttl, query_ttl=spec.ttl)
                await stack.enter_async_context(cache)
            await _warm_up(client, target.table, hash_key, plan)
            _collect_garbage()
            counted = InstrumentedClient(client)
            plane = counted if cache is None else cache.wrap(cast("DynamoDBClient", counted))
            load = await drive(
                cast(DataPlane, plane),
                target.table,
                hash_key,
                plan,
                concurrency=spec.concurrency,
                duration=spec.duration,
                on_progress=progress_of(name),
            )
            return RunResult(
                load,
                Counter(counted.calls),
                cached=cache is not None,
                cache_stats={} if cache is None else cache.stats(),
            )

    uncached = await run("uncached")
    cached = await run("cached")
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

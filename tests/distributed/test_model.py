"""A history check across processes and faults: no read older than its bound allows.

Three workers read six keys at random and each writes two of them (one writer per
key, its writes of a key one at a time, so that their numbers are DynamoDB's order),
while Redis is killed and restarted empty, and one worker is cut off by a silent
partition.  Every operation is logged with ``time.monotonic()`` stamps (system-wide,
so they compare across processes).  The checker, in the manner of a Jepsen test,
asks of every read: does it see the last write of its key acknowledged more than
``BOUND`` seconds before the read started, or a later one?  ``BOUND`` is the tier's
worst case here (silence detected after ``liveness``, entries kept ``degraded_ttl``
more, a partitioned writer's outbox sent on its return) with room for a loaded
machine; it is seconds, where a process that heard nothing would serve its old values
for the 300 s TTL.  The run ends with a quiet phase longer than ``BOUND``, so that
staleness left behind by a fault shows.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from aiodax.testing import RedisServer, TcpFaultProxy
from tests.distributed.harness import Fleet, WorkerConfig, tier_reaches

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.distributed

TIER = {"liveness": 0.5, "degraded_ttl": 1.0}
PARTITION = 1.5
#: liveness + degraded_ttl + the partition, and as much again for a loaded machine.
BOUND = 6.0
#: Ops per worker are bounded by the pause between them (2 loops x 1 op / 5 ms).
PHASE = 1.0
INITIAL = "initial-0"


def number(value: str | None) -> int:
    """The order of a value among its key's writes (``-1``: absent, never written)."""
    if value is None:
        return -1
    return int(value.rsplit("-", 1)[1])


def violations(histories: list[list[list[Any]]], bound: float) -> list[str]:
    """Every read that missed a write acknowledged more than ``bound`` s before it."""
    writes: dict[str, list[tuple[float, int]]] = defaultdict(list)
    reads: list[tuple[str, int, float, str]] = []
    for worker, history in enumerate(histories):
        for kind, pk, value, started, finished in history:
            if kind == "w":
                writes[pk].append((finished, number(value)))
            else:
                reads.append((pk, number(value), started, f"w{worker}"))
    found = []
    for pk, seen, started, reader in reads:
        due = [n for acknowledged, n in writes[pk] if acknowledged < started - bound]
        required = max(due, default=0)
        if seen < required:
            found.append(f"{reader} read {pk} at {started:.3f}: #{seen}, not #{required} or later")
    return found


async def test_no_read_is_older_than_the_bound_through_a_restart_and_a_partition(
    fleet: Fleet,
    config: WorkerConfig,
    redis_server: RedisServer,
    raw: DynamoDBClient,
    table: str,
) -> None:
    keys = [{"pk": {"S": f"k{n}"}} for n in range(6)]
    for key in keys:
        await raw.put_item(TableName=table, Item={**key, "v": {"S": INITIAL}})
    async with TcpFaultProxy(redis_server.host, redis_server.port) as proxy:
        direct = await fleet.spawn(2, config.but(tier=TIER))
        (cut,) = await fleet.spawn(1, config.but(redis=proxy.url("redis"), tier=TIER))
        workers = [*direct, cut]
        for worker in workers:
            await tier_reaches(worker, lambda t: t["BusState"] == "connected", what="connected")
        for index, worker in enumerate(workers):
            owned = keys[2 * index : 2 * index + 2]
            await worker.start_load(table, reads=keys, writes=owned, write_every=5, history=True)

        await asyncio.sleep(PHASE)
        redis_server.kill()
        await asyncio.sleep(PHASE)
        await asyncio.to_thread(redis_server.restart)
        await asyncio.sleep(PHASE)
        proxy.blackhole()
        await asyncio.sleep(PARTITION)
        proxy.pass_through()
        await asyncio.sleep(BOUND + PHASE)  # the quiet phase
        reports = [await worker.stop_load() for worker in workers]

    for worker, report in zip(workers, reports, strict=True):
        assert (report["failures"], report["errors"]) == (0, []), worker.name
        assert report["writes"] > 0
    found = violations([report["history"] for report in reports], BOUND)
    reads = sum(report["reads"] for report in reports)
    assert not found, f"{len(found)} of {reads} reads too old:\n" + "\n".join(found[:20])


def test_the_checker_finds_a_read_older_than_the_bound() -> None:
    # The checker itself: a read 10 s after a write, still seeing the value before it.
    history = [["w", "k", "w0-1", 0.0, 1.0], ["r", "k", INITIAL, 11.0, 11.1]]
    assert violations([history], bound=5.0) == ["w0 read k at 11.000: #0, not #1 or later"]
    within = [["w", "k", "w0-1", 0.0, 1.0], ["r", "k", INITIAL, 4.0, 4.1]]
    assert violations([within], bound=5.0) == []
    assert violations([[["r", "k", None, 0.0, 0.1]]], bound=5.0) == [
        "w0 read k at 0.000: #-1, not #0 or later"
    ]

"""Callers' errors while DynamoDB throttles every read, with and without stale-if-error.

Two caches run at once over one moto server (127.0.0.1), each with its workers
reading 100 keys at random (1 s TTL), each read followed by a short sleep.  After a
warm phase, every GetItem of both caches is throttled for ``THROTTLE`` seconds
(``ProvisionedThroughputExceededException``, raised by an
``aiodax.testing.InstrumentedClient`` around each cache's client: what the caller
sees once botocore's own retries have run out, without their waiting), then reads
recover.  Both caches meet the same throttling at the same moments.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import aioboto3

import aiodax
from aiodax.testing import InstrumentedClient
from aiodax.testing.servers import client_kwargs, moto_server, string_key_table

from ._common import environment, markdown_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TABLE = "aiodax-bench-stale-if-error"
KEYS = 100
WORKERS = 50
#: seconds each worker sleeps after a read
PACE = 0.01
TTL = 1.0
STALE_IF_ERROR = 60.0
WARM = 2.0
#: seconds every read is throttled (the issue's figure)
THROTTLE = 10.0
RECOVER = 2.0

Phase = Literal["warm", "throttled", "recovered"]
PHASES: tuple[Phase, ...] = ("warm", "throttled", "recovered")


@dataclass
class Contender:
    name: str
    cache: aiodax.Cache
    raw: InstrumentedClient
    reads: Counter[Phase] = field(default_factory=Counter)
    errors: Counter[Phase] = field(default_factory=Counter)
    #: GetItems the cache sent (failed ones included), by phase
    sent: Counter[Phase] = field(default_factory=Counter)
    stale: Counter[Phase] = field(default_factory=Counter)


def _key(rank: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"key-{rank:03d}"}}


async def _drive(contenders: list[Contender]) -> None:
    """Every contender's workers through the three phases, throttling switched for all."""
    phase: Phase = "warm"
    stopping = False

    def worker(contender: Contender, seed: int) -> asyncio.Task[None]:
        cached = contender.cache.wrap(cast("DynamoDBClient", contender.raw))
        rng = random.Random(seed)

        async def read() -> None:
            while not stopping:
                started_in = phase
                contender.reads[started_in] += 1
                try:
                    await cached.get_item(TableName=TABLE, Key=_key(rng.randrange(KEYS)))
                except Exception:  # counted: what a caller would have seen
                    contender.errors[started_in] += 1
                await asyncio.sleep(PACE)

        return asyncio.create_task(read())

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            c.name: (
                c.cache.stats()["BackendRequests"].get("get_item", 0),
                c.cache.stats()["StaleServed"],
            )
            for c in contenders
        }

    # Every key cached once before the load: the warm phase alone leaves a key or
    # two unread when moto is slow, and a key never cached has nothing to stand in.
    for contender in contenders:
        cached = contender.cache.wrap(cast("DynamoDBClient", contender.raw))
        for rank in range(KEYS):
            await cached.get_item(TableName=TABLE, Key=_key(rank))
    # The same seeds for both: the same sequence of keys.
    tasks = [worker(c, seed) for c in contenders for seed in range(WORKERS)]
    try:
        for phase_now, seconds in zip(PHASES, (WARM, THROTTLE, RECOVER), strict=True):
            phase = phase_now
            for contender in contenders:
                if phase == "throttled":
                    contender.raw.fail(
                        "get_item", "ProvisionedThroughputExceededException", times=None
                    )
                else:
                    contender.raw.clear_rules()
            before = snapshot()
            await asyncio.sleep(seconds)
            after = snapshot()
            for contender in contenders:
                sent_before, stale_before = before[contender.name]
                sent_after, stale_after = after[contender.name]
                contender.sent[phase] = sent_after - sent_before
                contender.stale[phase] = stale_after - stale_before
    finally:
        stopping = True
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks, return_exceptions=True)


async def run() -> str:
    with moto_server() as url:
        async with aioboto3.Session().client("dynamodb", **client_kwargs(url)) as client:
            await client.create_table(**string_key_table(TABLE))
            for rank in range(KEYS):
                await client.put_item(TableName=TABLE, Item={**_key(rank), "v": {"N": "1"}})
            try:
                async with (
                    aiodax.Cache(item_ttl=TTL) as plain,
                    aiodax.Cache(item_ttl=TTL, stale_if_error=STALE_IF_ERROR) as standing_in,
                ):
                    contenders = [
                        Contender("without stale-if-error", plain, InstrumentedClient(client)),
                        Contender(
                            f"stale_if_error={STALE_IF_ERROR:.0f}",
                            standing_in,
                            InstrumentedClient(client),
                        ),
                    ]
                    started = time.monotonic()
                    await _drive(contenders)
                    elapsed = time.monotonic() - started
            finally:
                await client.delete_table(TableName=TABLE)
    rows = []
    for contender in contenders:
        reads, errors = contender.reads, contender.errors
        rows.append(
            [
                contender.name,
                *(f"{errors[p] / reads[p]:.1%}" if reads[p] else "-" for p in PHASES),
                f"{reads['throttled']:,}",
                f"{errors['throttled']:,}",
                f"{contender.stale['throttled']:,}",
                f"{contender.sent['throttled']:,}",
            ]
        )
    header = [
        "",
        "errors, warm",
        f"errors, throttled {THROTTLE:.0f} s",
        "errors, recovered",
        "reads while throttled",
        "errors while throttled",
        "StaleServed",
        "GetItems sent while throttled",
    ]
    return "\n".join(
        [
            "### Callers' errors while every read is throttled: stale-if-error",
            "",
            f"Two caches side by side, {WORKERS} workers each reading {KEYS} keys at random "
            f"(the same seeded sequence for both), {PACE * 1000:.0f} ms between reads, "
            f"item_ttl={TTL:.0f} s; every key read once, {WARM:.0f} s warm, then every "
            "GetItem throttled (`ProvisionedThroughputExceededException` from an "
            "`InstrumentedClient`: "
            f"botocore's retries not included) for {THROTTLE:.0f} s, then {RECOVER:.0f} s "
            f"recovered; {elapsed:.0f} s in all. A read counts in the phase it started in.",
            "",
            markdown_table(header, rows),
            "",
            environment(["aiodax", "aioboto3", "moto"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

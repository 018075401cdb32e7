"""What a resource-flavour hit costs: ``CachedTable.get_item`` against async-lru.

One process, two 10-attribute items read as Python values through aioboto3's
``Table`` API: a flat one (scalars only) and the stampede's item (a set and a map
among its attributes, which a hit must copy).  aiodax:
``await (await cached.Table(t)).get_item(Key={"pk": ...})``; async-lru decorates
``async def get(pk)`` calling the plain ``Table.get_item``; the uncached row is that
plain ``Table.get_item`` against moto every time.

As in ``hit_latency``: aiodax hands each caller its own item (containers copied),
async-lru every caller the same object.  The last async-lru row adds what its caller
must do for the same safety: ``copy.deepcopy`` of what it got.
"""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from typing import Any

import aioboto3
from async_lru import alru_cache
from boto3.dynamodb.types import TypeDeserializer  # type: ignore[import-untyped]

import aiodax
from aiodax.stampede import key_value, make_item
from aiodax.testing.servers import client_kwargs, moto_server

from ._common import Contender, environment, markdown_table, measure, timing_rows

ROUNDS = 7
HIT_ITERATIONS = 20_000
#: a deep copy costs tens of times a hit
DEEPCOPY_ITERATIONS = 2_000
UNCACHED_ITERATIONS = 40
TTL = 300
TABLE = "aiodax-bench-resource"
#: Ten scalar attributes: nothing for a hit to copy but the item dict itself.
ALRU_FLAT = "async-lru-wrapped `Table.get_item` hit, flat item"
FLAT_ITEM: dict[str, Any] = {
    "pk": "flat",
    **{f"attribute{i}": f"value {i}" for i in range(6)},
    "balance": Decimal("1000.25"),
    "version": 3,
    "verified": True,
}


async def run() -> str:
    with moto_server() as url:
        session = aioboto3.Session()
        async with session.resource("dynamodb", **client_kwargs(url)) as resource:
            table = await resource.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            try:
                deserialize = TypeDeserializer().deserialize
                wire = make_item("pk", 0)
                await table.put_item(Item={k: deserialize(v) for k, v in wire.items()})
                await table.put_item(Item=FLAT_ITEM)
                timings, contenders = await _measure(resource, table)
            finally:
                await table.delete()
    header = ["", "min µs/call", "median µs/call", "÷ async-lru (min / median)", "uncached ÷"]
    rows = timing_rows(timings, reference=ALRU_FLAT, uncached=contenders[-1].name)
    return "\n".join(
        [
            "### Resource (`Table`) hit latency",
            "",
            f"Two 10-attribute items as Python values; {ROUNDS} interleaved rounds of "
            f"{HIT_ITERATIONS:,} hits and {UNCACHED_ITERATIONS} uncached GetItems.",
            "",
            markdown_table(header, rows),
            "",
            environment(["aiodax", "aioboto3", "moto", "async-lru"]),
        ]
    )


async def _measure(resource: Any, table: Any) -> tuple[Any, list[Contender]]:
    mixed = key_value(0)

    @alru_cache(maxsize=1024, ttl=TTL)
    async def alru_get(value: str) -> Any:
        return await table.get_item(Key={"pk": value})

    async with aiodax.Cache(item_ttl=TTL) as cache:
        cached_table = await cache.wrap(resource).Table(TABLE)
        for pk in ("flat", mixed):  # the filling misses
            assert "Item" in await cached_table.get_item(Key={"pk": pk})
            assert "Item" in await alru_get(pk)

        def aiodax_hits(pk: str) -> Any:
            async def hits(n: int) -> None:
                get_item = cached_table.get_item
                for _ in range(n):
                    await get_item(Key={"pk": pk})

            return hits

        def alru_hits(pk: str) -> Any:
            async def hits(n: int) -> None:
                for _ in range(n):
                    await alru_get(pk)

            return hits

        async def alru_deepcopy_hits(n: int) -> None:
            for _ in range(n):
                copy.deepcopy(await alru_get(mixed))

        async def uncached(n: int) -> None:
            for _ in range(n):
                await table.get_item(Key={"pk": mixed})

        contenders = [
            Contender(
                "aiodax `CachedTable.get_item` hit, flat item", aiodax_hits("flat"), HIT_ITERATIONS
            ),
            Contender(ALRU_FLAT, alru_hits("flat"), HIT_ITERATIONS),
            Contender(
                "aiodax `CachedTable.get_item` hit, set + map item",
                aiodax_hits(mixed),
                HIT_ITERATIONS,
            ),
            Contender(
                "async-lru-wrapped `Table.get_item` hit, set + map item",
                alru_hits(mixed),
                HIT_ITERATIONS,
            ),
            Contender(
                "… the same, `copy.deepcopy` of it (aiodax's safety)",
                alru_deepcopy_hits,
                DEEPCOPY_ITERATIONS,
            ),
            Contender("uncached `Table.get_item` (moto, loopback)", uncached, UNCACHED_ITERATIONS),
        ]
        timings = await measure(contenders, ROUNDS)
        assert cache.stats()["BackendRequestCount"] == 2, cache.stats()
    await alru_get.cache_close()
    return timings, contenders


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

"""The shared L2: what an L1 miss answered from Redis costs, next to a raw Redis GET.

One process, a private ``redis-server`` and an embedded moto server on 127.0.0.1.
One cache fills Redis with ``KEYS`` items of about 300 bytes; another, whose L1
holds a few dozen of them, reads them in turn, so that each read is an L1 miss
answered from Redis by the ``GET_OR_LEASE`` script.  Beside it, rounds interleaved: a raw
``GET`` of a 300-byte string with redis-py, the script alone (``EVALSHA``, a copy
found), an L1 hit, and an uncached GetItem to moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.asyncio as redis

import aiodax
from aiodax._tiers.redis.keys import Keys
from aiodax._tiers.redis.scripts import GET_OR_LEASE
from aiodax.testing import RedisServer

from ._common import Contender, environment, fmt_ratio, fmt_us, markdown_table, measure, moto_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEYS = 500
ROUNDS = 9
NAMESPACE = "bench-l2"
#: The L2 reader's L1: a few dozen of the items, so a pass over ``KEYS`` misses it.
SMALL_L1_BYTES = 16 * 1024


def _item(at: int) -> dict[str, Any]:
    return {"pk": {"S": f"k{at:04d}"}, "v": {"S": "x" * 280}, "n": {"N": str(at)}}


async def run() -> str:
    with RedisServer() as server:
        async with (
            moto_table(
                [{"AttributeName": "pk", "KeyType": "HASH"}],
                [{"AttributeName": "pk", "AttributeType": "S"}],
            ) as (raw, table),
            redis.Redis.from_url(server.url) as plain_redis,
        ):
            return await _measure(raw, table, server.url, plain_redis)


async def _measure(raw: DynamoDBClient, table: str, url: str, plain_redis: redis.Redis) -> str:
    tier = aiodax.RedisTier(url, namespace=NAMESPACE)
    for at in range(KEYS):
        await raw.put_item(TableName=table, Item=_item(at))
    await plain_redis.set("bench:plain", b"x" * 300)
    async with (
        aiodax.Cache(redis=tier) as filler,
        aiodax.Cache(redis=tier) as reader,
        aiodax.Cache(redis=tier, max_bytes=SMALL_L1_BYTES) as l2_reader,
    ):
        filling, reading, l2_reading = filler.wrap(raw), reader.wrap(raw), l2_reader.wrap(raw)
        for at in range(KEYS):
            await filling.get_item(TableName=table, Key={"pk": {"S": f"k{at:04d}"}})

        async def from_l2(n: int) -> None:
            for at in range(n):
                await l2_reading.get_item(TableName=table, Key={"pk": {"S": f"k{at % KEYS:04d}"}})

        async def l1_hit(n: int) -> None:
            for _ in range(n):
                await reading.get_item(TableName=table, Key={"pk": {"S": "k0000"}})

        async def raw_get(n: int) -> None:
            for _ in range(n):
                await plain_redis.get("bench:plain")

        keys = Keys(NAMESPACE)
        found = [key async for key in plain_redis.scan_iter(match=keys.prefix + "i:*", count=1000)]
        copy_key = found[0].decode()
        [name] = await plain_redis.hkeys(copy_key)
        field = name.decode() if isinstance(name, bytes) else name
        script = plain_redis.register_script(GET_OR_LEASE)
        script_keys = [
            copy_key,
            keys.lease(field),
            keys.everything,
            keys.table_generation(table),
            keys.item_generation(table, copy_key.rsplit(":", 1)[1]),
        ]

        async def script_hit(n: int) -> None:
            for _ in range(n):
                await script(keys=script_keys, args=[1000, field, "token", "read"])

        async def uncached(n: int) -> None:
            for _ in range(n):
                await raw.get_item(TableName=table, Key={"pk": {"S": "k0000"}})

        await l1_hit(1)
        timings = await measure(
            [
                Contender("raw Redis GET (300 B)", raw_get, 2_000),
                Contender("GET_OR_LEASE script, a copy found", script_hit, 2_000),
                Contender("GetItem, L1 miss answered from L2", from_l2, KEYS),
                Contender("GetItem, L1 hit", l1_hit, 20_000),
                Contender("GetItem to moto, uncached", uncached, 100),
            ],
            rounds=ROUNDS,
        )
        assert l2_reader.stats()["Tier"]["L2Hits"] >= KEYS * ROUNDS
        assert l2_reader.stats()["ItemCacheHits"] == 0  # every read an L1 miss
    base = timings["raw Redis GET (300 B)"]
    rows = [
        [name, fmt_us(t.min_us), fmt_us(t.median_us), fmt_ratio(t.median_us / base.median_us)]
        for name, t in timings.items()
    ]
    return "\n\n".join(
        [
            "### Shared L2 (benchmarks/redis_l2.py)",
            environment(["aiodax", "redis", "moto"]),
            markdown_table(["", "min µs", "median µs", "vs raw GET (median)"], rows),
        ]
    )

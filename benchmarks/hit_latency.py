"""What a cache hit costs: aiodax's ``get_item`` against the asyncio caches people use.

One process, one 10-attribute item.  Each cache wraps the same raw aiobotocore client
of an embedded moto server; its first call is a real miss (GetItem to moto), every
later call a hit that sends nothing, so the backend does not matter for hits.  The
uncached row is that same GetItem against moto every time.

- aiodax: ``cache.wrap(client).get_item(TableName=..., Key=...)``
- async-lru, cashews ``mem://``, aiocache ``SimpleMemoryCache``: each decorating
  ``async def get(pk)`` that calls the raw client's ``get_item``

Caveat on fairness: aiodax hands every caller its own copy of the item (a caller
mutating it cannot corrupt the cache); async-lru, cashews' memory backend and
aiocache's ``SimpleMemoryCache`` hand every caller the same response object.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from async_lru import alru_cache

import aiodax
from aiodax.stampede import key_value, make_item

from ._common import (
    Contender,
    environment,
    markdown_table,
    measure,
    moto_table,
    timing_rows,
)

ROUNDS = 7
HIT_ITERATIONS = 20_000
#: the slow decorators: enough for a stable median, few enough to stay in budget
SLOW_HIT_ITERATIONS = 2_000
UNCACHED_ITERATIONS = 40
TTL = 300


async def _noop() -> None:
    return None


@contextlib.asynccontextmanager
async def _cashews_get(
    load: Callable[[str], Awaitable[Any]],
) -> AsyncIterator[Callable[[str], Awaitable[Any]] | None]:
    if importlib.util.find_spec("cashews") is None:
        yield None
        return
    from cashews import Cache as CashewsCache

    cache = CashewsCache()
    cache.setup("mem://")

    @cache(ttl=TTL)
    async def get(pk: str) -> Any:
        return await load(pk)

    try:
        yield get
    finally:
        await cache.close()  # stops the memory backend's expiry task


def _aiocache_get(load: Callable[[str], Awaitable[Any]]) -> Callable[[str], Awaitable[Any]] | None:
    if importlib.util.find_spec("aiocache") is None:
        return None
    aiocache: Any = importlib.import_module("aiocache")  # untyped package

    @aiocache.cached(ttl=TTL, cache=aiocache.SimpleMemoryCache)  # type: ignore[untyped-decorator]
    async def get(pk: str) -> Any:
        return await load(pk)

    return get  # type: ignore[no-any-return]


async def run() -> str:
    async with moto_table(
        [{"AttributeName": "pk", "KeyType": "HASH"}],
        [{"AttributeName": "pk", "AttributeType": "S"}],
    ) as (client, table):
        await client.put_item(TableName=table, Item=make_item("pk", 0))
        pk = key_value(0)
        key = {"pk": {"S": pk}}

        async def load(value: str) -> Any:
            return await client.get_item(TableName=table, Key={"pk": {"S": value}})

        @alru_cache(maxsize=1024, ttl=TTL)
        async def alru_get(value: str) -> Any:
            return await load(value)

        async with aiodax.Cache(item_ttl=TTL) as cache, _cashews_get(load) as cashews_get:
            cached = cache.wrap(client)
            aiocache_get = _aiocache_get(load)

            # The first call of each is the miss that fills it, against moto.
            first = await cached.get_item(TableName=table, Key=key)
            assert first["Item"]["pk"] == key["pk"], first
            for getter in (alru_get, cashews_get, aiocache_get):
                if getter is not None:
                    assert "Item" in await getter(pk)

            async def baseline(n: int) -> None:
                for _ in range(n):
                    await _noop()

            async def aiodax_hits(n: int) -> None:
                get_item = cached.get_item
                for _ in range(n):
                    await get_item(TableName=table, Key=key)

            def decorated_hits(get: Callable[[str], Awaitable[Any]]) -> Callable[[int], Any]:
                async def hits(n: int) -> None:
                    for _ in range(n):
                        await get(pk)

                return hits

            async def uncached(n: int) -> None:
                for _ in range(n):
                    await client.get_item(TableName=table, Key=key)

            contenders = [
                Contender("await of a trivial coroutine (floor)", baseline, HIT_ITERATIONS),
                Contender("aiodax `get_item` hit", aiodax_hits, HIT_ITERATIONS),
                Contender("async-lru `alru_cache` hit", decorated_hits(alru_get), HIT_ITERATIONS),
            ]
            if cashews_get is not None:
                contenders.append(
                    Contender(
                        "cashews `mem://` decorator hit",
                        decorated_hits(cashews_get),
                        SLOW_HIT_ITERATIONS,
                    )
                )
            if aiocache_get is not None:
                contenders.append(
                    Contender(
                        "aiocache `SimpleMemoryCache` decorator hit",
                        decorated_hits(aiocache_get),
                        SLOW_HIT_ITERATIONS,
                    )
                )
            contenders.append(
                Contender("uncached `get_item` (moto, loopback)", uncached, UNCACHED_ITERATIONS)
            )
            timings = await measure(contenders, ROUNDS)
            stats = cache.stats()
            # Every aiodax call after the first was a hit: no request left.
            assert stats["BackendRequestCount"] == 1, stats

        await alru_get.cache_close()

    missing = [name for name in ("cashews", "aiocache") if importlib.util.find_spec(name) is None]
    header = ["", "min µs/call", "median µs/call", "÷ async-lru (min / median)", "uncached ÷"]
    rows = timing_rows(
        timings, reference="async-lru `alru_cache` hit", uncached=contenders[-1].name
    )
    lines = [
        "### Item cache hit latency",
        "",
        f"One 10-attribute item; {ROUNDS} interleaved rounds of {HIT_ITERATIONS:,} hits "
        f"({SLOW_HIT_ITERATIONS:,} for cashews and aiocache) and {UNCACHED_ITERATIONS} "
        "uncached GetItems. `÷ async-lru`: time relative to async-lru's hit "
        "(ratio of the minimums / of the medians); "
        "`uncached ÷`: how many times faster than the uncached GetItem.",
        "",
        markdown_table(header, rows),
        "",
        environment(["aiodax", "aioboto3", "moto", "async-lru", "cashews", "aiocache"]),
    ]
    if missing:
        lines.append(f"Not measured (not installed): {', '.join(missing)}.")
    return "\n".join(lines)


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

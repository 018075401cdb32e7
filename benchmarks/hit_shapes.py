"""A hit for every common key shape, and a 100-key batch of hits, side by side with async-lru.

One process, one embedded moto server, a table per key shape (``_shapes``) holding
100 flat ten-attribute items.  For each shape and flavour, aiodax's ``get_item`` hit
is timed against async-lru decorating ``async def get(*key values)`` that calls the
same uncached ``get_item`` (client: the raw aiobotocore client; resource: the plain
aioboto3 ``Table``), in interleaved rounds.  Then a ``batch_get_item`` of 100 cached
keys is timed against 100 separate aiodax ``get_item`` hits of the same keys.

As everywhere in these benchmarks: aiodax hands each caller its own copy of the
item, async-lru every caller one shared object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aioboto3
from async_lru import alru_cache
from boto3.dynamodb.types import TypeDeserializer  # type: ignore[import-untyped]

import aiodax
from aiodax.testing.servers import client_kwargs, moto_server

from ._common import Contender, Timing, environment, fmt_ratio, fmt_us, markdown_table, measure
from ._shapes import SHAPES, Shape

ROUNDS = 7
HIT_ITERATIONS = 20_000
BATCH_KEYS = 100
BATCH_ITERATIONS = 400
TTL = 300
_deserialize = TypeDeserializer().deserialize

Run = Callable[[int], Awaitable[None]]


def _repeat(call: Callable[[], Awaitable[Any]]) -> Run:
    async def run(n: int) -> None:
        for _ in range(n):
            await call()

    return run


async def _fill(client: Any, shape: Shape, table: str) -> None:
    await client.create_table(
        TableName=table,
        KeySchema=shape.key_schema(),
        AttributeDefinitions=shape.attribute_definitions(),
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, BATCH_KEYS, 25):
        writes = [{"PutRequest": {"Item": shape.wire_item(i)}} for i in range(start, start + 25)]
        await client.batch_write_item(RequestItems={table: writes})


async def _shape_contenders(
    shape: Shape, table: str, cached: Any, cached_resource: Any, client: Any, resource: Any
) -> list[Contender]:
    plain_table = await resource.Table(table)
    cached_table = await cached_resource.Table(table)

    @alru_cache(maxsize=1024, ttl=TTL)
    async def alru_client_get(*values: Any) -> Any:
        key = {
            name: {kind: str(v) if kind == "N" else v}
            for (name, kind), v in zip(shape.attributes, values, strict=True)
        }
        return await client.get_item(TableName=table, Key=key)

    @alru_cache(maxsize=1024, ttl=TTL)
    async def alru_table_get(*values: Any) -> Any:
        key = dict(zip((name for name, _ in shape.attributes), values, strict=True))
        return await plain_table.get_item(Key=key)

    values, wire_key, python_key = shape.values(0), shape.wire_key(0), shape.python_key(0)
    # The filling misses, and a check that each answers the item.
    assert "Item" in await cached.get_item(TableName=table, Key=wire_key)
    assert "Item" in await cached_table.get_item(Key=python_key)
    assert "Item" in await alru_client_get(*values)
    assert "Item" in await alru_table_get(*values)
    get_item, table_get_item = cached.get_item, cached_table.get_item
    return [
        Contender(
            f"client|aiodax|{shape.name}",
            _repeat(lambda: get_item(TableName=table, Key=wire_key)),
            HIT_ITERATIONS,
        ),
        Contender(
            f"client|async-lru|{shape.name}",
            _repeat(lambda: alru_client_get(*values)),
            HIT_ITERATIONS,
        ),
        Contender(
            f"resource|aiodax|{shape.name}",
            _repeat(lambda: table_get_item(Key=python_key)),
            HIT_ITERATIONS,
        ),
        Contender(
            f"resource|async-lru|{shape.name}",
            _repeat(lambda: alru_table_get(*values)),
            HIT_ITERATIONS,
        ),
    ]


async def _batch_contenders(
    shape: Shape, table: str, cached: Any, cached_resource: Any
) -> list[Contender]:
    cached_table = await cached_resource.Table(table)
    wire_keys = [shape.wire_key(i) for i in range(BATCH_KEYS)]
    python_keys = [shape.python_key(i) for i in range(BATCH_KEYS)]
    for wire_key in wire_keys:  # fill the cache; the resource's views are made on first hits
        await cached.get_item(TableName=table, Key=wire_key)
    client_batch = {table: {"Keys": wire_keys}}
    resource_batch = {table: {"Keys": python_keys}}
    for flavour, answer in (
        ("client", await cached.batch_get_item(RequestItems=client_batch)),
        ("resource", await cached_resource.batch_get_item(RequestItems=resource_batch)),
    ):
        assert len(answer["Responses"][table]) == BATCH_KEYS, (flavour, answer)
    get_item, table_get_item = cached.get_item, cached_table.get_item

    async def client_singles() -> None:
        for wire_key in wire_keys:
            await get_item(TableName=table, Key=wire_key)

    async def resource_singles() -> None:
        for python_key in python_keys:
            await table_get_item(Key=python_key)

    return [
        Contender(
            "batch|client|batch",
            _repeat(lambda: cached.batch_get_item(RequestItems=client_batch)),
            BATCH_ITERATIONS,
        ),
        Contender("batch|client|singles", _repeat(client_singles), BATCH_ITERATIONS),
        Contender(
            "batch|resource|batch",
            _repeat(lambda: cached_resource.batch_get_item(RequestItems=resource_batch)),
            BATCH_ITERATIONS,
        ),
        Contender("batch|resource|singles", _repeat(resource_singles), BATCH_ITERATIONS),
    ]


async def run() -> str:
    with moto_server() as url:
        session = aioboto3.Session()
        kwargs = client_kwargs(url)
        async with (
            session.client("dynamodb", **kwargs) as client,
            session.resource("dynamodb", **kwargs) as resource,
            aiodax.Cache(item_ttl=TTL) as cache,
        ):
            cached, cached_resource = cache.wrap(client), cache.wrap(resource)
            tables = {shape.name: f"aiodax-bench-shape-{n}" for n, shape in enumerate(SHAPES)}
            try:
                contenders: list[Contender] = []
                for shape in SHAPES:
                    await _fill(client, shape, tables[shape.name])
                    contenders += await _shape_contenders(
                        shape, tables[shape.name], cached, cached_resource, client, resource
                    )
                batch_shape = SHAPES[1]
                contenders += await _batch_contenders(
                    batch_shape, tables[batch_shape.name], cached, cached_resource
                )
                before = cache.stats()["BackendRequestCount"]
                timings = await measure(contenders, ROUNDS)
                # Nothing measured reached DynamoDB: every aiodax call was a hit.
                assert cache.stats()["BackendRequestCount"] == before, cache.stats()
            finally:
                for table in tables.values():
                    await client.delete_table(TableName=table)
    return _report(timings, batch_shape)


def _ratio(timings: dict[str, Timing], name: str, reference: str) -> str:
    mine, theirs = timings[name], timings[reference]
    return (
        f"{fmt_ratio(mine.min_us / theirs.min_us)} / {fmt_ratio(mine.median_us / theirs.median_us)}"
    )


def _report(timings: dict[str, Timing], batch_shape: Shape) -> str:
    rows = []
    for flavour in ("client", "resource"):
        for shape in SHAPES:
            mine, theirs = f"{flavour}|aiodax|{shape.name}", f"{flavour}|async-lru|{shape.name}"
            rows.append(
                [
                    f"{flavour}: {shape.name}",
                    fmt_us(timings[mine].min_us),
                    fmt_us(timings[theirs].min_us),
                    _ratio(timings, mine, theirs),
                ]
            )
    batch_rows = [
        [
            flavour,
            fmt_us(timings[f"batch|{flavour}|batch"].min_us),
            fmt_us(timings[f"batch|{flavour}|singles"].min_us),
            _ratio(timings, f"batch|{flavour}|batch", f"batch|{flavour}|singles"),
        ]
        for flavour in ("client", "resource")
    ]
    return "\n".join(
        [
            "### Hit latency by key shape",
            "",
            f"A flat ten-attribute item; {ROUNDS} interleaved rounds of {HIT_ITERATIONS:,} hits. "
            "`÷ async-lru`: aiodax's time relative to async-lru's (minimums / medians).",
            "",
            markdown_table(
                ["", "aiodax min µs", "async-lru min µs", "÷ async-lru (min / median)"], rows
            ),
            "",
            f"### A {BATCH_KEYS}-key `batch_get_item` hit against {BATCH_KEYS} `get_item` hits",
            "",
            f"{batch_shape.name}, every key cached; {ROUNDS} rounds of {BATCH_ITERATIONS} batches "
            f"(or of {BATCH_KEYS} single hits).",
            "",
            markdown_table(
                ["", "batch min µs", f"{BATCH_KEYS} hits min µs", "batch ÷ hits (min / median)"],
                batch_rows,
            ),
            "",
            environment(["aiodax", "aioboto3", "moto", "async-lru"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

"""What a query cache hit costs against the Query it saves: a 100-item partition.

One process: a table with a string partition key and a numeric sort key on an embedded
moto server, 100 items of 10 attributes in one partition.  The cached Query's first
call is a real miss against moto; every later call is a hit.  async-lru wrapping the
same Query is shown for reference: it hands every caller the same response object,
where aiodax gives each caller its own list of its own item dicts.

Both flavours: the client's ``query(KeyConditionExpression="#pk = :pk", ...)`` in wire
format, and the resource's ``Table.query(KeyConditionExpression=Key("pk").eq(...))`` in
Python values, whose hit serves a copy of the page converted once (sets and maps
copied, scalars shared) and builds the condition expression as aioboto3 does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aioboto3
from async_lru import alru_cache
from boto3.dynamodb.conditions import Key  # type: ignore[import-untyped]

import aiodax
from aiodax.stampede import make_item
from aiodax.testing.servers import client_kwargs

from ._common import Contender, environment, markdown_table, measure, moto_table, timing_rows

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import WriteRequestTypeDef

ITEMS = 100
ROUNDS = 5
HIT_ITERATIONS = 2_000
#: the resource's hits build a condition expression and copy sets and maps
RESOURCE_HIT_ITERATIONS = 500
UNCACHED_ITERATIONS = 8
PARTITION = "customer#0001"


def _order(number: int) -> dict[str, Any]:
    item = make_item("pk", number)
    item["pk"] = {"S": PARTITION}
    item["sk"] = {"N": str(number)}
    del item["verified"]  # ten attributes with the sort key
    return item


async def run() -> str:
    async with moto_table(
        [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
    ) as (client, table):
        for start in range(0, ITEMS, 25):
            batch: list[WriteRequestTypeDef] = [
                {"PutRequest": {"Item": _order(n)}} for n in range(start, min(start + 25, ITEMS))
            ]
            await client.batch_write_item(RequestItems={table: batch})
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
        }

        @alru_cache(maxsize=64, ttl=300)
        async def alru_query(partition: str) -> Any:
            return await client.query(**request)

        session = aioboto3.Session()
        async with (
            session.resource("dynamodb", **client_kwargs(client.meta.endpoint_url)) as resource,
            aiodax.Cache(query_ttl=300) as cache,
        ):
            cached = cache.wrap(client)
            first = await cached.query(**request)  # the miss, against moto
            assert first["Count"] == ITEMS, first["Count"]
            assert (await alru_query(PARTITION))["Count"] == ITEMS
            plain_table = await resource.Table(table)
            cached_table = await cache.wrap(resource).Table(table)

            @alru_cache(maxsize=64, ttl=300)
            async def alru_table_query(partition: str) -> Any:
                return await plain_table.query(KeyConditionExpression=Key("pk").eq(partition))

            # The resource's request is another fingerprint: its own miss first.
            python = await cached_table.query(KeyConditionExpression=Key("pk").eq(PARTITION))
            assert python["Count"] == ITEMS, python["Count"]
            assert (await alru_table_query(PARTITION))["Count"] == ITEMS

            async def aiodax_hits(n: int) -> None:
                for _ in range(n):
                    await cached.query(**request)

            async def alru_hits(n: int) -> None:
                for _ in range(n):
                    await alru_query(PARTITION)

            async def uncached(n: int) -> None:
                for _ in range(n):
                    await client.query(**request)

            async def aiodax_table_hits(n: int) -> None:
                for _ in range(n):
                    await cached_table.query(KeyConditionExpression=Key("pk").eq(PARTITION))

            async def alru_table_hits(n: int) -> None:
                for _ in range(n):
                    await alru_table_query(PARTITION)

            async def uncached_table(n: int) -> None:
                for _ in range(n):
                    await plain_table.query(KeyConditionExpression=Key("pk").eq(PARTITION))

            contenders = [
                Contender("aiodax `query` hit", aiodax_hits, HIT_ITERATIONS),
                Contender(
                    "async-lru `alru_cache` hit (shared response)", alru_hits, HIT_ITERATIONS
                ),
                Contender("uncached `query` (moto, loopback)", uncached, UNCACHED_ITERATIONS),
                Contender(
                    "aiodax `Table.query` hit (resource)",
                    aiodax_table_hits,
                    RESOURCE_HIT_ITERATIONS,
                ),
                Contender(
                    "async-lru-wrapped `Table.query` hit (shared response)",
                    alru_table_hits,
                    RESOURCE_HIT_ITERATIONS,
                ),
                Contender(
                    "uncached `Table.query` (moto, loopback)",
                    uncached_table,
                    UNCACHED_ITERATIONS,
                ),
            ]
            timings = await measure(contenders, ROUNDS)
            stats = cache.stats()
            assert stats["BackendRequests"].get("query") == 2, stats

        await alru_query.cache_close()
        await alru_table_query.cache_close()

    header = ["", "min µs/call", "median µs/call", "uncached ÷"]
    rows = [
        *timing_rows(
            {c.name: timings[c.name] for c in contenders[:3]},
            reference=None,
            uncached=contenders[2].name,
        ),
        *timing_rows(
            {c.name: timings[c.name] for c in contenders[3:]},
            reference=None,
            uncached=contenders[5].name,
        ),
    ]
    aiodax_median = timings[contenders[0].name].median_us
    resource_median = timings[contenders[3].name].median_us
    return "\n".join(
        [
            f"### Query cache hit latency ({ITEMS}-item partition)",
            "",
            f"A Query returning {ITEMS} items of 10 attributes; {ROUNDS} interleaved rounds of "
            f"{HIT_ITERATIONS:,} hits ({RESOURCE_HIT_ITERATIONS:,} through the resource) and "
            f"{UNCACHED_ITERATIONS} uncached Queries. "
            "`uncached ÷`: how many times faster than the uncached Query.",
            "",
            markdown_table(header, rows),
            "",
            f"aiodax hit per item returned: {aiodax_median / ITEMS:,.3f} µs (client), "
            f"{resource_median / ITEMS:,.3f} µs (resource). `uncached ÷` compares each "
            "flavour with its own uncached Query.",
            environment(["aiodax", "aioboto3", "moto", "async-lru"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

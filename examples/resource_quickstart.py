"""aiodax with the DynamoDB resource API, against a moto server it starts itself.

    python examples/resource_quickstart.py

Creates a table, writes an item through the cache, reads it back three times
(DynamoDB is asked none of them: the write filled the cache) and prints the stats.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aioboto3
from boto3.dynamodb.conditions import Key

import aiodax
from aiodax.testing.servers import client_kwargs, moto_server


async def main(endpoint_url: str) -> None:
    session = aioboto3.Session()
    async with aiodax.resource(session, **client_kwargs(endpoint_url)) as dynamodb:
        table = await dynamodb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        await table.wait_until_exists()

        await table.put_item(Item={"pk": "user#1", "total": Decimal("42.50"), "tags": {"vip"}})
        for _ in range(3):
            item = (await table.get_item(Key={"pk": "user#1"}))["Item"]
        print("item:", item)
        for _ in range(2):
            page = await table.query(KeyConditionExpression=Key("pk").eq("user#1"))
        print("query:", page["Count"], "item(s)")

        stats = dynamodb.cache.stats()
        print("item cache hits/misses:", stats["ItemCacheHits"], stats["ItemCacheMisses"])
        print("query cache hits/misses:", stats["QueryCacheHits"], stats["QueryCacheMisses"])
        print("requests sent to DynamoDB:", stats["BackendRequests"])


if __name__ == "__main__":
    with moto_server() as url:
        asyncio.run(main(url))

"""An async worker: a consumer loop reading and writing DynamoDB through one cache.

    python examples/async_worker.py

Four consumers take order events off a queue (standing in for SQS, Kafka, a Redis
Stream…).  Each event needs its product (a read that the cache serves after the
first time, and that concurrent consumers share while it loads) and writes the
order (``put_item``) and the product's new stock (``update_item``, whose new
image the cache keeps unless another write to the product overlapped it: the next
read of that product is a hit with the new stock or a miss, never the old stock).
Run against an embedded moto server.
"""

from __future__ import annotations

import asyncio
import random

import aioboto3

import aiodax
from aiodax.testing.servers import client_kwargs, moto_server, string_key_table

PRODUCTS = "products"
ORDERS = "orders"
CONSUMERS = 4


async def consume(
    events: asyncio.Queue[tuple[str, str, int]],
    products: aiodax.CachedTable,
    orders: aiodax.CachedTable,
) -> None:
    while True:
        order_id, sku, quantity = await events.get()
        try:
            product = (await products.get_item(Key={"sku": sku}))["Item"]
            await orders.put_item(
                Item={"id": order_id, "sku": sku, "quantity": quantity, "price": product["price"]}
            )
            await products.update_item(
                Key={"sku": sku},
                UpdateExpression="SET stock = stock - :q",
                ExpressionAttributeValues={":q": quantity},
                ReturnValues="ALL_NEW",
            )
        finally:
            events.task_done()


async def main(endpoint_url: str) -> None:
    kwargs = client_kwargs(endpoint_url)
    async with aioboto3.Session().client("dynamodb", **kwargs) as client:
        await client.create_table(**string_key_table(PRODUCTS, "sku"))
        await client.create_table(**string_key_table(ORDERS, "id"))
    skus = [f"sku-{n}" for n in range(5)]
    async with aiodax.resource(aioboto3.Session(), **kwargs) as dynamodb:
        products = await dynamodb.Table(PRODUCTS)
        orders = await dynamodb.Table(ORDERS)
        for sku in skus:
            await products.put_item(Item={"sku": sku, "price": 10, "stock": 1_000})
        events: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        draw = random.Random(7)
        ordered = 0
        for n in range(200):
            quantity = draw.randint(1, 3)
            ordered += quantity
            events.put_nowait((f"order-{n}", draw.choice(skus), quantity))
        consumers = [
            asyncio.create_task(consume(events, products, orders)) for _ in range(CONSUMERS)
        ]
        await events.join()
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        # Read through the cache: each product's entry is the update's new image.
        stock = sum([(await products.get_item(Key={"sku": sku}))["Item"]["stock"] for sku in skus])
        stats = dynamodb.cache.stats()
    print("writes through the cache:", stats["WriteThroughs"])
    print("stock left:", stock, "=", 1_000 * len(skus), "-", ordered, "ordered")
    print("product reads served from the cache:", stats["Tables"][PRODUCTS]["ItemCacheHits"])
    print("GetItem requests sent to DynamoDB:", stats["BackendRequests"].get("get_item", 0))


if __name__ == "__main__":
    with moto_server() as url:
        asyncio.run(main(url))

"""Writes whose outcome the caller cannot tell: the cache never serves what they hide.

- A ``TransactWriteItems`` whose ``ClientRequestToken`` was used in the last 10
  minutes is answered with success and applies nothing: its images are not cached
  (DynamoDB Local implements the token; moto does not).
"""

from __future__ import annotations

import uuid
from typing import Any

import aioboto3
import pytest

import aiodax
from tests import servers

KEY = {"pk": {"S": "a"}}


def item(value: str) -> dict[str, Any]:
    return {**KEY, "v": {"N": value}}


# ------------------------------------------------------ a replayed transaction


@pytest.mark.dynamodb_local
async def test_a_replayed_transaction_does_not_cache_the_images_it_did_not_write(
    dynamodb_local_endpoint: str,
) -> None:
    async with aioboto3.Session().client(
        "dynamodb", **servers.client_kwargs(dynamodb_local_endpoint)
    ) as raw_client:
        table = f"aiodax-replay-{uuid.uuid4().hex[:12]}"
        await raw_client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        try:
            async with aiodax.Cache() as cache:
                cached = cache.wrap(raw_client)
                transaction: Any = {
                    "TransactItems": [{"Put": {"TableName": table, "Item": item("1")}}],
                    "ClientRequestToken": uuid.uuid4().hex,
                }
                await cached.transact_write_items(**transaction)
                await cached.put_item(TableName=table, Item=item("2"))
                await cached.transact_write_items(**transaction)  # a replay: applies nothing

                consistent = await raw_client.get_item(
                    TableName=table, Key=KEY, ConsistentRead=True
                )
                assert consistent["Item"] == item("2")  # DynamoDB kept the put
                assert (await cached.get_item(TableName=table, Key=KEY))["Item"] == item("2")
        finally:
            await raw_client.delete_table(TableName=table)

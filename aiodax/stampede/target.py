"""The target: the loopback endpoint and table a stampede reads, made ready for it.

:class:`Target` names them; :func:`prepare_table` creates the table if asked (an
embedded server starts empty), waits for it, checks that it is keyed by a string
partition key alone, and seeds the items the load reads.  Whatever keeps the target
from taking the load is raised as :class:`TargetError`, with a message for the user.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from botocore.exceptions import BotoCoreError, ClientError

from ..testing.servers import string_key_table
from .load import LoadSpec, make_item

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import WriteRequestTypeDef

_BATCH_WRITE_LIMIT: Final = 25
_SEED_CONCURRENCY: Final = 8
_SEED_ATTEMPTS: Final = 8


@dataclass(frozen=True)
class Target:
    """Where the load goes: a loopback endpoint and a table with a string partition key."""

    endpoint_url: str
    table: str
    #: create the table (an embedded server starts empty) instead of requiring it
    create: bool
    #: put the ``keys`` items the load reads before it starts
    seed: bool
    #: for the report's header, e.g. "moto (embedded)"
    label: str
    region: str = "us-east-1"


class TargetError(Exception):
    """The target cannot take the load (missing table, wrong key schema, unreachable)."""


async def prepare_table(client: DynamoDBClient, target: Target, spec: LoadSpec) -> str:
    """Create (if asked) and seed the target table; return its partition key's name."""
    try:
        if target.create:
            await client.create_table(**string_key_table(target.table))
        hash_key = await _wait_for_table(client, target)
        if target.seed:
            await _seed(client, target.table, hash_key, spec.keys)
    except ClientError as error:
        raise TargetError(f"{target.endpoint_url}: {error}") from error
    except BotoCoreError as error:  # connection refused, timeouts
        raise TargetError(f"{target.endpoint_url}: {error}") from error
    return hash_key


async def _wait_for_table(client: DynamoDBClient, target: Target) -> str:
    try:
        async with asyncio.timeout(30):
            while True:
                description = (await client.describe_table(TableName=target.table))["Table"]
                if description.get("TableStatus") == "ACTIVE":
                    break
                await asyncio.sleep(0.1)
    except client.exceptions.ResourceNotFoundException:
        raise TargetError(
            f"table {target.table!r} not found at {target.endpoint_url} in region "
            f"{target.region} (DynamoDB Local started without -sharedDb keeps one database "
            "per access key and region; aiodax signs with access key 'testing')"
        ) from None
    except TimeoutError:
        raise TargetError(f"table {target.table!r} did not become ACTIVE within 30 s") from None
    key_schema = description.get("KeySchema", [])
    hash_key = next(e["AttributeName"] for e in key_schema if e["KeyType"] == "HASH")
    if any(e["KeyType"] == "RANGE" for e in key_schema):
        raise TargetError(
            f"table {target.table!r} has a sort key: the stampede needs a table keyed by a "
            "string partition key alone"
        )
    types = {d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]}
    if types.get(hash_key) != "S":
        raise TargetError(
            f"table {target.table!r}: partition key {hash_key!r} is of type "
            f"{types.get(hash_key)}, the stampede needs a string (S) key"
        )
    return hash_key


async def _seed(client: DynamoDBClient, table: str, hash_key: str, keys: int) -> None:
    """Put the ``keys`` items, 25 to a BatchWriteItem, a few batches at a time."""
    semaphore = asyncio.Semaphore(_SEED_CONCURRENCY)

    async def write(ranks: range) -> None:
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": make_item(hash_key, rank)}} for rank in ranks
        ]
        async with semaphore:
            for attempt in range(_SEED_ATTEMPTS):
                answer = await client.batch_write_item(RequestItems={table: requests})
                # DynamoDB hands back the unprocessed requests in the shape it was sent.
                unprocessed = answer.get("UnprocessedItems", {}).get(table, [])
                requests = cast("list[WriteRequestTypeDef]", unprocessed)
                if not requests:
                    return
                await asyncio.sleep(0.05 * 2**attempt)
        raise TargetError(f"could not seed {table!r}: DynamoDB kept items unprocessed")

    async with asyncio.TaskGroup() as group:
        for start in range(0, keys, _BATCH_WRITE_LIMIT):
            group.create_task(write(range(start, min(start + _BATCH_WRITE_LIMIT, keys))))

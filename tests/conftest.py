"""Fixtures that run the tests against real DynamoDB-compatible servers on 127.0.0.1.

``moto.mock_aws`` does not work with aiobotocore (it neither intercepts the calls nor
survives the awaited response body), so the tests talk HTTP to real servers on loopback
instead: moto's server in a thread, and AWS's DynamoDB Local (Java) as a child process.
Tests that take ``endpoint`` (or ``raw_client``/``make_table``) run once per server.

DynamoDB Local is fetched by ``scripts/fetch-dynamodb-local``. When it (or Java) is
missing its tests are skipped, and fail instead under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, cast

import aioboto3
import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from tests import servers
from tests.servers import Index, Key, MakeTable, ScalarType
from tests.support import FakeClock

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.literals import KeyTypeType
    from types_aiobotocore_dynamodb.type_defs import (
        CreateTableInputTypeDef,
        KeySchemaElementTypeDef,
    )

# Dummy credentials and a fixed region, forced so that no real AWS identity or profile
# is ever picked up; every client also gets an explicit loopback endpoint_url.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION=servers.REGION,
    AWS_EC2_METADATA_DISABLED="true",
)
for _name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(servers.moto_server())
        except servers.ServerUnavailable as exc:
            servers.require(exc.reason)
        yield url


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(servers.dynamodb_local())
        except servers.ServerUnavailable as exc:
            servers.require(exc.reason)
        yield url


_ENDPOINT_FIXTURES = {"moto": "moto_endpoint", "dynamodb-local": "dynamodb_local_endpoint"}


@pytest.fixture(params=["moto", pytest.param("dynamodb-local", marks=pytest.mark.dynamodb_local)])
def endpoint(request: pytest.FixtureRequest) -> str:
    """The URL of each test server in turn (ids ``moto`` and ``dynamodb-local``)."""
    url: str = request.getfixturevalue(_ENDPOINT_FIXTURES[request.param])
    return url


@pytest.fixture
def client_kwargs(endpoint: str) -> servers.ClientKwargs:
    """``endpoint_url``, region and dummy credentials for a client of ``endpoint``."""
    return servers.client_kwargs(endpoint)


@pytest.fixture
async def raw_client(client_kwargs: servers.ClientKwargs) -> AsyncIterator[DynamoDBClient]:
    """A plain aiobotocore DynamoDB client for ``endpoint``."""
    async with aioboto3.Session().client("dynamodb", **client_kwargs) as client:
        yield client


@pytest.fixture
async def make_table(raw_client: DynamoDBClient) -> AsyncIterator[MakeTable]:
    """Factory creating uniquely named on-demand tables, deleted after the test."""
    created: list[str] = []

    async def make(
        hash_key: Key = ("pk", "S"),
        range_key: Key | None = None,
        gsis: Sequence[Index] = (),
        lsis: Sequence[Index] = (),
    ) -> str:
        types: dict[str, ScalarType] = {}

        def schema(hash_: Key, range_: Key | None) -> list[KeySchemaElementTypeDef]:
            elements: list[KeySchemaElementTypeDef] = []
            roles: tuple[tuple[Key | None, KeyTypeType], ...] = ((hash_, "HASH"), (range_, "RANGE"))
            for key, role in roles:
                if key is None:
                    continue
                attr, type_ = key
                if types.setdefault(attr, type_) != type_:
                    raise ValueError(f"attribute {attr!r} declared as {types[attr]} and {type_}")
                elements.append({"AttributeName": attr, "KeyType": role})
            return elements

        if any(h != hash_key for _, h, _ in lsis):
            raise ValueError("a local secondary index must share the table's hash key")
        name = f"aiodax-test-{uuid.uuid4().hex[:12]}"
        request: CreateTableInputTypeDef = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": schema(hash_key, range_key),
            "AttributeDefinitions": [],
        }
        if gsis:
            request["GlobalSecondaryIndexes"] = [
                {"IndexName": i, "KeySchema": schema(h, r), "Projection": {"ProjectionType": "ALL"}}
                for i, h, r in gsis
            ]
        if lsis:
            request["LocalSecondaryIndexes"] = [
                {"IndexName": i, "KeySchema": schema(h, r), "Projection": {"ProjectionType": "ALL"}}
                for i, h, r in lsis
            ]
        request["AttributeDefinitions"] = [
            {"AttributeName": attr, "AttributeType": type_} for attr, type_ in types.items()
        ]

        await raw_client.create_table(**request)
        created.append(name)
        await _wait_active(raw_client, name)
        return name

    yield make

    for name in created:
        with contextlib.suppress(raw_client.exceptions.ResourceNotFoundException):
            await raw_client.delete_table(TableName=name)


async def _wait_active(client: DynamoDBClient, table: str) -> None:
    async with asyncio.timeout(30):
        while True:
            description = (await client.describe_table(TableName=table))["Table"]
            indexes = description.get("GlobalSecondaryIndexes", [])
            if description.get("TableStatus") == "ACTIVE" and all(
                index.get("IndexStatus") == "ACTIVE" for index in indexes
            ):
                return
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------
# aiodax fixtures


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test advances by hand; pass it to ``aiodax.Cache(clock=...)``."""
    return FakeClock()


@pytest.fixture
async def cache() -> AsyncIterator[aiodax.Cache]:
    async with aiodax.Cache() as cache:
        yield cache
    assert cache.closed


@pytest.fixture
def instrumented(raw_client: DynamoDBClient) -> InstrumentedClient:
    """``raw_client`` counting (and on demand failing) the calls that reach the server."""
    return InstrumentedClient(raw_client)


@pytest.fixture
def cached(cache: aiodax.Cache, instrumented: InstrumentedClient) -> aiodax.CachedClient:
    """The aiodax client under test: ``cache`` wrapped around ``instrumented``."""
    # An InstrumentedClient stands in for a DynamoDB client, but is not typed as one.
    return cache.wrap(cast("DynamoDBClient", instrumented))


@pytest.fixture
async def table(make_table: MakeTable) -> str:
    """A fresh table with a string partition key ``pk``."""
    return await make_table()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every test leaves the loop as it found it: no task of its own still pending."""
    before = asyncio.all_tasks()
    yield
    leaked = [
        task
        for task in asyncio.all_tasks() - before
        if task is not asyncio.current_task() and not task.done()
    ]
    for task in leaked:
        task.cancel()
    assert not leaked, f"tasks left pending: {leaked}"


# Lagging replicas: a second instance of each server, as the replica ----------------


@pytest.fixture(scope="session")
def moto_replica_endpoint() -> Iterator[str]:
    with servers.moto_in_child_process() as url:
        yield url


@pytest.fixture(scope="session")
def dynamodb_local_replica_endpoint() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(servers.dynamodb_local())
        except servers.ServerUnavailable as exc:
            servers.require(exc.reason)
        yield url


_PAIRS = {
    "moto": ("moto_endpoint", "moto_replica_endpoint"),
    "dynamodb-local": ("dynamodb_local_endpoint", "dynamodb_local_replica_endpoint"),
}


@pytest.fixture(params=["moto", pytest.param("dynamodb-local", marks=pytest.mark.dynamodb_local)])
def upstreams(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(primary, replica): two instances of each server in turn."""
    primary, replica = _PAIRS[request.param]
    return request.getfixturevalue(primary), request.getfixturevalue(replica)

"""One name may be two tables, and two names one table.

A ``Cache`` serving clients of two regions (or endpoints, or credentials) must
never answer one's ``orders`` item to the other; a table named by its ARN is the
table of that name, and a write by either spelling must reach what is cached
under the other.  moto keeps regions apart and takes ARNs; DynamoDB Local (run
with ``-sharedDb``) keeps neither regions apart nor takes ARNs, so those tests
run on moto, and two endpoints are moto and DynamoDB Local side by side.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import aioboto3
import pytest

import aiodax
from aiodax.testing import InstrumentedClient
from tests import servers

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.usefixtures("moto_endpoint")

Key = {"pk": {"S": "order#1"}}
OpenClient = Callable[..., Awaitable[InstrumentedClient]]


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """Opens instrumented raw clients (``endpoint``, ``region``, access key), closed after."""
    async with _Clients() as clients:
        yield clients.open


class _Clients:
    def __init__(self) -> None:
        self._exits: list[Any] = []

    async def open(
        self, endpoint: str, region: str = servers.REGION, access_key: str = "testing"
    ) -> InstrumentedClient:
        kwargs: Any = {
            **servers.client_kwargs(endpoint, region=region),
            "aws_access_key_id": access_key,
            "aws_secret_access_key": "testing",
        }
        context = aioboto3.Session().client("dynamodb", **kwargs)
        client = await context.__aenter__()
        self._exits.append(context)
        return InstrumentedClient(client)

    async def __aenter__(self) -> _Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for context in reversed(self._exits):
            await context.__aexit__(None, None, None)


async def _create(client: InstrumentedClient, name: str) -> str:
    """Create ``name`` (partition key ``pk``, sort key ``sk`` when asked) and return its ARN."""
    raw = cast("DynamoDBClient", client.wrapped)
    described = await raw.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return described["TableDescription"]["TableArn"]


async def _put(client: InstrumentedClient, table: str, value: str) -> None:
    raw = cast("DynamoDBClient", client.wrapped)
    await raw.put_item(TableName=table, Item={**Key, "v": {"S": value}})


def _value(response: dict[str, Any]) -> str | None:
    item = response.get("Item")
    return None if item is None else cast(str, item["v"]["S"])


def _wrap(cache: aiodax.Cache, client: InstrumentedClient) -> aiodax.CachedClient:
    return cache.wrap(cast("DynamoDBClient", client))


# --------------------------------------------------------------- regions, endpoints, keys


async def test_two_regions_with_one_table_name_never_see_each_others_items(
    moto_endpoint: str, open_client: OpenClient
) -> None:
    east = await open_client(moto_endpoint, "us-east-1")
    west = await open_client(moto_endpoint, "eu-west-1")
    name = f"orders-{uuid.uuid4().hex[:8]}"
    for client, value in ((east, "east"), (west, "west")):
        await _create(client, name)
        await _put(client, name, value)
    async with aiodax.Cache() as cache:
        cached_east, cached_west = _wrap(cache, east), _wrap(cache, west)
        for _ in range(2):  # a miss, then a hit, each of its own region
            assert _value(await cached_east.get_item(TableName=name, Key=Key)) == "east"
            assert _value(await cached_west.get_item(TableName=name, Key=Key)) == "west"
        assert (east.calls["get_item"], west.calls["get_item"]) == (1, 1)

        # A write through one region neither overwrites nor serves into the other.
        await cached_west.put_item(TableName=name, Item={**Key, "v": {"S": "west 2"}})
        assert _value(await cached_east.get_item(TableName=name, Key=Key)) == "east"
        assert _value(await cached_west.get_item(TableName=name, Key=Key)) == "west 2"
        await cached_east.delete_item(TableName=name, Key=Key)
        assert _value(await cached_west.get_item(TableName=name, Key=Key)) == "west 2"
        assert _value(await cached_east.get_item(TableName=name, Key=Key)) is None


async def test_two_regions_keep_their_batches_and_query_pages_apart(
    moto_endpoint: str, open_client: OpenClient
) -> None:
    east = await open_client(moto_endpoint, "us-east-1")
    west = await open_client(moto_endpoint, "eu-west-1")
    name = f"orders-{uuid.uuid4().hex[:8]}"
    for client, value in ((east, "east"), (west, "west")):
        await _create(client, name)
        await _put(client, name, value)
    query = {
        "TableName": name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": Key["pk"]},
    }
    async with aiodax.Cache() as cache:
        cached_east, cached_west = _wrap(cache, east), _wrap(cache, west)
        for _ in range(2):
            for cached, value in ((cached_east, "east"), (cached_west, "west")):
                batch = await cached.batch_get_item(RequestItems={name: {"Keys": [Key]}})
                assert [item["v"]["S"] for item in batch["Responses"][name]] == [value]
                page = await cached.query(**query)
                assert [item["v"]["S"] for item in page["Items"]] == [value]
        assert (east.calls["batch_get_item"], west.calls["batch_get_item"]) == (1, 1)
        assert (east.calls["query"], west.calls["query"]) == (1, 1)


async def test_two_regions_through_the_resource_never_see_each_others_items(
    moto_endpoint: str,
) -> None:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    session = aioboto3.Session()
    async with (
        session.resource("dynamodb", **servers.client_kwargs(moto_endpoint)) as east,
        session.resource(
            "dynamodb", **servers.client_kwargs(moto_endpoint, region="eu-west-1")
        ) as west,
        aiodax.Cache() as cache,
    ):
        tables = []
        for resource, value in ((east, "east"), (west, "west")):
            await resource.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            table = await cache.wrap(resource).Table(name)
            await table.put_item(Item={"pk": "order#1", "v": value})
            tables.append((table, value))
        for _ in range(2):
            for table, value in tables:
                assert (await table.get_item(Key={"pk": "order#1"}))["Item"]["v"] == value
        batch = await cache.wrap(east).batch_get_item(
            RequestItems={name: {"Keys": [{"pk": "order#1"}]}}
        )
        assert [item["v"] for item in batch["Responses"][name]] == ["east"]


async def test_two_endpoints_with_one_table_name_never_see_each_others_items(
    moto_endpoint: str, dynamodb_local_endpoint: str, open_client: OpenClient
) -> None:
    moto = await open_client(moto_endpoint)
    local = await open_client(dynamodb_local_endpoint)
    name = f"orders-{uuid.uuid4().hex[:8]}"
    for client, value in ((moto, "moto"), (local, "local")):
        await _create(client, name)
        await _put(client, name, value)
    try:
        async with aiodax.Cache() as cache:
            cached_moto, cached_local = _wrap(cache, moto), _wrap(cache, local)
            for _ in range(2):
                assert _value(await cached_moto.get_item(TableName=name, Key=Key)) == "moto"
                assert _value(await cached_local.get_item(TableName=name, Key=Key)) == "local"
            assert (moto.calls["get_item"], local.calls["get_item"]) == (1, 1)
    finally:
        await cast("DynamoDBClient", local.wrapped).delete_table(TableName=name)


async def test_two_access_keys_do_not_share_entries(
    moto_endpoint: str, open_client: OpenClient
) -> None:
    """Two principals may be allowed different items (IAM's leading-keys conditions, other
    accounts): what one read is never served to the other, though a write by either
    reaches both."""
    first = await open_client(moto_endpoint, access_key="AKIAFIRST")
    second = await open_client(moto_endpoint, access_key="AKIASECOND")
    name = f"orders-{uuid.uuid4().hex[:8]}"
    await _create(first, name)
    await _put(first, name, "v1")
    async with aiodax.Cache() as cache:
        cached_first, cached_second = _wrap(cache, first), _wrap(cache, second)
        for _ in range(2):
            assert _value(await cached_first.get_item(TableName=name, Key=Key)) == "v1"
            assert _value(await cached_second.get_item(TableName=name, Key=Key)) == "v1"
        assert (first.calls["get_item"], second.calls["get_item"]) == (1, 1)
        await cached_first.update_item(
            TableName=name,
            Key=Key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "v2"}},
        )
        assert _value(await cached_second.get_item(TableName=name, Key=Key)) == "v2"


async def test_one_session_s_client_and_resource_share_entries(moto_endpoint: str) -> None:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    session = aioboto3.Session()
    async with (
        session.client("dynamodb", **servers.client_kwargs(moto_endpoint)) as raw,
        session.resource("dynamodb", **servers.client_kwargs(moto_endpoint)) as resource,
        aiodax.Cache() as cache,
    ):
        client = InstrumentedClient(raw)
        await _create(client, name)
        await _put(client, name, "v1")
        cached = _wrap(cache, client)
        table = await cache.wrap(resource).Table(name)
        assert _value(await cached.get_item(TableName=name, Key=Key)) == "v1"
        stats = cache.stats()
        assert (await table.get_item(Key={"pk": "order#1"}))["Item"]["v"] == "v1"
        assert cache.stats()["ItemCacheHits"] == stats["ItemCacheHits"] + 1


# ------------------------------------------------------------------------------- ARNs


@pytest.fixture
async def named(
    moto_endpoint: str, open_client: OpenClient
) -> AsyncIterator[tuple[aiodax.CachedClient, str, str]]:
    """A cached client on moto, and one table's name and ARN."""
    client = await open_client(moto_endpoint)
    name = f"orders-{uuid.uuid4().hex[:8]}"
    arn = await _create(client, name)
    await _put(client, name, "v1")
    async with aiodax.Cache() as cache:
        yield _wrap(cache, client), name, arn


@pytest.mark.parametrize("read_by", ["name", "arn"])
@pytest.mark.parametrize(
    "write",
    ["put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"],
)
async def test_a_write_by_one_spelling_reaches_items_cached_under_the_other(
    named: tuple[aiodax.CachedClient, str, str], read_by: str, write: str
) -> None:
    cached, name, arn = named
    read_as, write_as = (name, arn) if read_by == "name" else (arn, name)
    assert _value(await cached.get_item(TableName=read_as, Key=Key)) == "v1"
    new_item = {**Key, "v": {"S": "v2"}}
    if write == "put_item":
        await cached.put_item(TableName=write_as, Item=new_item)
    elif write == "update_item":
        await cached.update_item(
            TableName=write_as,
            Key=Key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "v2"}},
        )
    elif write == "delete_item":
        await cached.delete_item(TableName=write_as, Key=Key)
    elif write == "batch_write_item":
        await cached.batch_write_item(RequestItems={write_as: [{"PutRequest": {"Item": new_item}}]})
    else:
        await cached.transact_write_items(
            TransactItems=[{"Put": {"TableName": write_as, "Item": new_item}}]
        )
    expected = None if write == "delete_item" else "v2"
    assert _value(await cached.get_item(TableName=read_as, Key=Key)) == expected


@pytest.mark.parametrize("read_by", ["name", "arn"])
async def test_a_write_by_one_spelling_drops_query_pages_cached_under_the_other(
    named: tuple[aiodax.CachedClient, str, str], read_by: str
) -> None:
    cached, name, arn = named
    read_as, write_as = (name, arn) if read_by == "name" else (arn, name)
    query = {
        "TableName": read_as,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": Key["pk"]},
    }
    assert (await cached.query(**query))["Count"] == 1
    await cached.delete_item(TableName=write_as, Key=Key)
    assert (await cached.query(**query))["Count"] == 0


async def test_a_batch_by_arn_is_answered_under_the_arn(
    named: tuple[aiodax.CachedClient, str, str],
) -> None:
    cached, name, arn = named
    for _ in range(2):  # a miss, then a batch of hits
        answer = await cached.batch_get_item(
            RequestItems={arn: {"Keys": [Key]}, name: {"Keys": [Key]}},
            ReturnConsumedCapacity="TOTAL",
        )
        assert set(answer["Responses"]) == {arn, name}
        assert {c["TableName"] for c in answer["ConsumedCapacity"]} == {arn, name}


async def test_invalidate_by_name_reaches_every_client_and_spelling(
    moto_endpoint: str, open_client: OpenClient
) -> None:
    east = await open_client(moto_endpoint, "us-east-1")
    west = await open_client(moto_endpoint, "eu-west-1")
    name = f"orders-{uuid.uuid4().hex[:8]}"
    arns = [await _create(client, name) for client in (east, west)]
    for client in (east, west):
        await _put(client, name, "v1")
    async with aiodax.Cache() as cache:
        cached_east, cached_west = _wrap(cache, east), _wrap(cache, west)
        reads = [(cached_east, name), (cached_east, arns[0]), (cached_west, name)]
        for cached, spelled in reads:
            await cached.get_item(TableName=spelled, Key=Key)
        calls = east.calls["get_item"] + west.calls["get_item"]
        cache.invalidate(name, Key)
        for cached, spelled in reads:
            await cached.get_item(TableName=spelled, Key=Key)
        assert east.calls["get_item"] + west.calls["get_item"] == 2 * calls
        with pytest.raises(TypeError, match="non-empty string"):
            cache.invalidate("", Key)
        with pytest.raises(TypeError, match="non-empty string"):
            cache.invalidate_table(None)  # type: ignore[arg-type]

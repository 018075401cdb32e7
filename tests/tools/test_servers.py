"""The test-server fixtures work against every backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests import servers

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from tests.servers import MakeTable


def test_endpoint_is_loopback(endpoint: str) -> None:
    assert urlsplit(endpoint).hostname == "127.0.0.1"


async def test_put_then_get(raw_client: DynamoDBClient, make_table: MakeTable) -> None:
    table = await make_table(hash_key=("pk", "S"), range_key=("sk", "N"))
    item = {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "hello"}}

    await raw_client.put_item(TableName=table, Item=item)
    got = await raw_client.get_item(
        TableName=table, Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, ConsistentRead=True
    )

    assert got["Item"] == item


async def test_transact_get_items(raw_client: DynamoDBClient, make_table: MakeTable) -> None:
    table = await make_table()
    for key in ("x", "y"):
        await raw_client.put_item(TableName=table, Item={"pk": {"S": key}, "n": {"N": "7"}})

    result = await raw_client.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": table, "Key": {"pk": {"S": key}}}} for key in ("y", "x")
        ]
    )

    assert [r["Item"] for r in result["Responses"]] == [
        {"pk": {"S": "y"}, "n": {"N": "7"}},
        {"pk": {"S": "x"}, "n": {"N": "7"}},
    ]


async def test_make_table_indexes(raw_client: DynamoDBClient, make_table: MakeTable) -> None:
    table = await make_table(
        hash_key=("pk", "S"),
        range_key=("sk", "S"),
        gsis=[("by_g", ("g", "S"), ("sk", "S"))],
        lsis=[("by_l", ("pk", "S"), ("l", "N"))],
    )
    await raw_client.put_item(
        TableName=table,
        Item={"pk": {"S": "p"}, "sk": {"S": "s"}, "g": {"S": "G"}, "l": {"N": "3"}},
    )

    by_gsi = await raw_client.query(
        TableName=table,
        IndexName="by_g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "G"}},
    )
    by_lsi = await raw_client.query(
        TableName=table,
        IndexName="by_l",
        KeyConditionExpression="pk = :p AND l = :l",
        ExpressionAttributeValues={":p": {"S": "p"}, ":l": {"N": "3"}},
    )

    assert [i["sk"] for i in by_gsi["Items"]] == [{"S": "s"}]
    assert [i["g"] for i in by_lsi["Items"]] == [{"S": "G"}]


async def test_make_table_rejects_lsi_with_other_hash_key(make_table: MakeTable) -> None:
    with pytest.raises(ValueError, match="hash key"):
        await make_table(range_key=("sk", "S"), lsis=[("bad", ("other", "S"), ("sk", "S"))])


def test_dynamodb_local_missing_jar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(servers.DYNAMODB_LOCAL_DIR_ENV, str(tmp_path))

    server = servers.dynamodb_local()
    with pytest.raises(servers.ServerUnavailable, match=r"DynamoDBLocal\.jar"), server:
        pass


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_require_fails_only_under_ci(
    ci: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="no server"):
        servers.require("no server")


async def test_moto_server_s_handler_is_the_one_aiodax_installs(moto_endpoint: str) -> None:
    # aiodax.testing.servers.moto_server swaps ThreadedMotoServer._server's
    # RequestHandlerClass for one that leaves out werkzeug's Server header (moto
    # sends its own: two are what aiohttp's strict parser refuses).
    async with (
        aiohttp.ClientSession() as session,
        session.post(moto_endpoint, headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"}) as r,
    ):
        await r.read()
        assert len(r.headers.getall("Server", [])) == 1, (
            "moto's server sent two Server headers: setting ThreadedMotoServer._server."
            "RequestHandlerClass no longer takes effect (aiodax.testing.servers.moto_server)"
        )
        assert "Date" in r.headers

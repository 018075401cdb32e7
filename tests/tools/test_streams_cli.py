"""``aiodax streams``: its arguments, and a table without a stream (the command's
following, killing and restarting are in ``tests/distributed/test_streams.py``)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from aiodax import cli as command
from aiodax.testing.servers import string_key_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redis", "redis://127.0.0.1:1", "--namespace", "n"], "--table"),
        (["--table", "t", "--namespace", "n"], "--redis"),
        (["--table", "t", "--redis", "http://x", "--namespace", "n"], "url must start with"),
        (["--table", "t", "--redis", "redis://127.0.0.1:1", "--namespace", "a b"], "namespace"),
        (
            [
                "--table",
                "t",
                "--redis",
                "redis://127.0.0.1:1",
                "--namespace",
                "n",
                "--poll-interval",
                "0",
            ],
            "must be in",
        ),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        command.main(["streams", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


async def test_a_table_without_a_stream_exits_1(
    endpoint: str, raw_client: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    table = f"aiodax-nostream-{uuid.uuid4().hex[:8]}"
    await raw_client.create_table(**string_key_table(table))
    try:
        status = await command.main_async(
            [
                "streams",
                "--table",
                table,
                "--redis",
                "redis://127.0.0.1:1",  # never reached: the stream is checked first
                "--namespace",
                "n",
                "--endpoint-url",
                endpoint,
                "--region",
                "us-east-1",
            ]
        )
    finally:
        await raw_client.delete_table(TableName=table)
    assert status == 1
    assert f"table {table!r} has no enabled DynamoDB Stream" in capsys.readouterr().err

"""The Redis tier over TLS (``rediss://``), with credentials in the URL: a private
``redis-server`` serving TLS on a port of its own, with a certificate from a test CA."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
import redis.asyncio as redis
import trustme

import aiodax
from aiodax.testing import InstrumentedClient, RedisServer
from tests.support import until

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEY = {"pk": {"S": "a"}}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TlsRedis:
    def __init__(self, server: RedisServer, port: int, ca: Path) -> None:
        self.server, self.port, self.ca = server, port, ca

    def url(self, *, ca: Path | None = None) -> str:
        query = "" if ca is None else f"?ssl_ca_certs={ca}"
        return f"rediss://app:secret@127.0.0.1:{self.port}/0{query}"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    authority.cert_pem.write_to_path(str(ca))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    port = _free_port()
    args = [
        *("--tls-port", str(port)),
        *("--tls-cert-file", str(cert)),
        *("--tls-key-file", str(key)),
        *("--tls-ca-cert-file", str(ca)),
        *("--tls-auth-clients", "no"),
    ]
    with RedisServer(args=args) as server:
        yield TlsRedis(server, port, ca)


def item(value: str) -> dict[str, Any]:
    return {**KEY, "v": {"S": value}}


async def value_of(client: aiodax.CachedClient, table: str) -> Any:
    return (await client.get_item(TableName=table, Key=KEY))["Item"]["v"]["S"]


async def test_the_bus_and_the_shared_cache_work_over_tls_with_credentials_in_the_url(
    tls_redis: TlsRedis, raw_client: DynamoDBClient, table: str
) -> None:
    plain = redis.Redis.from_url(tls_redis.server.url)
    await cast(Any, plain).execute_command(
        "ACL", "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all"
    )
    await plain.aclose()
    dynamodb = InstrumentedClient(raw_client)
    tier = aiodax.RedisTier(tls_redis.url(ca=tls_redis.ca), namespace="tls", timeout=1.0)
    await raw_client.put_item(TableName=table, Item=item("old"))
    async with aiodax.Cache(redis=tier) as first, aiodax.Cache(redis=tier) as second:
        a = first.wrap(cast("DynamoDBClient", dynamodb))
        b = second.wrap(cast("DynamoDBClient", dynamodb))
        assert [c.stats()["Tier"]["BusState"] for c in (first, second)] == ["connected"] * 2
        assert await value_of(a, table) == "old"
        assert await value_of(b, table) == "old"  # the first one's copy, over TLS
        assert dynamodb.calls["get_item"] == 1
        assert second.stats()["Tier"]["L2Hits"] == 1
        await a.put_item(TableName=table, Item=item("new"))
        await until(lambda: second.stats()["Tier"]["BusMessagesIn"] == 1)
        assert await value_of(b, table) == "new"
    assert "secret" not in repr(tier)


async def test_a_server_certificate_the_client_cannot_verify_fails_no_read(
    tls_redis: TlsRedis, raw_client: DynamoDBClient, table: str
) -> None:
    # No CA given: the system's CAs do not know the test CA, so TLS fails, and the
    # tier is degraded from the start; DynamoDB still answers.
    tier = aiodax.RedisTier(tls_redis.url(), namespace="tls", liveness=0.3)
    await raw_client.put_item(TableName=table, Item=item("v"))
    async with aiodax.Cache(redis=tier) as cache:
        assert cache.stats()["Tier"]["BusState"] == "degraded"
        assert await value_of(cache.wrap(raw_client), table) == "v"

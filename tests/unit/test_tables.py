"""Table tokens, bare names and sites: which tables are one, and which are two."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from aiodax._engine.sites import Sites, site_identity
from aiodax._rules.tables import bare_name, spelled_name, table_token

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"


class FakeBackend(SimpleNamespace):
    """What ``site_identity`` reads of a client (a subclass: it can be weakly referenced)."""


def backend(
    endpoint: str = "http://127.0.0.1:1", region: str = "us-east-1", credentials: Any = None
) -> Any:
    return FakeBackend(
        meta=SimpleNamespace(endpoint_url=endpoint, region_name=region),
        _request_signer=SimpleNamespace(_credentials=credentials),
    )


def test_the_first_site_s_tokens_are_the_names_themselves() -> None:
    assert table_token("orders", 0) == "orders"
    assert table_token("orders", 2) == (2, "orders")
    assert spelled_name((2, ARN)) == ARN
    assert spelled_name("orders") == "orders"


@pytest.mark.parametrize(
    ("table", "bare"),
    [
        ("orders", "orders"),
        (ARN, "orders"),
        ((3, ARN), "orders"),
        ("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/my.table-1", "my.table-1"),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/by-user", "orders"),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket"),
        ("arn:", "arn:"),
    ],
)
def test_bare_names_of_names_arns_and_tokens(table: Any, bare: str) -> None:
    assert bare_name(table) == bare


def test_clients_differ_by_endpoint_region_and_access_key() -> None:
    key = Credentials("AKIA1", "secret")
    same = site_identity(backend(credentials=key))
    assert site_identity(backend(credentials=Credentials("AKIA1", "other secret"))) == same
    assert site_identity(backend(region="eu-west-1", credentials=key)) != same
    assert site_identity(backend(endpoint="http://127.0.0.1:2", credentials=key)) != same
    assert site_identity(backend(credentials=Credentials("AKIA2", "secret"))) != same


def test_refreshing_credentials_are_told_apart_by_the_object_not_its_current_key() -> None:
    def refreshable() -> RefreshableCredentials:
        expiry = datetime(2999, 1, 1, tzinfo=UTC)
        return RefreshableCredentials("AKIA1", "secret", "token", expiry, dict, "test")

    shared = refreshable()
    assert site_identity(backend(credentials=shared)) == site_identity(backend(credentials=shared))
    assert site_identity(backend(credentials=shared)) != site_identity(
        backend(credentials=refreshable())
    )


def test_unsigned_clients_and_backends_without_a_signer() -> None:
    assert site_identity(backend(credentials=None)) == site_identity(backend(credentials=None))
    bare_backend: Any = SimpleNamespace(meta=backend().meta)
    other: Any = SimpleNamespace(meta=backend().meta)
    assert site_identity(bare_backend) != site_identity(other)


def test_sites_are_numbered_in_the_order_met_and_remembered() -> None:
    sites = Sites()
    east = backend(credentials=Credentials("AKIA1", "s"))
    west = backend(region="eu-west-1", credentials=Credentials("AKIA1", "s"))
    assert [sites.site_of(b) for b in (east, west, east)] == [0, 1, 0]
    assert sites.site_of(backend(credentials=Credentials("AKIA1", "s"))) == 0
    met = []
    for _ in range(200):  # a client per request: the memo stays bounded
        client = backend(credentials=Credentials("AKIA1", "s"))
        met.append(weakref.ref(client))
        assert sites.site_of(client) == 0
    del client
    gc.collect()
    assert sum(ref() is not None for ref in met) <= 64


def test_a_drop_reaches_every_noted_token_of_the_bare_name() -> None:
    sites = Sites()
    assert sites.aliases("orders") == ("orders",)
    for token in ("orders", (1, "orders"), (1, ARN), "users"):
        sites.note(token)
    assert set(sites.aliases(ARN)) == {ARN, "orders", (1, "orders"), (1, ARN)}
    assert set(sites.aliases((1, "orders"))) == {"orders", (1, "orders"), (1, ARN)}
    assert sites.aliases("users") == ("users",)

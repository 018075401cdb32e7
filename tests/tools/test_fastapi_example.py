"""``examples/fastapi_app.py``, driven in process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aioboto3
import httpx
import pytest
from fastapi import FastAPI

from tests.servers import MakeTable

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiodax_example_fastapi_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fastapi_app = _load_example()


@pytest.fixture
async def orders(make_table: MakeTable) -> str:
    return await make_table(("pk", "S"), ("sk", "S"))


@contextlib.asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # The lifespan as a server runs it: the resource and cache close after the test.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders.test"
        ) as http,
    ):
        yield http


@pytest.fixture
async def http(endpoint: str, orders: str) -> AsyncIterator[httpx.AsyncClient]:
    async with _serve(fastapi_app.create_app(endpoint_url=endpoint, table=orders)) as client:
        yield client


async def _stats(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/stats")
    assert response.status_code == 200
    stats: dict[str, Any] = response.json()
    return stats


async def test_put_then_get_is_served_from_the_cache(http: httpx.AsyncClient) -> None:
    put = await http.put("/orders/alice/o1", json={"total": 42.5, "quantity": 3})
    assert put.status_code == 200
    expected = {"pk": "alice", "sk": "o1", "total": 42.5, "quantity": 3}
    assert put.json() == expected

    first = await http.get("/orders/alice/o1")
    assert first.status_code == 200
    assert first.json() == expected
    before = await _stats(http)

    second = await http.get("/orders/alice/o1")
    assert second.json() == expected
    after = await _stats(http)
    assert after["ItemCacheHits"] == before["ItemCacheHits"] + 1
    assert after["BackendRequests"].get("get_item", 0) == before["BackendRequests"].get(
        "get_item", 0
    )


async def test_list_reflects_a_put_at_once(http: httpx.AsyncClient) -> None:
    await http.put("/orders/bob/o1", json={"total": 1})
    listed = await http.get("/orders/bob")
    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    assert (await http.get("/orders/bob")).json()["count"] == 1  # a query cache hit
    assert (await _stats(http))["QueryCacheHits"] >= 1

    await http.put("/orders/bob/o2", json={"total": 2})
    listed = await http.get("/orders/bob")
    assert listed.json()["count"] == 2
    assert [item["sk"] for item in listed.json()["items"]] == ["o1", "o2"]


async def test_missing_order_is_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/orders/carol/nope")).status_code == 404
    assert (await http.get("/orders/carol/nope")).status_code == 404  # negatively cached


async def test_bad_body_is_422(http: httpx.AsyncClient) -> None:
    assert (await http.put("/orders/dave/o1", content=b"[1, 2]")).status_code == 422
    assert (await http.put("/orders/dave/o1", content=b"{not json")).status_code == 422


async def test_concurrent_gets_of_a_missing_order_coalesce(endpoint: str, orders: str) -> None:
    # The first GetItem is held at the HTTP layer until every other request joined it,
    # so that the test does not depend on how fast the server answers.
    requests = 10
    session = aioboto3.Session()
    joined = asyncio.Event()

    async def hold(**_: Any) -> None:
        async with asyncio.timeout(30):
            await joined.wait()

    session.events.register("before-send.dynamodb.GetItem", hold)
    app = fastapi_app.create_app(endpoint_url=endpoint, table=orders, session=session)
    async with _serve(app) as http:
        gets = [asyncio.ensure_future(http.get("/orders/erin/nope")) for _ in range(requests)]
        async with asyncio.timeout(30):
            while (await _stats(http))["CoalescedRequests"] < requests - 1:
                await asyncio.sleep(0.01)
        joined.set()
        responses = await asyncio.gather(*gets)
        assert {response.status_code for response in responses} == {404}
        stats = await _stats(http)
        assert stats["CoalescedRequests"] == requests - 1
        assert stats["BackendRequests"]["get_item"] == 1


async def test_uncached_app_serves_the_same_routes(endpoint: str, orders: str) -> None:
    app = fastapi_app.create_app(endpoint_url=endpoint, table=orders, cached=False)
    async with _serve(app) as http:
        await http.put("/orders/frank/o1", json={"total": 7})
        assert (await http.get("/orders/frank/o1")).json()["total"] == 7
        assert (await http.get("/orders/frank")).json()["count"] == 1
        assert (await http.get("/orders/frank/nope")).status_code == 404
        assert (await http.get("/stats")).status_code == 404


async def test_the_create_table_command_makes_the_apps_table(
    endpoint: str, raw_client: Any
) -> None:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "create-table",
        "--endpoint-url",
        endpoint,
        "--table",
        name,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await done.communicate()
    assert done.returncode == 0, err.decode()
    assert name in out.decode()
    try:
        described = await raw_client.describe_table(TableName=name)
        schema = {
            entry["AttributeName"]: entry["KeyType"] for entry in described["Table"]["KeySchema"]
        }
        assert schema == {"pk": "HASH", "sk": "RANGE"}
    finally:
        await raw_client.delete_table(TableName=name)

"""A Starlette app with aiodax: the typed lifespan state, no dependency injection.

    python examples/starlette_app.py

serves a few requests through the app on uvicorn, on a free port of 127.0.0.1,
against an embedded moto server.  ``aiodax.contrib.fastapi.lifespan`` opens one
``Cache`` and one cached resource for the server's life and hands them to every
request in Starlette's lifespan state; ``table_for(request, name)`` is the
cached table as the request uses it.
"""

from __future__ import annotations

import asyncio
import socket

import aioboto3
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aiodax.contrib import fastapi as aiodax_fastapi
from aiodax.testing.servers import client_kwargs, moto_server, string_key_table

TABLE = "users"


def create_app(endpoint_url: str) -> Starlette:
    async def get_user(request: Request) -> JSONResponse:
        users = await aiodax_fastapi.table_for(request, TABLE, honour_no_cache=True)
        found = await users.get_item(Key={"id": request.path_params["id"]})
        if "Item" not in found:
            return JSONResponse({"detail": "no such user"}, status_code=404)
        return JSONResponse(found["Item"])

    async def put_user(request: Request) -> JSONResponse:
        users = await aiodax_fastapi.table_for(request, TABLE)
        body = await request.json()
        item = {"id": request.path_params["id"], "name": str(body["name"])}
        await users.put_item(Item=item)
        return JSONResponse(item)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(aiodax_fastapi.cache(request).stats()["Tables"])

    return Starlette(
        routes=[
            Route("/users/{id}", get_user, methods=["GET"]),
            Route("/users/{id}", put_user, methods=["PUT"]),
            Route("/stats", stats),
        ],
        lifespan=aiodax_fastapi.lifespan(tables=[TABLE], **client_kwargs(endpoint_url)),
    )


async def create_table(endpoint_url: str) -> None:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(endpoint_url)) as client:
        await client.create_table(**string_key_table(TABLE, "id"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def demo(endpoint_url: str) -> None:
    await create_table(endpoint_url)
    port = free_port()
    config = uvicorn.Config(
        create_app(endpoint_url), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:  # noqa: ASYNC110 (uvicorn.Server has no event for it)
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            print("PUT /users/ada:", (await http.put("/users/ada", json={"name": "Ada"})).json())
            for _ in range(3):
                print("GET /users/ada:", (await http.get("/users/ada")).json())
            print("GET /users/nobody:", (await http.get("/users/nobody")).status_code)
            print("per-table stats:", (await http.get("/stats")).json())
    finally:
        server.should_exit = True
        await serving


if __name__ == "__main__":
    with moto_server() as url:
        asyncio.run(demo(url))

"""aiodax's pytest plugin: servers on loopback and cached clients for your own tests.

Installed with aiodax (entry point ``pytest11``), so its fixtures are available in
any project that has aiodax, pytest and pytest-asyncio installed:

- ``aiodax_moto_endpoint`` (session): moto's server on 127.0.0.1, its URL
  (``pip install 'aiodax[demo]'``; skipped when moto is missing);
- ``aiodax_dynamodb_local_endpoint`` (session): AWS's DynamoDB Local, its URL
  (skipped when Java or the jar is missing, see ``aiodax.testing.servers``);
- ``aiodax_cache``: a fresh ``aiodax.Cache``, closed after the test;
- ``aiodax_client``: an aiobotocore DynamoDB client of the moto server, wrapped by
  ``aiodax_cache``;
- ``aiodax_resource``: the same for an aioboto3 resource.

Every name starts with ``aiodax_`` so as never to clash with a project's own.
moto is imported only when a moto fixture is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

import aiodax
from aiodax.testing import servers

__all__ = [
    "aiodax_cache",
    "aiodax_client",
    "aiodax_dynamodb_local_endpoint",
    "aiodax_moto_endpoint",
    "aiodax_resource",
]


def _server(factory: Any) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url: str = stack.enter_context(factory())
        except servers.ServerUnavailable as exc:
            pytest.skip(exc.reason)
        yield url


@pytest.fixture(scope="session")
def aiodax_moto_endpoint() -> Iterator[str]:
    """The URL of moto's server, run in a thread on 127.0.0.1 for the session."""
    yield from _server(servers.moto_server)


@pytest.fixture(scope="session")
def aiodax_dynamodb_local_endpoint() -> Iterator[str]:
    """The URL of DynamoDB Local (in memory) on 127.0.0.1; skipped without Java or jar."""
    yield from _server(servers.dynamodb_local)


@pytest_asyncio.fixture
async def aiodax_cache() -> AsyncIterator[aiodax.Cache]:
    """A fresh ``aiodax.Cache`` with default options, closed after the test."""
    async with aiodax.Cache() as cache:
        yield cache


@pytest_asyncio.fixture
async def aiodax_client(
    aiodax_moto_endpoint: str, aiodax_cache: aiodax.Cache
) -> AsyncIterator[aiodax.CachedClient]:
    """An aiobotocore DynamoDB client of the moto server, wrapped by ``aiodax_cache``."""
    import aioboto3

    session = aioboto3.Session()
    kwargs = servers.client_kwargs(aiodax_moto_endpoint)
    async with session.client("dynamodb", **kwargs) as client:
        yield aiodax_cache.wrap(client)


@pytest_asyncio.fixture
async def aiodax_resource(
    aiodax_moto_endpoint: str, aiodax_cache: aiodax.Cache
) -> AsyncIterator[aiodax.CachedResource]:
    """An aioboto3 DynamoDB resource of the moto server, wrapped by ``aiodax_cache``."""
    import aioboto3

    session = aioboto3.Session()
    kwargs = servers.client_kwargs(aiodax_moto_endpoint)
    async with session.resource("dynamodb", **kwargs) as resource:
        yield aiodax_cache.wrap(resource)

"""``aiodax.resource(session)`` and ``aiodax.client(session)``: one ``async with``.

They mirror ``session.resource("dynamodb", **kwargs)`` and
``session.client("dynamodb", **kwargs)`` and yield the cached flavour, so that an
application swaps one line.  On exit the aioboto3 resource or client is closed,
and so is the ``Cache`` when they made it themselves; a ``Cache`` passed in belongs
to the caller (it usually outlives many clients) and stays open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._cache import Cache
from ._facades import CachedClient, CachedResource

if TYPE_CHECKING:
    from aioboto3 import Session


@contextlib.asynccontextmanager
async def resource(
    session: Session, cache: Cache | None = None, **kwargs: Any
) -> AsyncIterator[CachedResource]:
    """``async with aiodax.resource(session, **kwargs) as dynamodb``: a cached
    ``session.resource("dynamodb", **kwargs)`` (``endpoint_url``, ``region_name``,
    ``config``…), cached by ``cache`` or by a ``Cache()`` of its own."""
    async with contextlib.AsyncExitStack() as stack:
        ddb = await stack.enter_async_context(session.resource("dynamodb", **kwargs))
        yield _own(cache, stack).wrap(ddb)


@contextlib.asynccontextmanager
async def client(
    session: Session, cache: Cache | None = None, **kwargs: Any
) -> AsyncIterator[CachedClient]:
    """``async with aiodax.client(session, **kwargs) as client``: a cached
    ``session.client("dynamodb", **kwargs)``, cached by ``cache`` or by a
    ``Cache()`` of its own."""
    async with contextlib.AsyncExitStack() as stack:
        ddb = await stack.enter_async_context(session.client("dynamodb", **kwargs))
        yield _own(cache, stack).wrap(ddb)


def _own(cache: Cache | None, stack: contextlib.AsyncExitStack) -> Cache:
    """``cache``, or a new one closed by ``stack``, before the client it caches.

    Closing the cache first cancels its loads in flight while their client still
    works, instead of failing them on a closed connection pool.
    """
    if cache is not None:
        return cache
    own = Cache()
    stack.push_async_callback(own.aclose)
    return own

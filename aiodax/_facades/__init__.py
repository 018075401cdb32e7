"""The facades: the aiobotocore client's API and aioboto3's resource API, over the engine.

``wrap`` tells what ``Cache.wrap`` was handed (with ``_backend``'s predicates) and
builds the facade for it, or refuses with a ``WrapError`` that says what to wrap
instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._backend import is_dynamodb_backend, is_dynamodb_resource, is_dynamodb_table, speaks_python
from .._engine import Engine
from .._errors import WrapError
from .client import CachedClient
from .resource import CachedResource, CachedTable

if TYPE_CHECKING:
    from .._cache import Cache

__all__ = ["CachedClient", "CachedResource", "CachedTable", "wrap"]


def wrap(cache: Cache, engine: Engine, client: Any) -> CachedClient | CachedResource:
    """The facade of ``client`` over ``engine``; see ``Cache.wrap``."""
    if isinstance(client, CachedClient | CachedResource | CachedTable):
        raise WrapError(f"this {type(client).__name__} is already cached; wrap what it wraps")
    if is_dynamodb_backend(client):
        if speaks_python(client):
            raise WrapError(
                "this client belongs to a DynamoDB resource and speaks Python values "
                "(resource.meta.client): wrap the resource itself, or a plain "
                "session.client('dynamodb')"
            )
        return CachedClient(cache, engine, client)
    if is_dynamodb_resource(client):
        return CachedResource(cache, engine, client)
    if is_dynamodb_table(client):
        raise WrapError(
            "Cache.wrap expects the DynamoDB service resource, not one of its tables: "
            "wrap session.resource('dynamodb') and await its Table(name)"
        )
    raise WrapError(
        "Cache.wrap expects an aiobotocore DynamoDB client (session.client('dynamodb')) "
        f"or service resource (session.resource('dynamodb')), not {type(client).__name__}"
    )

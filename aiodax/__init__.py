"""aiodax: DynamoDB Accelerator's caching, inside your asyncio process."""

from ._cache import Cache
from ._config import INHERIT, TableConfig
from ._errors import (
    AiodaxError,
    CacheClosedError,
    ConfigurationError,
    ConfigurationTypeError,
    MissingExtraError,
    StreamNotEnabledError,
    WrapError,
)
from ._facades import CachedClient, CachedResource, CachedTable
from ._observe import BackendCall, CoalescedWait, Observer
from ._rules.policy import RetryPolicy
from ._sessions import client, resource
from ._tiers import Fetch, Invalidation, InvalidationBus, Load, Loaded, SharedTier, TierHost
from ._tiers.redis import RedisTier
from .streams import StreamsInvalidator

__version__ = "0.1.0"

__all__ = [
    # the cache and what it wraps clients and resources into
    "Cache",
    "CachedClient",
    "CachedResource",
    "CachedTable",
    # session.client("dynamodb") / session.resource("dynamodb"), cached
    "client",
    "resource",
    # configuration
    "INHERIT",
    "TableConfig",
    "RetryPolicy",
    # the Redis tier between processes (Cache(redis=...), extra aiodax[redis])
    "RedisTier",
    # writes that bypass the cache: DynamoDB Streams → the Redis tier's bus
    "StreamsInvalidator",
    # telemetry: what Cache.add_observer's observers are told (aiodax.contrib uses it)
    "Observer",
    "BackendCall",
    "CoalescedWait",
    # extension points: what a cross-process tier implements
    "Fetch",
    "Invalidation",
    "InvalidationBus",
    "Load",
    "Loaded",
    "SharedTier",
    "TierHost",
    # errors
    "AiodaxError",
    "CacheClosedError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "MissingExtraError",
    "StreamNotEnabledError",
    "WrapError",
]

# Show public names as aiodax.X in reprs and tracebacks, not aiodax._module.X.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = "aiodax"
del _name, _obj

"""``RedisTier``: the frozen, validated options of the Redis tier.

It is importable without the ``redis`` extra: a cache configured with it builds the
tier (``aiodax._tiers.redis.build``), and only that needs the client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from ..._errors import ConfigurationError, ConfigurationTypeError

#: What a namespace may be spelled with: it sits inside every key's hash tag, so no
#: braces, and no separators that could forge another namespace's keys.
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SCHEMES: Final = ("redis", "rediss", "unix")


@dataclass(frozen=True, slots=True)
class RedisTier:
    """The Redis tier between the processes of one namespace (``Cache(redis=...)``).

    :param url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
        or ``unix://path``.
    :param namespace: keeps apps and environments apart on one Redis: every key the
        tier writes starts with ``aiodax:v1:{namespace}:``.  Set one per app, account
        and environment.
    :param shared_l2: whether misses ask Redis for another process's copy (and
        take a lease so that one process reads each key) before DynamoDB.
    :param max_value_bytes: the largest item or page kept in Redis (bigger ones
        stay in each process's own cache).
    :param lease_time: seconds a process holding a miss's lease has to fill it
        before another process may read DynamoDB instead.
    :param degraded_ttl: seconds each process keeps any entry while the tier
        cannot vouch for it (Redis unreachable or the bus silent).
    :param timeout: seconds a Redis command on a read's or a write's way may take
        before it is given up (the read goes to DynamoDB; the write's invalidation
        is queued).
    :param liveness: seconds of silence after which the bus counts Redis as gone.
    :param outbox_limit: invalidations queued while Redis is unreachable; past it
        they are merged into whole-table drops.
    :param stream_length: messages the bus keeps in Redis, about: a process away
        for longer than the stream covers drops its whole cache when it returns.
    :param stream_bounds: table name → seconds: the staleness bound this process
        keeps for writes that bypass aiodax, with ``aiodax streams`` (a
        ``StreamsInvalidator``) following the table.  While the invalidator's
        watermark of the table is older than its bound (or there is none), the
        table's reads go to DynamoDB and nothing of it is kept (``stats()["Tier"]``
        says so); without a bound, such writes are served stale up to the TTL.
    :param cluster: ``url`` names a node of a Redis Cluster (ElastiCache's cluster
        mode, say): the tier talks to the cluster, and follows its failovers.  A
        namespace's keys share one hash slot, so one master carries it.
    """

    url: str
    namespace: str = "default"
    shared_l2: bool = True
    max_value_bytes: int = 64 * 1024
    lease_time: float = 1.0
    degraded_ttl: float = 2.0
    timeout: float = 0.05
    liveness: float = 1.0
    outbox_limit: int = 10_000
    stream_length: int = 100_000
    cluster: bool = False
    stream_bounds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise ConfigurationTypeError(f"url must be a string, not {type(self.url).__name__}")
        scheme = urlsplit(self.url).scheme
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"url must start with redis://, rediss:// or unix://, got {self.url!r}"
            )
        if not isinstance(self.namespace, str):
            raise ConfigurationTypeError(
                f"namespace must be a string, not {type(self.namespace).__name__}"
            )
        if not _NAMESPACE.fullmatch(self.namespace):
            raise ConfigurationError(
                f"namespace must be 1-64 letters, digits, '_', '.' or '-', got {self.namespace!r}"
            )
        for name in ("shared_l2", "cluster"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationTypeError(f"{name} must be True or False")
        if self.cluster and scheme == "unix":
            raise ConfigurationError("a Redis Cluster is reached over TCP: redis:// or rediss://")
        for name in ("max_value_bytes", "outbox_limit", "stream_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationTypeError(f"{name} must be an int, not {type(value).__name__}")
            if value < 1:
                raise ConfigurationError(f"{name} must be >= 1, got {value!r}")
        for name in ("lease_time", "degraded_ttl", "timeout", "liveness"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationTypeError(
                    f"{name} must be a number of seconds, not {type(value).__name__}"
                )
            if not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"{name} must be a finite number of seconds > 0")

        if not isinstance(self.stream_bounds, Mapping):
            raise ConfigurationTypeError("stream_bounds must map table names to seconds")
        for table, bound in self.stream_bounds.items():
            if not isinstance(table, str) or not table:
                raise ConfigurationTypeError("stream_bounds must map table names to seconds")
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise ConfigurationTypeError(
                    f"stream_bounds[{table!r}] must be a number of seconds"
                )
            if not math.isfinite(bound) or bound <= 0:
                raise ConfigurationError(f"stream_bounds[{table!r}] must be a finite number > 0")
        # Frozen like the rest: a caller's dict changed later changes nothing here.
        object.__setattr__(self, "stream_bounds", MappingProxyType(dict(self.stream_bounds)))

    def __repr__(self) -> str:
        # The URL may carry a password: show where it points, never how it logs in.
        parts = urlsplit(self.url)
        where = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
        if parts.port:
            where = f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"
        cluster = ", cluster=True" if self.cluster else ""
        return f"RedisTier({where!r}, namespace={self.namespace!r}{cluster})"

"""The seams a cross-process tier plugs into: an invalidation bus and a shared miss path.

Both are protocols with no-op defaults (``_tiers.local``), which are a single
process's behaviour.  The engine calls them at exactly two places:

- the **invalidator** (``_engine.invalidation``) hands every drop and every
  acknowledged write to ``InvalidationBus.publish``, and applies the bus's remote
  invalidations locally without publishing them again;
- the **loader** (``_engine.loader``) sends every miss through
  ``SharedTier.load``, which may answer it from a shared cache or wait for another
  process's identical request instead of calling DynamoDB.

A tier's background work (a listener, an outbox) starts with ``start`` when the
cache is entered and stops with ``aclose`` when it closes; ``start`` hands it the
``TierHost``, what the engine lets a tier do to this process's cache.  Neither seam
may fail a read or a write: a tier that loses its server answers from DynamoDB and
drops what it can no longer vouch for.  ``stats`` add to ``Cache.stats()["Tier"]``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._rules.wire import ItemKey


@dataclass(frozen=True, slots=True)
class Invalidation:
    """What another process must drop: one item, a whole table, or everything.

    ``table=None`` means every table; ``key=None`` every item and page of
    ``table``.  An item's invalidation also drops the Query pages a write to it
    makes stale, by the receiver's own ``query_invalidation``.
    """

    table: str | None
    key: ItemKey | None = None

    def __post_init__(self) -> None:
        if self.table is None and self.key is not None:
            raise ValueError("an item invalidation names its table")


@dataclass(frozen=True, slots=True)
class Load:
    """One miss on its way to DynamoDB: the read operation and the request it sends.

    ``site`` names the DynamoDB the request reaches (endpoint, region,
    credentials), the same in every process; ``table`` is the bare name of the
    table it reads (``None`` for a BatchGetItem, which may read several), ``key``
    the item a GetItem reads.  A shared tier keys what it shares by all of them.

    ``ttl`` is how long this process keeps the answer, in seconds counted from
    DynamoDB's read (``math.inf``: no limit; ``0``: not kept); ``negative_ttl``
    the same for a GetItem that finds no item.  A shared tier keeps a copy no
    longer, and shares nothing this process would not keep.

    ``fenced``: the load follows a drop of what it reads (a fence, see
    ``_engine.guards``), and its answer must reflect every write acknowledged
    before that drop.  A shared copy answers it only if DynamoDB read it with
    ``ConsistentRead`` after the drop reached the tier.  Every request that carries
    ``ConsistentRead=True`` is fenced, and so is a secondary-index page inside a
    fence (read eventually consistent, hence with a ``ttl`` that ends with the
    fence).  ``refresh``: a reload of an entry still served (refresh-ahead,
    stale-while-revalidate), which a copy read before the load began would not
    refresh.

    ``fence``: seconds a drop fences this table's fills here (``0``: none); a tier
    that learns of a drop this process has not heard of yet (another process's
    write, a few milliseconds old) reads inside that fence as this process would:
    with ``ConsistentRead``, or, where DynamoDB has none (``eventual_only``: a
    secondary-index page), sharing the answer no longer than the fence.

    ``parts``: a BatchGetItem's keys, each as the GetItem that reads it (the same
    table, key and projection, its table's TTLs and fence, fenced if that table's
    reads are consistent).  A tier may share them key by key and send ``fetch`` a
    BatchGetItem of only the keys it must read itself.
    """

    operation: str
    request: dict[str, Any]
    site: str = ""
    table: str | None = None
    key: ItemKey | None = None
    ttl: float = 0.0
    negative_ttl: float = 0.0
    fenced: bool = False
    refresh: bool = False
    fence: float = 0.0
    eventual_only: bool = False
    parts: tuple[Load, ...] = ()


class Fetch(Protocol):
    """Sends a ``Load``'s request to DynamoDB and returns its answer (raising its
    errors); with ``request``, sends that instead: the same operation narrowed, a
    BatchGetItem of fewer of the load's keys."""

    def __call__(self, request: dict[str, Any] | None = None, /) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Loaded:
    """A ``Load``'s answer, and how many seconds ago DynamoDB gave it (``age``).

    An answer shared between processes was read before it was asked for here: the
    cache counts its TTL from the DynamoDB read, so that every process's entry
    expires together.
    """

    answer: Any
    age: float = 0.0


class TierHost(Protocol):
    """What a tier may do to this process's cache."""

    def apply(self, invalidation: Invalidation) -> None:
        """Drop what another process's ``invalidation`` names, here only."""

    def degrade(self, ttl: float | None) -> None:
        """The tier can no longer vouch for this process's entries: keep each at
        most ``ttl`` seconds more (from now, and for every entry stored while
        degraded); ``None`` ends it."""

    def bypass(self, table: str, on: bool) -> None:
        """Whether the tier can vouch for ``table``'s entries (a bare name): while
        ``on``, drop them and keep none, so that its reads go to DynamoDB."""


@runtime_checkable
class InvalidationBus(Protocol):
    """Carries invalidations between the processes sharing a cache namespace."""

    def publish(self, invalidation: Invalidation) -> None:
        """Tell the other processes; must not block or raise (queue it instead)."""

    async def flush(self) -> None:
        """Wait, for at most the bus's own short timeout, until what was published
        has gone out; a write awaits it before it is acknowledged.  Never raises
        for the bus's sake: what did not go out stays queued."""

    async def start(self, host: TierHost) -> None:
        """Start listening; remote invalidations go to ``host.apply``."""

    async def aclose(self) -> None:
        """Stop listening and flush or drop what is queued."""

    def stats(self) -> dict[str, Any]:
        """The bus's counters and state, for ``Cache.stats()["Tier"]``."""


@runtime_checkable
class SharedTier(Protocol):
    """The miss path shared between processes: an L2, leases for single-flight."""

    async def load(self, load: Load, fetch: Fetch) -> Loaded:
        """DynamoDB's answer to ``load``: ``await fetch()``, or a shared copy of it
        (for a BatchGetItem, maybe some keys' copies and ``fetch``'s answer for the
        others, as one answer; its ``age`` that of the oldest copy).

        ``fetch`` raises DynamoDB's errors, which ``load`` lets through unchanged."""

    async def start(self, host: TierHost) -> None: ...

    async def aclose(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        """The tier's counters, for ``Cache.stats()["Tier"]``."""

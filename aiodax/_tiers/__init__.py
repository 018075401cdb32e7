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
cache is entered and stops with ``aclose`` when it closes.  Neither seam may fail a
read or a write: a tier that loses its server answers from DynamoDB and drops
what it can no longer vouch for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    """One miss on its way to DynamoDB: the read operation and the request it sends."""

    operation: str
    request: dict[str, Any]


@runtime_checkable
class InvalidationBus(Protocol):
    """Carries invalidations between the processes sharing a cache namespace."""

    def publish(self, invalidation: Invalidation) -> None:
        """Tell the other processes; must not block or raise (queue it instead)."""

    async def start(self, apply: Callable[[Invalidation], None]) -> None:
        """Start listening; ``apply`` drops a remote invalidation here."""

    async def aclose(self) -> None:
        """Stop listening and flush or drop what is queued."""


@runtime_checkable
class SharedTier(Protocol):
    """The miss path shared between processes: an L2, leases for single-flight."""

    async def load(self, load: Load, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """DynamoDB's answer to ``load``: ``await fetch()``, or a shared copy of it."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

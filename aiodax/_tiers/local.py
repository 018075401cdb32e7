"""The tiers of a single process: no bus, no shared miss path (today's behaviour)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from . import Invalidation, Load


class NoBus:
    """An ``InvalidationBus`` with nobody to tell."""

    __slots__ = ()

    def publish(self, invalidation: Invalidation) -> None:
        return None

    async def start(self, apply: Callable[[Invalidation], None]) -> None:
        return None

    async def aclose(self) -> None:
        return None


class DirectLoads:
    """A ``SharedTier`` that sends every miss straight to DynamoDB."""

    __slots__ = ()

    async def load(self, load: Load, fetch: Callable[[], Awaitable[Any]]) -> Any:
        return await fetch()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

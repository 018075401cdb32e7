"""The tiers of a single process: no bus, no shared miss path (today's behaviour)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from . import Invalidation, Load, Loaded, TierHost


class NoBus:
    """An ``InvalidationBus`` with nobody to tell."""

    __slots__ = ()

    def publish(self, invalidation: Invalidation) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def start(self, host: TierHost) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}


class DirectLoads:
    """A ``SharedTier`` that sends every miss straight to DynamoDB."""

    __slots__ = ()

    async def load(self, load: Load, fetch: Callable[[], Awaitable[Any]]) -> Loaded:
        return Loaded(await fetch())

    async def start(self, host: TierHost) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}

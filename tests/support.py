"""Helpers shared by aiodax's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from aiodax.testing import InstrumentedClient


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds (bounded: fails after ``within`` s)."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.001)


def strip_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    """A response without what legitimately differs between two answers."""
    return {k: v for k, v in response.items() if k not in ("ResponseMetadata", "ConsumedCapacity")}


async def gather_all(*awaitables: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


async def outcome(call: Awaitable[Mapping[str, Any]]) -> tuple[str, Any]:
    """("ok", response without metadata) or ("error", DynamoDB's error code)."""
    try:
        response = await call
    except ClientError as error:
        return ("error", error.response["Error"]["Code"])
    return ("ok", strip_metadata(response))


class Unprocessing(InstrumentedClient):
    """Leaves the first ``refusals`` answers' keys unprocessed, as a hot partition would."""

    def __init__(self, client: Any, refusals: int) -> None:
        super().__init__(client)
        self.refusals = refusals

    async def batch_get_item(self, **request: Any) -> Any:
        self.calls["batch_get_item"] += 1
        self.requests.append(("batch_get_item", request))
        if self.refusals > 0:
            self.refusals -= 1
            return {"Responses": {}, "UnprocessedKeys": request["RequestItems"]}
        return await self.wrapped.batch_get_item(**request)

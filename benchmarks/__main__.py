"""``python -m benchmarks``: every benchmark, one after the other, as one markdown page."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from . import (
    fastapi_load,
    fence_cost,
    hit_instructions,
    hit_latency,
    hit_shapes,
    hot_key,
    query_hit,
    redis_l2,
    redis_tier,
    refresh_ahead,
    resource_hit,
    stale_if_error,
    stampede,
    streams_invalidation,
    write_cost,
)

BENCHMARKS: dict[str, Callable[[], Coroutine[Any, Any, str]]] = {
    "hit_latency": hit_latency.run,
    "hit_shapes": hit_shapes.run,
    "hit_instructions": hit_instructions.run,
    "resource_hit": resource_hit.run,
    "query_hit": query_hit.run,
    "stampede": stampede.run,
    "fastapi": fastapi_load.run,
    "redis_tier": redis_tier.run,
    "redis_l2": redis_l2.run,
    "hot_key": hot_key.run,
    "write_cost": write_cost.run,
    "refresh_ahead": refresh_ahead.run,
    "stale_if_error": stale_if_error.run,
    "fence_cost": fence_cost.run,
    "streams_invalidation": streams_invalidation.run,
}


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in names or list(BENCHMARKS):
        started = time.monotonic()
        # One event loop per benchmark: none inherits another's tasks or connections.
        print(asyncio.run(BENCHMARKS[name]()))
        print(f"\n_{name}: {time.monotonic() - started:.0f} s_\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m benchmarks``: every benchmark, one after the other, as one markdown page."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from . import (
    fastapi_load,
    hit_instructions,
    hit_latency,
    hit_shapes,
    query_hit,
    redis_tier,
    resource_hit,
    stampede,
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

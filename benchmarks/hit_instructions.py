"""What a cache hit costs in CPU instructions: aiodax's ``get_item`` against async-lru's.

Timings on a shared machine move from run to run; instruction counts do not.  Each
contender runs in a child process under ``valgrind --tool=callgrind`` twice, with 0
and with ``HITS`` hits after the same set-up; the difference divided by ``HITS`` is
what one hit executes (the benchmark loop's own ``for`` and ``await`` included, as
in ``hit_latency``).  The children fill their cache from botocore's ``Stubber``
instead of a server: a hit sends nothing, and the set-up stays the same from one
run to the next (``PYTHONHASHSEED`` is fixed for that too).

Instructions are not time: an allocation or a dict copy is many cheap instructions,
a Python-level call fewer, dearer ones.  ``hit_latency`` measures time; this is the
noise-free cross-check for a change to the hit path.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from typing import Any

from ._common import environment, markdown_table

HITS = 20_000
CONTENDERS = {
    "aiodax": "aiodax `get_item` hit",
    "async-lru": "async-lru `alru_cache` hit",
}
_COLLECTED = re.compile(r"Collected : (\d+)")


async def _instructions(contender: str, hits: int) -> int:
    process = await asyncio.create_subprocess_exec(
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.hit_instructions",
        "--child",
        contender,
        str(hits),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    finally:
        if process.returncode is None:  # timed out or cancelled: leave nothing running
            process.kill()
            await process.wait()
    found = _COLLECTED.search(stderr.decode())
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run of {contender} failed:\n{stderr.decode()[-2000:]}")
    return int(found.group(1))


async def run() -> str:
    if shutil.which("valgrind") is None:
        return "### Hit cost in instructions\n\nNot measured: valgrind is not installed."
    per_hit: dict[str, float] = {}
    for contender in CONTENDERS:
        # Two at once: one per core.
        base, loaded = await asyncio.gather(
            _instructions(contender, 0), _instructions(contender, HITS)
        )
        per_hit[contender] = (loaded - base) / HITS
    reference = per_hit["async-lru"]
    rows = [
        [CONTENDERS[name], f"{count:,.0f}", f"{count / reference:.2f}×"]
        for name, count in per_hit.items()
    ]
    return "\n".join(
        [
            "### Hit cost in instructions",
            "",
            f"Instructions per hit under callgrind, ({HITS:,} hits − 0 hits) ÷ {HITS:,}; "
            "the item of `hit_latency`.",
            "",
            markdown_table(["", "instructions per hit", "÷ async-lru"], rows),
            "",
            environment(["aiodax", "aioboto3", "async-lru"]),
        ]
    )


async def _child(contender: str, hits: int) -> None:
    """Fill one cache from a stubbed client, then serve ``hits`` hits from it."""
    import aioboto3
    from async_lru import alru_cache
    from botocore.stub import Stubber

    import aiodax
    from aiodax.stampede import key_value, make_item
    from aiodax.testing.servers import client_kwargs

    table, pk = "aiodax-bench", key_value(0)
    key = {"pk": {"S": pk}}
    # The endpoint is never contacted: the Stubber answers before any request is made.
    kwargs = client_kwargs("http://127.0.0.1:9")
    async with aioboto3.Session().client("dynamodb", **kwargs) as client:
        stubber = Stubber(client)
        stubber.add_response(
            "get_item", {"Item": make_item("pk", 0)}, {"TableName": table, "Key": key}
        )
        stubber.activate()
        if contender == "aiodax":
            async with aiodax.Cache(item_ttl=300) as cache:
                get_item = cache.wrap(client).get_item
                await get_item(TableName=table, Key=key)  # the miss that fills it
                for _ in range(hits):
                    await get_item(TableName=table, Key=key)
                assert cache.stats()["BackendRequestCount"] == 1
        else:

            @alru_cache(maxsize=1024, ttl=300)
            async def alru_get(value: str) -> Any:
                return await client.get_item(TableName=table, Key={"pk": {"S": value}})

            await alru_get(pk)
            for _ in range(hits):
                await alru_get(pk)
            await alru_get.cache_close()
        stubber.assert_no_pending_responses()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(_child(sys.argv[2], int(sys.argv[3])))
    else:
        print(asyncio.run(run()))


if __name__ == "__main__":
    main()

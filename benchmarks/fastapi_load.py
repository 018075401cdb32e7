"""``examples/fastapi_app.py`` under HTTP load, with and without aiodax.

The app runs under uvicorn in a child process on 127.0.0.1, against an embedded moto
server in this process; one hot key is read by 50 concurrent connections for a few
seconds, first from the plain aioboto3 resource (``AIODAX_CACHED=0``), then through
aiodax.  The load comes from ``wrk`` when it is on PATH, else from an aiohttp load
generator in this process (bounded in requests and time).

Then the same app under ``uvicorn --workers 4``, with a cache per worker and with the
workers' caches joined by the Redis tier (a private ``redis-server``): after each of
100 PUTs of a new version, GETs on fresh connections (spread over the workers by the
kernel) count how often a worker served the version from before the PUT; and the
hot key's req/s with 4 workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aioboto3
import aiohttp

from aiodax.testing import RedisServer
from aiodax.testing.servers import HOST, client_kwargs, moto_server, string_key_table

from ._common import environment, markdown_table

ROOT = Path(__file__).resolve().parent.parent
TABLE = "aiodax-bench-fastapi"
CONNECTIONS = 50
DURATION = 5.0
#: The aiohttp load generator stops at whichever comes first, this or DURATION.
MAX_REQUESTS = 100_000
WARMUP_REQUESTS = 200
STARTUP_TIMEOUT = 30.0
PATH = "/orders/hot-user/hot-order"


@dataclass(frozen=True)
class Load:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


WORKERS = 4
PUTS = 100
GETS_PER_PUT = 8
#: A GET that starts this long after its PUT returned and still serves the older
#: version is stale past the tier's bound (its bus propagates in milliseconds).
BOUND_MS = 10.0


async def run() -> str:
    wrk = shutil.which("wrk")
    results: dict[str, Load] = {}
    workers: dict[str, tuple[Load, int, int, int]] = {}
    with moto_server() as url, RedisServer() as redis:
        async with _table(url):
            for name, use_aiodax in (("uncached (aioboto3 resource)", False), ("aiodax", True)):
                async with _app(url, use_aiodax) as base:
                    await _warm_up(base)
                    results[name] = await (_wrk(wrk, base) if wrk else _aiohttp_load(base))
            for name, redis_url in (
                ("a cache per worker", None),
                ("workers joined by the Redis tier", redis.url),
            ):
                async with _app(url, True, workers=WORKERS, redis_url=redis_url) as base:
                    await _warm_up(base)
                    stale, past_bound, gets = await _stale_after_puts(base)
                    load = await (_wrk(wrk, base) if wrk else _aiohttp_load(base))
                    workers[name] = (load, stale, past_bound, gets)
    generator = "wrk" if wrk else "an aiohttp load generator"
    uncached, cached = results.values()
    header = ["", "req/s", "p50 ms", "p99 ms", "requests", "errors"]
    rows = [
        [name, f"{r.rps:,.0f}", f"{r.p50_ms:,.1f}", f"{r.p99_ms:,.1f}", f"{r.requests:,}", r.errors]
        for name, r in results.items()
    ]
    return "\n".join(
        [
            "### FastAPI app under load (`examples/fastapi_app.py`)",
            "",
            f"`GET {PATH}` (one hot key) for {DURATION:g} s from {CONNECTIONS} connections "
            f"with {generator}; uvicorn (1 worker) in a child process, moto in this one, "
            "all on 127.0.0.1.",
            "",
            markdown_table(header, rows),
            "",
            f"aiodax: {cached.rps / uncached.rps:,.1f}× the requests per second, "
            f"p99 {uncached.p99_ms / cached.p99_ms:,.1f}× lower.",
            "",
            f"`uvicorn --workers {WORKERS}`: after each of {PUTS} PUTs of a new version, "
            f"{GETS_PER_PUT} GETs on fresh connections; then the hot key's load as above.",
            "",
            markdown_table(
                [
                    "",
                    "stale GETs",
                    f"stale ≥ {BOUND_MS:g} ms after the PUT",
                    "GETs",
                    "req/s",
                    "p99 ms",
                ],
                [
                    [
                        name,
                        f"{stale:,}",
                        f"{past:,}",
                        f"{gets:,}",
                        f"{load.rps:,.0f}",
                        f"{load.p99_ms:,.1f}",
                    ]
                    for name, (load, stale, past, gets) in workers.items()
                ],
            ),
            "",
            environment(["aiodax", "fastapi", "uvicorn", "moto", "redis"]),
        ]
    )


async def _stale_after_puts(base: str) -> tuple[int, int, int]:
    """PUT a new version (the order's ``quantity``), then GET it on fresh connections:
    (stale, stale past the bound, GETs)."""
    stale = past_bound = gets = 0
    # A fresh connection per request, so that the kernel spreads them over workers.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        for _ in range(4 * WORKERS):  # every worker caches the hot key first
            async with session.get(PATH) as response:
                await response.read()
        for version in range(1, PUTS + 1):
            async with session.put(PATH, json={"total": 42.5, "quantity": version}) as response:
                await response.read()
            returned = time.perf_counter()
            for _ in range(GETS_PER_PUT):
                started = time.perf_counter()
                async with session.get(PATH) as response:
                    body = await response.json()
                gets += 1
                if body.get("quantity", 0) < version:
                    stale += 1
                    if (started - returned) * 1000 >= BOUND_MS:
                        past_bound += 1
    return stale, past_bound, gets


@contextlib.asynccontextmanager
async def _table(url: str) -> AsyncIterator[None]:
    async with aioboto3.Session().client("dynamodb", **client_kwargs(url)) as client:
        await client.create_table(**string_key_table(TABLE, "pk", "sk"))
        try:
            await client.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": "hot-user"},
                    "sk": {"S": "hot-order"},
                    "total": {"N": "42.5"},
                    "items": {"L": [{"S": f"sku-{i}"} for i in range(5)]},
                },
            )
            yield
        finally:
            # moto's tables outlive its server: leave none behind in this process.
            await client.delete_table(TableName=TABLE)


@contextlib.asynccontextmanager
async def _app(
    endpoint_url: str, cached: bool, *, workers: int = 1, redis_url: str | None = None
) -> AsyncIterator[str]:
    """uvicorn serving the example in a child process; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "AIODAX_ENDPOINT_URL": endpoint_url,
        "AIODAX_TABLE": TABLE,
        "AIODAX_CACHED": "1" if cached else "0",
        "AIODAX_NAMESPACE": f"bench-{port}",
    }
    env.pop("AIODAX_REDIS_URL", None)
    if redis_url is not None:
        env["AIODAX_REDIS_URL"] = redis_url
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.fastapi_app:create_app",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL
    )
    base = f"http://{HOST}:{port}"
    try:
        await _wait_until_serving(process, base)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_until_serving(process: asyncio.subprocess.Process, base: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"uvicorn exited with status {process.returncode}")
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(base + PATH) as response:
                    if response.status == 200:
                        return
                    raise RuntimeError(f"GET {PATH}: HTTP {response.status}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not serve within {STARTUP_TIMEOUT:g} s")
            await asyncio.sleep(0.1)


async def _warm_up(base: str) -> None:
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(base, connector=connector) as session:

        async def get() -> None:
            async with session.get(PATH) as response:
                await response.read()

        await asyncio.gather(*(get() for _ in range(WARMUP_REQUESTS)))


async def _aiohttp_load(base: str) -> Load:
    """CONNECTIONS workers each sending GETs until DURATION or MAX_REQUESTS."""
    latencies: list[float] = []
    errors = 0
    budget = MAX_REQUESTS
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + DURATION

        async def worker() -> None:
            nonlocal budget, errors
            while budget > 0 and time.perf_counter() < deadline:
                budget -= 1
                sent = time.perf_counter()
                try:
                    async with session.get(PATH) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - sent)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Load(len(latencies), errors, seconds, cuts[49] * 1000, cuts[98] * 1000)


async def _wrk(wrk: str, base: str) -> Load:
    command = [wrk, "-d", f"{DURATION:g}s", "-c", str(CONNECTIONS), "-t", "2", "--latency"]
    process = await asyncio.create_subprocess_exec(
        *command, base + PATH, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    async with asyncio.timeout(DURATION + 30):
        out, _ = await process.communicate()
    text = out.decode()
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with status {process.returncode}:\n{text}")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if done is None:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    return Load(
        int(done[1]),
        errors,
        _duration_ms(done[2], done[3]) / 1000,
        _wrk_percentile(text, "50%"),
        _wrk_percentile(text, "99%"),
    )


def _wrk_percentile(text: str, label: str) -> float:
    found = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {label} latency in wrk's output:\n{text}")
    return _duration_ms(found[1], found[2])


def _duration_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

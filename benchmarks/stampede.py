"""Stampedes against an embedded moto server, uncached and through aiodax.

The same machinery as ``aiodax stampede`` (``aiodax.stampede``), over a few shapes of
load, summarized as one markdown table.  Counts of requests reaching DynamoDB are
exact; latencies and throughput depend on the machine (moto runs in this process
and shares its CPU with the load).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

from aiodax.stampede import LoadSpec, Target, report_object, run_stampede
from aiodax.testing.servers import moto_server

from ._common import environment, markdown_table

#: Each run stops issuing requests after this many seconds, whatever is left.
DURATION = 30.0

SCENARIOS: tuple[tuple[str, LoadSpec], ...] = (
    ("1 hot key, GetItem", LoadSpec(requests=1000, concurrency=200, keys=1)),
    ("100 keys Zipf 1.1, GetItem", LoadSpec(requests=1000, concurrency=200, keys=100)),
    (
        "20 keys Zipf 1.1, Get+Query, 5% writes",
        LoadSpec(requests=600, concurrency=100, keys=20, op="mixed", write_ratio=0.05),
    ),
    (
        "the same, botocore's 10 connections",
        LoadSpec(
            requests=600,
            concurrency=100,
            keys=20,
            op="mixed",
            write_ratio=0.05,
            max_connections=10,
        ),
    ),
)


def _number(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def _both(report: dict[str, dict[str, Any]], name: str) -> str:
    return f"{_number(report['uncached'][name])} / {_number(report['cached'][name])}"


async def run() -> str:
    rows = []
    with moto_server() as url:
        for title, spec in SCENARIOS:
            target = Target(
                url,
                f"aiodax-bench-{uuid.uuid4().hex[:8]}",
                create=True,
                seed=True,
                label="moto (embedded)",
            )
            report = report_object(
                await run_stampede(target, dataclasses.replace(spec, duration=DURATION))
            )
            cached = report["cached"]
            requests = _both(report, "requests")
            if any(report[run]["stopped_early"] for run in report):
                requests += " (stopped early)"
            rows.append(
                [
                    title,
                    f"{spec.concurrency:,} / {spec.pool_size:,}",
                    requests,
                    _both(report, "backend_requests"),
                    f"{cached['coalesced']:,}",
                    f"{cached['hit_ratio']:.1%}",
                    _both(report, "mean_ms"),
                    _both(report, "p50_ms"),
                    _both(report, "p90_ms"),
                    _both(report, "p99_ms"),
                    _both(report, "throughput_rps"),
                    _both(report, "errors"),
                ]
            )
    header = [
        "load",
        "workers / connections",
        "requests",
        "reached DynamoDB",
        "coalesced",
        "hit ratio",
        "mean ms",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "req/s",
        "errors",
    ]
    return "\n".join(
        [
            "### Stampede against moto: uncached / aiodax",
            "",
            "Each cell is uncached / cached; the same seeded plan in both runs, every worker "
            "started at once, a connection per worker unless the row says otherwise.",
            "",
            markdown_table(header, rows),
            "",
            environment(["aiodax", "aioboto3", "moto"]),
        ]
    )


def main() -> None:
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()

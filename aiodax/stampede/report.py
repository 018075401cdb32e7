"""The report: one run's measurements as numbers, both runs side by side as text.

All pure: :func:`summarize` turns a :class:`~aiodax.stampede.runs.RunResult` into the
:data:`REPORT_KEYS` numbers (nearest-rank :func:`percentile` latencies, requests that
reached DynamoDB, hit ratio...), :func:`report_object` is the command's ``--json``
object, :func:`format_plan` what it prints before it starts and :func:`format_report`
its table.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .load import LoadSpec
    from .runs import RunResult, StampedeResult
    from .target import Target

#: The numbers every run reports, in the order of the table and the JSON object.
REPORT_KEYS: Final = (
    "requests",
    "backend_requests",
    "coalesced",
    "hit_ratio",
    "errors",
    "mean_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "throughput_rps",
)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(run: RunResult) -> dict[str, Any]:
    """One run's report: the ``REPORT_KEYS`` numbers first, then details."""
    load = run.load
    ordered = sorted(load.latencies)
    stats = run.cache_stats
    calls = run.backend_calls
    # Every write reaches DynamoDB, cached or not; the rest of the requests are reads.
    reads = len(ordered) - calls.get("put_item", 0)
    read_requests = calls.get("get_item", 0) + calls.get("query", 0)

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 3)

    return {
        "requests": len(ordered),
        "backend_requests": sum(run.backend_calls.values()),
        "coalesced": int(stats.get("CoalescedRequests", 0)),
        "hit_ratio": round(max(0.0, 1 - read_requests / reads), 4) if reads > 0 else 0.0,
        "errors": sum(load.errors.values()),
        "mean_ms": ms(sum(ordered) / len(ordered)) if ordered else 0.0,
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p90_ms": ms(percentile(ordered, 0.90)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1] if ordered else 0.0),
        "throughput_rps": round(len(ordered) / load.elapsed, 1) if load.elapsed > 0 else 0.0,
        "errors_by_kind": dict(sorted(load.errors.items())),
        "backend_requests_by_operation": dict(sorted(calls.items())),
        "cache_hits": int(stats.get("ItemCacheHits", 0) + stats.get("QueryCacheHits", 0)),
        "elapsed_s": round(load.elapsed, 3),
        "unfinished": load.unfinished,
        "stopped_early": load.stopped_early,
    }


def report_object(result: StampedeResult) -> dict[str, dict[str, Any]]:
    """The ``--json`` output: ``{"uncached": {...}, "cached": {...}}``."""
    return {"uncached": summarize(result.uncached), "cached": summarize(result.cached)}


def _cell(name: str, value: Any) -> str:
    if name == "hit_ratio":
        return f"{value:.1%}"
    if name.endswith("_ms"):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _times(before: float, after: float) -> str:
    """How many times ``after`` fits in ``before``, e.g. "2,000x"."""
    if after <= 0:
        return "inf x" if before > 0 else "n/a"
    ratio = before / after
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:,.1f}x"


#: What each row of the table means, printed under it.
LEGEND: Final = (
    ("backend_requests", "requests that reached DynamoDB, counted below the cache"),
    ("coalesced", "callers that joined a request another caller had in flight"),
    (
        "hit_ratio",
        "reads answered without a DynamoDB request of their own: cache hits and coalesced "
        "callers (1,000 readers served by one request: 99.9%)",
    ),
    ("mean_ms…max_ms", "latency per request as its caller saw it, writes included"),
    ("throughput_rps", "requests finished per second of the run"),
)


def format_plan(spec: LoadSpec, target: Target) -> str:
    """What a stampede is about to do, printed before it starts."""
    keys = "1 key" if spec.keys == 1 else f"{spec.keys:,} keys (Zipf s={spec.skew:g})"
    writes = f", {spec.write_ratio:.0%} of them writes" if spec.write_ratio else ""
    pool = f"{spec.pool_size:,} HTTP connection{'s' if spec.pool_size != 1 else ''}"
    ttl = f"TTL {spec.ttl:g} s" if spec.ttl else "TTL 0: nothing kept, misses coalesced"
    return (
        f"aiodax stampede: {spec.requests:,} {spec.op} requests over {keys}{writes}, "
        f"from {spec.concurrency:,} workers started at once ({pool}), "
        f"against {target.label}.\n"
        f"Two runs of the same plan: uncached (a plain aioboto3 client), then cached "
        f"(aiodax.Cache, {ttl}); each stops after {spec.duration:g} s at most."
    )


def format_report(result: StampedeResult) -> str:
    """The side-by-side table printed at the end of a run, with what its rows mean."""
    spec = result.spec
    uncached, cached = summarize(result.uncached), summarize(result.cached)
    lines: list[str] = []
    label_width = max(len(name) for name in REPORT_KEYS)
    columns = [
        [_cell(name, summary[name]) for name in REPORT_KEYS] for summary in (uncached, cached)
    ]
    widths = [
        max(len(title), *(len(c) for c in column))
        for title, column in zip(("uncached", "cached"), columns, strict=True)
    ]
    lines.append(f"{'':<{label_width}}  {'uncached':>{widths[0]}}  {'cached':>{widths[1]}}")
    for index, name in enumerate(REPORT_KEYS):
        lines.append(
            f"{name:<{label_width}}  {columns[0][index]:>{widths[0]}}  "
            f"{columns[1][index]:>{widths[1]}}"
        )
    for run_name, summary in (("uncached", uncached), ("cached", cached)):
        if summary["errors_by_kind"]:
            kinds = ", ".join(f"{k}: {n:,}" for k, n in summary["errors_by_kind"].items())
            lines.append(f"{run_name} errors: {kinds}")
        if summary["stopped_early"]:
            lines.append(
                f"{run_name}: --duration {spec.duration:g} s ran out after "
                f"{summary['requests']:,} requests ({summary['unfinished']:,} cancelled in flight)"
            )
    lines += [
        "",
        f"requests reaching DynamoDB: {uncached['backend_requests']:,} uncached, "
        f"{cached['backend_requests']:,} cached "
        f"({_times(uncached['backend_requests'], cached['backend_requests'])} fewer)",
        f"p99 latency: {_cell('p99_ms', uncached['p99_ms'])} ms uncached, "
        f"{_cell('p99_ms', cached['p99_ms'])} ms cached "
        f"({_times(uncached['p99_ms'], cached['p99_ms'])} lower)",
        "",
    ]
    for name, meaning in LEGEND:
        lines += textwrap.wrap(
            meaning, width=88, initial_indent=f"  {name:<17}", subsequent_indent=" " * 19
        )
    return "\n".join(lines)

"""aiodax's counters and request latencies for Prometheus (extra ``aiodax[prometheus]``).

    from aiodax.contrib.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics(cache)          # into prometheus_client.REGISTRY
    ...
    metrics.close()                              # unregistered

exposes, at each scrape, ``cache.stats()`` in Prometheus's naming: per table
(label ``table``) ``aiodax_item_cache_hits_total``, ``aiodax_item_cache_misses_total``,
``aiodax_negative_cache_hits_total``, ``aiodax_query_cache_hits_total``…
``aiodax_coalesced_requests_total``, ``aiodax_stale_served_total``; for the whole
cache ``aiodax_backend_requests_total{operation}``, ``aiodax_write_throughs_total``,
``aiodax_evicted_bytes_total``, the gauges ``aiodax_size_bytes``,
``aiodax_entries``, ``aiodax_loads_in_flight``…, and the Redis tier's counters as
``aiodax_tier_*`` (its bus state as ``aiodax_tier_bus_state{state}``).

Two histograms time what reaches DynamoDB, and only that (a hit records nothing):
``aiodax_backend_request_duration_seconds{operation,kind,table}`` (``kind``: miss,
write, bypass, other) and ``aiodax_coalesced_wait_duration_seconds{operation,table}``,
the waits of callers that joined another's miss.  One ``PrometheusMetrics`` per
cache and registry; ``namespace`` renames the ``aiodax`` prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import require

require("prometheus", "prometheus_client")

from prometheus_client import REGISTRY, CollectorRegistry, Histogram  # noqa: E402
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector  # noqa: E402

from .._cache import Cache  # noqa: E402
from .._observe import BackendCall, CoalescedWait  # noqa: E402
from .._rules.telemetry import (  # noqa: E402
    DESCRIPTIONS,
    GAUGES,
    metric_name,
    operation_name,
    request_tables,
)
from .._stats import TABLE_COUNTERS  # noqa: E402

__all__ = ["PrometheusMetrics", "StatsCollector"]

#: Bucket bounds (s) of DynamoDB's latencies: single-digit ms to its timeouts.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StatsCollector(Collector):
    """A ``prometheus_client`` collector reading ``cache.stats()`` at each scrape."""

    def __init__(self, cache: Cache, namespace: str = "aiodax") -> None:
        self._cache = cache
        self._prefix = f"{namespace}_"

    def describe(self) -> Iterable[Metric]:
        return ()  # what a Redis tier reports is known at scrape time only

    def collect(self) -> Iterator[Metric]:
        stats = self._cache.stats()
        prefix = self._prefix
        for stat in TABLE_COUNTERS.values():
            family = CounterMetricFamily(
                prefix + metric_name(stat), DESCRIPTIONS[stat], labels=["table"]
            )
            for table, counts in sorted(stats["Tables"].items()):
                family.add_metric([table], counts[stat])
            yield family
        requests = CounterMetricFamily(
            prefix + "backend_requests", DESCRIPTIONS["BackendRequests"], labels=["operation"]
        )
        for operation, count in sorted(stats["BackendRequests"].items()):
            requests.add_metric([operation_name(operation)], count)
        yield requests
        shown = set(TABLE_COUNTERS.values()) | {"BackendRequests", "BackendRequestCount"}
        for stat, value in stats.items():
            if stat not in shown and isinstance(value, int):
                yield _number(prefix + metric_name(stat), stat, DESCRIPTIONS[stat], value)
        yield from _tier(prefix + "tier_", stats.get("Tier") or {})


def _number(name: str, stat: str, description: str, value: float) -> Metric:
    if stat in GAUGES:
        return GaugeMetricFamily(name, description, value=value)
    return CounterMetricFamily(name, description, value=value)


def _tier(prefix: str, tier: Mapping[str, Any]) -> Iterator[Metric]:
    for stat, value in sorted(tier.items()):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        if isinstance(value, str):
            state = GaugeMetricFamily(
                prefix + metric_name(stat), f"the Redis tier's {stat}", labels=["state"]
            )
            state.add_metric([value], 1)
            yield state
        else:
            yield _number(prefix + metric_name(stat), stat, f"the Redis tier's {stat}", value)


class PrometheusMetrics:
    """``StatsCollector`` and the two latency histograms of ``cache``, registered in
    ``registry`` until ``close()``; see the module docstring."""

    def __init__(
        self,
        cache: Cache,
        registry: CollectorRegistry = REGISTRY,
        *,
        namespace: str = "aiodax",
        buckets: Iterable[float] = BUCKETS,
    ) -> None:
        self._cache = cache
        self._registry = registry
        bounds = tuple(buckets)
        self._collector = StatsCollector(cache, namespace)
        self._requests = Histogram(
            "backend_request_duration_seconds",
            "seconds a request sent to DynamoDB took (misses, writes, bypasses)",
            ["operation", "kind", "table"],
            namespace=namespace,
            buckets=bounds,
            registry=None,
        )
        self._waits = Histogram(
            "coalesced_wait_duration_seconds",
            "seconds a caller waited for another caller's miss it joined",
            ["operation", "table"],
            namespace=namespace,
            buckets=bounds,
            registry=None,
        )
        for collector in (self._collector, self._requests, self._waits):
            registry.register(collector)
        cache.add_observer(self)

    def backend_call(self, call: BackendCall) -> None:
        table = ",".join(request_tables(call.request))
        self._requests.labels(operation_name(call.operation), call.kind, table).observe(
            call.seconds
        )

    def coalesced_wait(self, wait: CoalescedWait) -> None:
        self._waits.labels(operation_name(wait.operation), wait.table).observe(wait.seconds)

    def close(self) -> None:
        """Unregister the metrics and stop timing the cache's requests."""
        self._cache.remove_observer(self)
        for collector in (self._collector, self._requests, self._waits):
            self._registry.unregister(collector)

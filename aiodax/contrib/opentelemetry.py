"""aiodax's counters, request latencies and spans for OpenTelemetry
(extra ``aiodax[opentelemetry]``: the API; the application brings the SDK).

    from aiodax.contrib.opentelemetry import OpenTelemetry

    telemetry = OpenTelemetry(cache)   # the global tracer and meter providers
    ...
    telemetry.close()

Metrics, the same as ``aiodax.contrib.prometheus``'s: ``cache.stats()`` as
observable instruments read at each collection (``aiodax.item_cache_hits``…, per
table under ``db.collection.name``; ``aiodax.backend_requests`` per
``db.operation.name``; gauges for sizes and loads in flight), the histogram
``db.client.operation.duration`` (seconds) of every request that reached DynamoDB,
and ``aiodax.coalesced_wait.duration`` of callers that joined another's miss.

Spans, after the fact and in the caller's context, for what costs time and
nothing else: a ``DynamoDB.<Operation>`` CLIENT span for each request sent (misses,
write-throughs, bypasses, table changes), with the semantic conventions' ``rpc.*``,
``db.*`` and ``aws.dynamodb.*`` attributes and ``aiodax.request.kind``; an
INTERNAL ``aiodax coalesced DynamoDB.<Operation>`` span for each coalesced wait.
A hit records no span and no measurement: the counters it bumps are read at
collection time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from weakref import WeakKeyDictionary

from . import require

require("opentelemetry", "opentelemetry")

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.metrics import CallbackOptions, Observation  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402

from .. import __version__  # noqa: E402
from .._cache import Cache  # noqa: E402
from .._observe import BackendCall, CoalescedWait  # noqa: E402
from .._rules.telemetry import (  # noqa: E402
    DESCRIPTIONS,
    GAUGES,
    metric_name,
    operation_name,
    span_attributes,
)
from .._stats import TABLE_COUNTERS  # noqa: E402

__all__ = ["OpenTelemetry"]

Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Instruments:
    """The instruments of one meter, made once: an SDK meter keeps the first of
    two instruments of one name and drops the second's callbacks, so every
    ``OpenTelemetry`` of a meter reports through these, summed over its caches."""

    def __init__(self, meter: metrics.Meter) -> None:
        #: the caches instrumented on this meter and not closed
        self.caches: list[Cache] = []
        for stat in TABLE_COUNTERS.values():
            meter.create_observable_counter(
                "aiodax." + metric_name(stat),
                [self._per_table(stat)],
                unit="1",
                description=DESCRIPTIONS[stat],
            )
        meter.create_observable_counter(
            "aiodax.backend_requests",
            [self._backend_requests],
            unit="{request}",
            description=DESCRIPTIONS["BackendRequests"],
        )
        shown = {*TABLE_COUNTERS.values(), "BackendRequests", "BackendRequestCount", "Tables"}
        for stat in DESCRIPTIONS:
            if stat in shown:
                continue
            unit = "By" if stat in ("CurrentSize", "EvictedSize") else "1"
            make = (
                meter.create_observable_gauge if stat in GAUGES else meter.create_observable_counter
            )
            make("aiodax." + metric_name(stat), [self._total(stat)], unit, DESCRIPTIONS[stat])
        self.durations = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="seconds a request sent to DynamoDB took (misses, writes, bypasses)",
        )
        self.waits = meter.create_histogram(
            "aiodax.coalesced_wait.duration",
            unit="s",
            description="seconds a caller waited for another caller's miss it joined",
        )

    def _summed(
        self, values: Callable[[dict[str, Any]], Iterable[tuple[str, int]]]
    ) -> Counter[str]:
        summed: Counter[str] = Counter()
        for cache in self.caches:
            for label, value in values(cache.stats()):
                summed[label] += value
        return summed

    def _per_table(self, stat: str) -> Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            summed = self._summed(
                lambda stats: ((table, counts[stat]) for table, counts in stats["Tables"].items())
            )
            return [Observation(value, {"db.collection.name": t}) for t, value in summed.items()]

        return observe

    def _backend_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        summed = self._summed(lambda stats: stats["BackendRequests"].items())
        return [
            Observation(count, {"db.operation.name": operation_name(operation)})
            for operation, count in summed.items()
        ]

    def _total(self, stat: str) -> Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if not self.caches:
                return []
            return [Observation(sum(cache.stats()[stat] for cache in self.caches))]

        return observe


#: Each meter's instruments (``_Instruments``), made at its first ``OpenTelemetry``.
_INSTRUMENTS: WeakKeyDictionary[metrics.Meter, _Instruments] = WeakKeyDictionary()


class OpenTelemetry:
    """The metrics and spans of ``cache``; see the module docstring.  The metrics of
    several caches instrumented on one meter provider are summed."""

    def __init__(
        self,
        cache: Cache,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._cache = cache
        self._tracer = trace.get_tracer("aiodax", __version__, tracer_provider)
        meter = metrics.get_meter("aiodax", __version__, meter_provider)
        instruments = _INSTRUMENTS.get(meter)
        if instruments is None:
            instruments = _INSTRUMENTS[meter] = _Instruments(meter)
        self._instruments = instruments
        self._durations = instruments.durations
        self._waits = instruments.waits
        instruments.caches.append(cache)
        cache.add_observer(self)

    # What the cache's observer seam tells -----------------------------------------

    def backend_call(self, call: BackendCall) -> None:
        attributes = span_attributes(call.operation, call.request, call.answer)
        attributes["aiodax.request.kind"] = call.kind
        span = self._tracer.start_span(
            f"DynamoDB.{attributes['rpc.method']}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=call.started_ns,
        )
        if call.error is not None:
            attributes["error.type"] = type(call.error).__qualname__
            span.set_attribute("error.type", attributes["error.type"])
            span.set_status(Status(StatusCode.ERROR, str(call.error)))
            span.record_exception(call.error)
        span.end(end_time=call.started_ns + int(call.seconds * 1e9))
        recorded: dict[str, Any] = {
            name: attributes[name]
            for name in (
                "db.system.name",
                "db.operation.name",
                "db.collection.name",
                "aiodax.request.kind",
                "error.type",
            )
            if name in attributes
        }
        self._durations.record(call.seconds, recorded)

    def coalesced_wait(self, wait: CoalescedWait) -> None:
        method = operation_name(wait.operation)
        attributes: dict[str, Any] = {
            "db.system.name": "aws.dynamodb",
            "db.operation.name": method,
            "db.collection.name": wait.table,
            "aws.dynamodb.table_names": [wait.table],
            "aiodax.cache_status": "coalesced",
        }
        span = self._tracer.start_span(
            f"aiodax coalesced DynamoDB.{method}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=wait.started_ns,
        )
        if wait.error is not None:
            span.set_status(Status(StatusCode.ERROR, str(wait.error)))
        span.end(end_time=wait.started_ns + int(wait.seconds * 1e9))
        self._waits.record(
            wait.seconds, {"db.operation.name": method, "db.collection.name": wait.table}
        )

    def close(self) -> None:
        """Stop: no more spans or measurements of this cache."""
        caches = self._instruments.caches
        if self._cache in caches:
            caches.remove(self._cache)
        self._cache.remove_observer(self)

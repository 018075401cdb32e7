"""``aiodax.contrib.opentelemetry`` through the SDK's in-memory span exporter and
metric reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import aiodax
from aiodax.contrib.opentelemetry import OpenTelemetry
from aiodax.testing import InstrumentedClient


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []  # nothing was measured
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
async def telemetry(cache: aiodax.Cache) -> AsyncIterator[Telemetry]:
    sdk = Telemetry()
    instrumented = OpenTelemetry(
        cache, tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider
    )
    yield sdk
    instrumented.close()
    sdk.meter_provider.shutdown()
    sdk.tracer_provider.shutdown()


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


async def test_misses_and_writes_are_spans_with_dynamodbs_attributes_and_hits_are_not(
    cached: aiodax.CachedClient, table: str, telemetry: Telemetry
) -> None:
    await cached.get_item(TableName=table, Key=key("a"), ReturnConsumedCapacity="TOTAL")
    (miss,) = telemetry.finished()
    assert miss.name == "DynamoDB.GetItem"
    assert miss.kind is SpanKind.CLIENT
    attributes = dict(miss.attributes or {})
    assert attributes["rpc.system"] == "aws-api"
    assert attributes["rpc.service"] == "DynamoDB"
    assert attributes["rpc.method"] == "GetItem"
    assert attributes["db.system.name"] == "aws.dynamodb"
    assert attributes["db.collection.name"] == table
    assert attributes["aws.dynamodb.table_names"] == (table,)
    assert attributes["aiodax.request.kind"] == "miss"
    assert "aws.dynamodb.consumed_capacity" in attributes
    assert miss.end_time is not None and miss.start_time is not None
    assert miss.end_time >= miss.start_time

    for _ in range(5):
        await cached.get_item(TableName=table, Key=key("a"))  # hits: no span
    assert len(telemetry.finished()) == 1

    await cached.put_item(TableName=table, Item={"pk": {"S": "b"}})
    write = telemetry.finished()[-1]
    assert write.name == "DynamoDB.PutItem"
    assert dict(write.attributes or {})["aiodax.request.kind"] == "write"
    # DescribeTable, for the write's plan, is a span of its own.
    assert {span.name for span in telemetry.finished()} >= {"DynamoDB.DescribeTable"}


async def test_a_failed_request_is_an_error_span(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    table: str,
    telemetry: Telemetry,
) -> None:
    instrumented.fail("get_item", "ValidationException")
    with pytest.raises(Exception, match="ValidationException"):
        await cached.get_item(TableName=table, Key=key("a"))
    (span,) = telemetry.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ClientError"
    assert [event.name for event in span.events] == ["exception"]


async def test_coalesced_waits_are_spans_of_their_own(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    table: str,
    telemetry: Telemetry,
) -> None:
    release = instrumented.hold("get_item", times=1)
    calls = [
        asyncio.ensure_future(cached.get_item(TableName=table, Key=key("a"))) for _ in range(3)
    ]
    async with asyncio.timeout(10):
        while cached.cache.stats()["CoalescedRequests"] < 2:
            await asyncio.sleep(0.001)
    release.set()
    await asyncio.gather(*calls)
    names = sorted(span.name for span in telemetry.finished())
    assert names == ["DynamoDB.GetItem", *["aiodax coalesced DynamoDB.GetItem"] * 2]
    waits = [span for span in telemetry.finished() if span.name.startswith("aiodax")]
    assert all(span.kind is SpanKind.INTERNAL for span in waits)
    assert dict(waits[0].attributes or {})["aiodax.cache_status"] == "coalesced"
    (point,) = telemetry.points("aiodax.coalesced_wait.duration")
    assert point.count == 2


async def test_metrics_mean_what_stats_says(
    cached: aiodax.CachedClient, table: str, telemetry: Telemetry
) -> None:
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    for _ in range(3):
        await cached.get_item(TableName=table, Key=key("a"))
    await cached.get_item(TableName=table, Key=key("absent"))

    (hits,) = telemetry.points("aiodax.item_cache_hits")
    assert hits.value == 3
    assert dict(hits.attributes) == {"db.collection.name": table}
    (misses,) = telemetry.points("aiodax.item_cache_misses")
    assert misses.value == 1
    requests = {
        point.attributes["db.operation.name"]: point.value
        for point in telemetry.points("aiodax.backend_requests")
    }
    assert requests["GetItem"] == 1 and requests["PutItem"] == 1
    (entries,) = telemetry.points("aiodax.entries")
    assert entries.value == 2
    durations = {
        point.attributes["db.operation.name"]: point.count
        for point in telemetry.points("db.client.operation.duration")
    }
    assert durations == {"DescribeTable": 1, "PutItem": 1, "GetItem": 1}


async def test_close_stops_spans_and_measurements_and_a_new_instance_reports(
    cached: aiodax.CachedClient, table: str
) -> None:
    sdk = Telemetry()
    telemetry = OpenTelemetry(
        cached.cache, tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider
    )
    telemetry.close()
    await cached.get_item(TableName=table, Key=key("a"))
    assert sdk.finished() == ()
    assert sdk.points("aiodax.item_cache_misses") == []
    # An app's lifespan run again instruments its new cache on the same providers.
    async with aiodax.Cache() as cache:
        again = OpenTelemetry(
            cache, tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider
        )
        await cache.wrap(cached.wrapped).get_item(TableName=table, Key=key("a"))
        (misses,) = sdk.points("aiodax.item_cache_misses")
        assert misses.value == 1
        assert [span.name for span in sdk.finished()] == ["DynamoDB.GetItem"]
        again.close()
    sdk.meter_provider.shutdown()


async def test_the_caches_of_one_meter_provider_are_summed(
    cached: aiodax.CachedClient, table: str, telemetry: Telemetry
) -> None:
    async with aiodax.Cache() as other:
        second = OpenTelemetry(other, meter_provider=telemetry.meter_provider)
        await cached.get_item(TableName=table, Key=key("a"))
        await other.wrap(cached.wrapped).get_item(TableName=table, Key=key("a"))
        (misses,) = telemetry.points("aiodax.item_cache_misses")
        assert misses.value == 2
        second.close()

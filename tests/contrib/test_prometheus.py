"""``aiodax.contrib.prometheus``: scraped with ``generate_latest``, parsed as Prometheus would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import aiodax
from aiodax.contrib.prometheus import PrometheusMetrics, StatsCollector
from aiodax.testing import InstrumentedClient


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) → value."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def types(registry: CollectorRegistry) -> dict[str, str]:
    text = generate_latest(registry).decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def metered(
    cache: aiodax.Cache, registry: CollectorRegistry
) -> AsyncIterator[PrometheusMetrics]:
    metrics = PrometheusMetrics(cache, registry)
    yield metrics
    metrics.close()


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


async def test_a_scrape_shows_the_stats_per_table_in_prometheus_naming(
    cached: aiodax.CachedClient, table: str, registry: CollectorRegistry, metered: Any
) -> None:
    await cached.put_item(TableName=table, Item={"pk": {"S": "a"}})
    for _ in range(3):
        await cached.get_item(TableName=table, Key=key("a"))
    await cached.get_item(TableName=table, Key=key("absent"))

    samples = scrape(registry)
    labels = (("table", table),)
    assert samples[("aiodax_item_cache_hits_total", labels)] == 3
    assert samples[("aiodax_item_cache_misses_total", labels)] == 1
    assert samples[("aiodax_negative_cache_hits_total", labels)] == 0
    assert samples[("aiodax_backend_requests_total", (("operation", "GetItem"),))] == 1
    assert samples[("aiodax_backend_requests_total", (("operation", "PutItem"),))] == 1
    assert samples[("aiodax_write_throughs_total", ())] == 1
    assert samples[("aiodax_entries", ())] == 2
    assert samples[("aiodax_size_bytes", ())] > 0
    kinds = types(registry)
    assert kinds["aiodax_item_cache_hits"] == "counter"
    assert kinds["aiodax_size_bytes"] == "gauge"
    assert kinds["aiodax_evicted_bytes"] == "counter"
    assert kinds["aiodax_backend_request_duration_seconds"] == "histogram"


async def test_requests_to_dynamodb_are_timed_and_hits_are_not(
    cached: aiodax.CachedClient, table: str, registry: CollectorRegistry, metered: Any
) -> None:
    await cached.get_item(TableName=table, Key=key("a"))  # a miss
    count = ("aiodax_backend_request_duration_seconds_count", ())

    def timed(operation: str, kind: str) -> float:
        labels = (("kind", kind), ("operation", operation), ("table", table))
        return scrape(registry).get((count[0], labels), 0.0)

    assert timed("GetItem", "miss") == 1
    for _ in range(5):
        await cached.get_item(TableName=table, Key=key("a"))  # hits
    assert timed("GetItem", "miss") == 1
    await cached.put_item(TableName=table, Item={"pk": {"S": "b"}})
    assert timed("PutItem", "write") == 1
    await cached.get_item(TableName=table, Key=key("a"), ConsistentRead=True)
    assert timed("GetItem", "bypass") == 1


async def test_coalesced_waits_are_timed(
    cached: aiodax.CachedClient,
    instrumented: InstrumentedClient,
    table: str,
    registry: CollectorRegistry,
    metered: Any,
) -> None:
    release = instrumented.hold("get_item", times=1)
    leader = asyncio.ensure_future(cached.get_item(TableName=table, Key=key("a")))
    async with asyncio.timeout(10):
        while instrumented.in_flight["get_item"] == 0:
            await asyncio.sleep(0.001)
    joiners = [
        asyncio.ensure_future(cached.get_item(TableName=table, Key=key("a"))) for _ in range(3)
    ]
    async with asyncio.timeout(10):
        while cached.cache.stats()["CoalescedRequests"] < 3:
            await asyncio.sleep(0.001)
    release.set()
    await asyncio.gather(leader, *joiners)
    labels = (("operation", "GetItem"), ("table", table))
    assert scrape(registry)[("aiodax_coalesced_wait_duration_seconds_count", labels)] == 3


async def test_close_unregisters_and_stops_timing(
    cached: aiodax.CachedClient, table: str, registry: CollectorRegistry
) -> None:
    metrics = PrometheusMetrics(cached.cache, registry)
    metrics.close()
    await cached.get_item(TableName=table, Key=key("a"))
    assert scrape(registry) == {}
    again = PrometheusMetrics(cached.cache, registry)  # the names are free again
    again.close()


class WithTier:
    """A cache's ``stats()`` with a Redis tier's part, as ``RedisTier``'s bus and L2 report it."""

    def __init__(self, cache: aiodax.Cache) -> None:
        self._cache = cache

    def stats(self) -> dict[str, Any]:
        tier = {"BusState": "degraded", "L2Hits": 3, "OutboxLength": 2, "DegradedPeriods": 1}
        return {**self._cache.stats(), "Tier": tier}


async def test_the_redis_tiers_counters_and_state_are_scraped(
    cache: aiodax.Cache, registry: CollectorRegistry
) -> None:
    registry.register(StatsCollector(cast("aiodax.Cache", WithTier(cache))))
    samples = scrape(registry)
    assert samples[("aiodax_tier_l2_hits_total", ())] == 3
    assert samples[("aiodax_tier_degraded_periods_total", ())] == 1
    assert samples[("aiodax_tier_outbox_length", ())] == 2
    assert samples[("aiodax_tier_bus_state", (("state", "degraded"),))] == 1
    assert types(registry)["aiodax_tier_outbox_length"] == "gauge"

"""What a tier may do to this process's cache (``aiodax.TierHost``), and what the cache
gives a tier, through the public ``aiodax.Cache``: a shared answer's age counts against
its TTL, a degraded tier caps how long entries live, a remote write overlaps a local
write in flight, a write waits for its bus, and the tier's stats show."""

from __future__ import annotations

import asyncio
from typing import Any

import aiodax
from tests.support import FakeClock
from tests.unit.fakes import METADATA, FakeBackend, RecordingBus, RecordingTier

KEY = {"pk": {"S": "a"}}
ITEM = {"pk": {"S": "a"}, "v": {"S": "backend"}}
SHARED = {"Item": {"pk": {"S": "a"}, "v": {"S": "shared"}}, "ResponseMetadata": METADATA}


def backend() -> FakeBackend:
    return FakeBackend({"t": {"a": ITEM}})


async def value(client: aiodax.CachedClient) -> Any:
    return (await client.get_item(TableName="t", Key=KEY))["Item"]["v"]["S"]


def host(bus: RecordingBus) -> aiodax.TierHost:
    assert bus.host is not None, "the cache did not start its bus"
    return bus.host


# ------------------------------------------------------------------- ages


async def test_a_shared_answer_s_ttl_counts_from_when_dynamodb_gave_it() -> None:
    clock, tier, fake = FakeClock(), RecordingTier({"get_item": SHARED}), backend()
    tier.age = 4.0
    async with aiodax.Cache(item_ttl=10, clock=clock, shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        assert await value(client) == "shared"
        clock.advance(5.9)
        assert await value(client) == "shared"
        assert len(tier.loads) == 1  # 9.9 s after DynamoDB's read: still fresh
        clock.advance(0.2)
        await value(client)
        assert len(tier.loads) == 2  # 10.1 s after it: expired, though stored 6.1 s ago


async def test_a_shared_answer_older_than_its_ttl_is_answered_but_not_kept() -> None:
    clock, tier, fake = FakeClock(), RecordingTier({"get_item": SHARED}), backend()
    tier.age = 11.0
    async with aiodax.Cache(item_ttl=10, clock=clock, shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        assert await value(client) == "shared"
        assert await value(client) == "shared"
    assert len(tier.loads) == 2


async def test_a_shared_page_s_ttl_counts_from_when_dynamodb_gave_it() -> None:
    page = {"Items": [ITEM], "Count": 1, "ScannedCount": 1, "ResponseMetadata": METADATA}
    clock, tier, fake = FakeClock(), RecordingTier({"scan": page}), backend()
    tier.age = 8.0
    async with aiodax.Cache(query_ttl=10, clock=clock, shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await client.scan(TableName="t")
        clock.advance(1.9)
        await client.scan(TableName="t")
        assert len(tier.loads) == 1
        clock.advance(0.2)
        await client.scan(TableName="t")
        assert len(tier.loads) == 2


# --------------------------------------------------------------- degrading


async def test_degrading_caps_every_entry_already_cached() -> None:
    clock, bus, fake = FakeClock(), RecordingBus(), backend()
    async with aiodax.Cache(item_ttl=300, clock=clock, bus=bus) as cache:
        client = cache.wrap(fake.client())

        async def read_all() -> None:
            # The projection first: read after the whole item, it is served from it.
            await client.get_item(TableName="t", Key=KEY, ProjectionExpression="v")
            await value(client)
            await client.scan(TableName="t")

        await read_all()
        host(bus).degrade(2.0)
        clock.advance(1.9)
        await read_all()
        assert (fake.calls["get_item"], fake.calls["scan"]) == (2, 1)
        clock.advance(0.2)
        await read_all()
        assert (fake.calls["get_item"], fake.calls["scan"]) == (4, 2)


async def test_while_degraded_new_entries_live_at_most_the_degraded_ttl() -> None:
    clock, bus, fake = FakeClock(), RecordingBus(), backend()
    async with aiodax.Cache(item_ttl=300, clock=clock, bus=bus) as cache:
        client = cache.wrap(fake.client())
        host(bus).degrade(2.0)
        await value(client)
        clock.advance(2.1)
        await value(client)
        assert fake.calls["get_item"] == 2


async def test_once_the_tier_recovers_entries_live_their_ttl_again() -> None:
    clock, bus, fake = FakeClock(), RecordingBus(), backend()
    async with aiodax.Cache(item_ttl=300, clock=clock, bus=bus) as cache:
        client = cache.wrap(fake.client())
        host(bus).degrade(2.0)
        host(bus).degrade(None)
        await value(client)
        clock.advance(250)
        await value(client)
        assert fake.calls["get_item"] == 1


# ---------------------------------------------------------- remote writes


async def write_with_a_remote_drop_in_flight(remote: aiodax.Invalidation) -> FakeBackend:
    """Put item "a" through a cache and, while the put is out, apply ``remote`` from the
    bus; then read "a" once.  Returns the backend, whose ``get_item`` count says whether
    the write was stored (0) or left uncached (1)."""
    bus, fake = RecordingBus(), backend()
    gate = asyncio.Event()
    real_put = fake.put_item

    async def slow_put(**request: Any) -> dict[str, Any]:
        await gate.wait()
        return await real_put(**request)

    fake.put_item = slow_put  # type: ignore[method-assign]
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        write = asyncio.create_task(
            client.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "local"}})
        )
        async with asyncio.timeout(1):
            while cache.stats()["WritesInFlight"] == 0:
                await asyncio.sleep(0)
        host(bus).apply(remote)
        gate.set()
        await write
        assert await value(client) == "local"
    return fake


async def test_a_remote_write_to_an_item_with_a_local_write_in_flight_leaves_it_uncached() -> None:
    # Another process wrote the item while this one's write is out: which landed last
    # is unknown here, so neither value may be cached.
    fake = await write_with_a_remote_drop_in_flight(aiodax.Invalidation("t", ("pk", "S", "a")))
    assert fake.calls["get_item"] == 1


async def test_a_remote_write_to_another_item_leaves_a_local_write_through_alone() -> None:
    fake = await write_with_a_remote_drop_in_flight(aiodax.Invalidation("t", ("pk", "S", "b")))
    assert fake.calls["get_item"] == 0


async def test_a_remote_drop_of_the_table_overlaps_every_local_write_to_it() -> None:
    fake = await write_with_a_remote_drop_in_flight(aiodax.Invalidation("t"))
    assert fake.calls["get_item"] == 1


# ------------------------------------------------------- bus and stats


async def test_a_write_waits_for_its_bus_before_it_is_acknowledged() -> None:
    bus, fake = RecordingBus(), backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        await client.put_item(TableName="t", Item=ITEM)
        assert bus.flushes == 1
        assert bus.published == [aiodax.Invalidation("t", ("pk", "S", "a"))]


async def test_the_tiers_stats_show_under_tier() -> None:
    bus, tier = RecordingBus(), RecordingTier()
    async with aiodax.Cache(bus=bus, shared_tier=tier) as cache:
        cache.invalidate("t", KEY)
        assert cache.stats()["Tier"] == {"Published": 1, "Loads": 0}


async def test_a_cache_without_tiers_has_no_tier_stats() -> None:
    async with aiodax.Cache() as cache:
        assert "Tier" not in cache.stats()


async def test_loads_of_one_site_carry_one_label_and_another_site_another() -> None:
    tier = RecordingTier()
    first, second = backend(), backend()
    second.meta.region_name = "eu-west-1"
    async with aiodax.Cache(shared_tier=tier) as cache:
        await cache.wrap(first.client()).get_item(TableName="t", Key=KEY)
        await cache.wrap(second.client()).get_item(TableName="t", Key=KEY)
        await cache.wrap(first.client()).scan(TableName="t")
    sites = [load.site for load in tier.loads]
    assert sites[0] == sites[2] != sites[1]

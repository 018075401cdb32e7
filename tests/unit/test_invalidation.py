"""Invalidation through the public ``aiodax.Cache``: what it publishes on its bus, what it
drops when the bus tells it to, and the seams and policies it refuses."""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

import pytest

import aiodax
from aiodax._rules.wire import canonical_key
from tests.unit.fakes import FakeBackend, RecordingBus, RecordingTier

KEY = {"pk": {"S": "a"}}
OTHER = {"pk": {"S": "b"}}


def backend() -> FakeBackend:
    return FakeBackend(
        {
            "t": {
                "a": {"pk": {"S": "a"}, "v": {"S": "1"}},
                "b": {"pk": {"S": "b"}, "v": {"S": "1"}},
            },
            "u": {"a": {"pk": {"S": "a"}, "v": {"S": "u"}}},
        }
    )


async def get(client: aiodax.CachedClient, table: str, key: dict[str, Any]) -> Any:
    return await client.get_item(TableName=table, Key=key)


def applier(bus: RecordingBus) -> Any:
    assert bus.apply is not None, "the cache did not start its bus"
    return bus.apply


# ------------------------------------------------------------------ publishing


def test_invalidating_an_item_publishes_its_table_and_canonical_key_once() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    cache.invalidate("t", KEY)
    assert bus.published == [aiodax.Invalidation("t", ("pk", "S", "a"))]


def test_an_item_invalidation_carries_the_key_in_canonical_form() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    cache.invalidate("t", {"sk": {"N": "1.50"}, "pk": {"B": b"x"}})
    (published,) = bus.published
    assert published.key == canonical_key({"pk": {"B": b"x"}, "sk": {"N": "1.5"}})
    assert published.key == ("pk", "B", b"x", "sk", "N", "1.5")


def test_invalidating_a_malformed_key_raises_and_publishes_nothing() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    with pytest.raises(ValueError, match="wire-format key"):
        cache.invalidate("t", {"pk": "a"})
    assert bus.published == []


def test_invalidating_a_table_publishes_the_table_and_no_key() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    cache.invalidate_table("t")
    assert bus.published == [aiodax.Invalidation("t")]
    assert bus.published[0].key is None


def test_clearing_the_cache_publishes_one_invalidation_of_everything() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    cache.clear()
    assert bus.published == [aiodax.Invalidation(None)]


async def test_a_write_through_publishes_the_key_it_wrote() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        await client.put_item(TableName="t", Item={"pk": {"S": "c"}, "v": {"S": "2"}})
    assert bus.published == [aiodax.Invalidation("t", ("pk", "S", "c"))]


def test_an_invalidation_of_every_table_names_no_key() -> None:
    with pytest.raises(ValueError, match="names its table"):
        aiodax.Invalidation(None, ("pk", "S", "a"))


# ------------------------------------------------------------------ bus lifetime


async def test_entering_the_cache_starts_its_bus_and_closing_it_stops_the_bus() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    assert (bus.starts, bus.closes) == (0, 0)
    async with cache:
        assert (bus.starts, bus.closes) == (1, 0)
        assert callable(bus.apply)
    assert (bus.starts, bus.closes) == (1, 1)
    assert cache.closed
    assert bus.published == []


async def test_aclose_stops_the_bus_of_a_cache_never_entered() -> None:
    bus = RecordingBus()
    cache = aiodax.Cache(bus=bus)
    await cache.aclose()
    assert (bus.starts, bus.closes) == (0, 1)


# ------------------------------------------------------------ remote invalidations


async def test_a_remote_item_invalidation_drops_the_item_here_without_publishing() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        await get(client, "t", KEY)
        await get(client, "t", KEY)
        assert fake.calls["get_item"] == 1
        fake.items["t"]["a"]["v"] = {"S": "2"}
        applier(bus)(aiodax.Invalidation("t", canonical_key(KEY)))
        assert (await get(client, "t", KEY))["Item"]["v"] == {"S": "2"}
        assert fake.calls["get_item"] == 2
    assert bus.published == []


async def test_a_remote_item_invalidation_leaves_other_items_cached() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        for table, key in (("t", KEY), ("t", OTHER), ("u", KEY)):
            await get(client, table, key)
        applier(bus)(aiodax.Invalidation("t", canonical_key(KEY)))
        for table, key in (("t", OTHER), ("u", KEY)):
            await get(client, table, key)
        assert fake.calls["get_item"] == 3


async def test_a_remote_table_invalidation_drops_that_table_only() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        for table, key in (("t", KEY), ("t", OTHER), ("u", KEY)):
            await get(client, table, key)
        applier(bus)(aiodax.Invalidation("t"))
        await get(client, "u", KEY)
        assert fake.calls["get_item"] == 3
        await get(client, "t", KEY)
        await get(client, "t", OTHER)
        assert fake.calls["get_item"] == 5
    assert bus.published == []


async def test_a_remote_invalidation_of_everything_drops_every_table() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        await get(client, "t", KEY)
        await get(client, "u", KEY)
        applier(bus)(aiodax.Invalidation(None))
        await get(client, "t", KEY)
        await get(client, "u", KEY)
        assert fake.calls["get_item"] == 4
    assert bus.published == []


async def test_a_remote_invalidation_drops_query_pages_of_the_table() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        await client.scan(TableName="t")
        await client.scan(TableName="t")
        assert fake.calls["scan"] == 1
        applier(bus)(aiodax.Invalidation("t", canonical_key(KEY)))
        await client.scan(TableName="t")
        assert fake.calls["scan"] == 2


async def test_a_remote_invalidation_keeps_a_load_already_out_from_being_stored() -> None:
    bus = RecordingBus()
    fake = backend()
    fake.gate = asyncio.Event()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        read = asyncio.create_task(get(client, "t", KEY))
        async with asyncio.timeout(1):
            while fake.calls["get_item"] == 0:
                await asyncio.sleep(0)
        applier(bus)(aiodax.Invalidation("t", canonical_key(KEY)))
        fake.gate.set()
        async with asyncio.timeout(1):
            await read
        await get(client, "t", KEY)
        assert fake.calls["get_item"] == 2


async def test_a_local_invalidation_drops_the_item_as_a_remote_one_does() -> None:
    bus = RecordingBus()
    fake = backend()
    async with aiodax.Cache(bus=bus) as cache:
        client = cache.wrap(fake.client())
        await get(client, "t", KEY)
        cache.invalidate("t", KEY)
        await get(client, "t", KEY)
        assert fake.calls["get_item"] == 2
    assert len(bus.published) == 1


# ------------------------------------------------------------ refused configuration


class PublishOnly:
    def publish(self, invalidation: aiodax.Invalidation) -> None:
        return None


@pytest.mark.parametrize(
    "bus", [object(), PublishOnly(), RecordingTier(), "bus"], ids=lambda b: type(b).__name__
)
def test_a_bus_that_does_not_implement_the_protocol_is_refused(bus: object) -> None:
    with pytest.raises(aiodax.ConfigurationTypeError, match="InvalidationBus"):
        aiodax.Cache(bus=cast(Any, bus))


@pytest.mark.parametrize(
    "tier", [object(), PublishOnly(), RecordingBus(), 1], ids=lambda t: type(t).__name__
)
def test_a_shared_tier_that_does_not_implement_the_protocol_is_refused(tier: object) -> None:
    with pytest.raises(aiodax.ConfigurationTypeError, match="SharedTier"):
        aiodax.Cache(shared_tier=cast(Any, tier))


def test_a_bus_and_a_tier_that_implement_the_protocols_are_accepted() -> None:
    bus, tier = RecordingBus(), RecordingTier()
    assert isinstance(bus, aiodax.InvalidationBus)
    assert isinstance(tier, aiodax.SharedTier)
    aiodax.Cache(bus=bus, shared_tier=tier)


@pytest.mark.parametrize(
    "options",
    [
        {"attempts": -1},
        {"attempts": 1.0},
        {"attempts": True},
        {"attempts": "5"},
        {"base": -0.1},
        {"base": math.inf},
        {"base": math.nan},
        {"base": "0.1"},
        {"base": False},
        {"cap": -1},
        {"cap": math.inf},
        {"cap": None},
    ],
    ids=repr,
)
def test_a_retry_policy_refuses_bad_values(options: dict[str, Any]) -> None:
    with pytest.raises(aiodax.ConfigurationError):
        aiodax.RetryPolicy(**options)


def test_a_retry_policy_takes_zero_attempts_and_zero_delays() -> None:
    policy = aiodax.RetryPolicy(attempts=0, base=0, cap=0.0)
    assert list(policy.delays()) == []


def test_retry_delays_are_capped_exponential_with_full_jitter() -> None:
    policy = aiodax.RetryPolicy(attempts=5, base=0.1, cap=0.5)
    assert list(policy.delays(lambda: 1.0)) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    assert list(policy.delays(lambda: 0.0)) == [0.0] * 5


def test_a_cache_refuses_a_retry_that_is_no_retry_policy() -> None:
    with pytest.raises(aiodax.ConfigurationTypeError, match="RetryPolicy"):
        aiodax.Cache(retry=cast(Any, {"attempts": 1}))

"""The shared-tier seam through the public ``aiodax.Cache``: every miss passes through the
tier as a ``Load``, which may answer it instead of DynamoDB; hits never reach it.  A load
says how long its answer is kept, whether it is fenced, and whether it is a refresh."""

from __future__ import annotations

import asyncio
from typing import Any

import aiodax
from tests.support import FakeClock, until
from tests.unit.fakes import METADATA, FakeBackend, RecordingTier

KEY = {"pk": {"S": "a"}}
ITEM = {"pk": {"S": "a"}, "v": {"S": "backend"}}


def backend() -> FakeBackend:
    return FakeBackend({"t": {"a": ITEM, "b": {"pk": {"S": "b"}, "v": {"S": "b"}}}})


async def get(client: aiodax.CachedClient, key: dict[str, Any]) -> Any:
    return await client.get_item(TableName="t", Key=key)


async def test_a_get_item_miss_reaches_the_tier_as_a_load_of_what_is_sent() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        response = await client.get_item(TableName="t", Key=KEY, ConsistentRead=False)
    assert response["Item"] == ITEM
    [load] = tier.loads
    assert (load.operation, load.request) == ("get_item", {"TableName": "t", "Key": KEY})
    assert (load.table, load.key) == ("t", ("pk", "S", "a"))
    assert load.site
    assert fake.calls["get_item"] == 1


async def test_a_get_item_hit_never_reaches_the_tier() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await client.get_item(TableName="t", Key=KEY)
        await client.get_item(TableName="t", Key=KEY)
        await client.get_item(TableName="t", Key=KEY, ProjectionExpression="v")
    assert len(tier.loads) == 1
    assert fake.calls["get_item"] == 1


async def test_the_tier_can_answer_a_miss_without_the_backend_being_called() -> None:
    shared = {"Item": {"pk": {"S": "a"}, "v": {"S": "shared"}}, "ResponseMetadata": METADATA}
    tier, fake = RecordingTier({"get_item": shared}), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        first = await client.get_item(TableName="t", Key=KEY)
        again = await client.get_item(TableName="t", Key=KEY)
    assert first["Item"]["v"] == {"S": "shared"}
    assert again["Item"]["v"] == {"S": "shared"}
    assert fake.calls["get_item"] == 0
    assert (len(tier.loads), tier.fetched) == (1, 0)


async def test_concurrent_identical_misses_reach_the_tier_once() -> None:
    tier, fake = RecordingTier(), backend()
    fake.gate = asyncio.Event()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        calls = [asyncio.create_task(get(client, KEY)) for _ in range(5)]
        async with asyncio.timeout(1):
            while fake.calls["get_item"] == 0:
                await asyncio.sleep(0)
        fake.gate.set()
        async with asyncio.timeout(1):
            responses = await asyncio.gather(*calls)
    assert [response["Item"] for response in responses] == [ITEM] * 5
    assert len(tier.loads) == 1
    assert fake.calls["get_item"] == 1


async def test_a_scan_miss_is_a_load_and_its_hit_is_not() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        first = await client.scan(TableName="t", Limit=10)
        second = await client.scan(TableName="t", Limit=10)
    assert first["Items"] == second["Items"]
    [load] = tier.loads
    assert (load.operation, load.request) == ("scan", {"TableName": "t", "Limit": 10})
    assert (load.table, load.key) == ("t", None)
    assert fake.calls["scan"] == 1


async def test_the_tier_can_answer_a_scan_without_the_backend_being_called() -> None:
    page = {"Items": [ITEM], "Count": 1, "ScannedCount": 7, "ResponseMetadata": METADATA}
    tier, fake = RecordingTier({"scan": page}), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        response = await client.scan(TableName="t")
    assert (response["Items"], response["ScannedCount"]) == ([ITEM], 7)
    assert fake.calls["scan"] == 0


async def test_a_batch_get_sends_only_its_missing_keys_through_the_tier() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await client.get_item(TableName="t", Key=KEY)
        response = await client.batch_get_item(
            RequestItems={"t": {"Keys": [KEY, {"pk": {"S": "b"}}]}}
        )
    assert len(response["Responses"]["t"]) == 2
    batch_loads = [load for load in tier.loads if load.operation == "batch_get_item"]
    assert len(batch_loads) == 1
    (load,) = batch_loads
    assert load.request["RequestItems"] == {"t": {"Keys": [{"pk": {"S": "b"}}]}}
    assert fake.calls["batch_get_item"] == 1


async def test_reads_the_cache_does_not_cache_and_writes_never_reach_the_tier() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await client.get_item(TableName="t", Key=KEY, ConsistentRead=True)
        await client.put_item(TableName="t", Item={"pk": {"S": "c"}})
    assert tier.loads == []
    assert fake.calls["get_item"] == 1
    assert fake.calls["put_item"] == 1


async def test_a_write_makes_the_next_read_of_its_item_a_hit_not_a_load() -> None:
    tier, fake = RecordingTier(), backend()
    item: dict[str, Any] = {"pk": {"S": "c"}, "v": {"S": "written"}}
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await client.put_item(TableName="t", Item=item)
        response = await client.get_item(TableName="t", Key={"pk": {"S": "c"}})
    assert response["Item"] == item
    assert tier.loads == []


async def test_entering_the_cache_starts_the_tier_and_closing_it_stops_the_tier() -> None:
    tier = RecordingTier()
    cache = aiodax.Cache(shared_tier=tier)
    async with cache:
        assert (tier.starts, tier.closes) == (1, 0)
    assert (tier.starts, tier.closes) == (1, 1)


# ------------------------------------------------- what a load tells the tier


async def test_a_load_carries_how_long_this_process_keeps_its_answer() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(item_ttl=7, negative_ttl=3, query_ttl=5, shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await get(client, KEY)
        await client.scan(TableName="t")
        await client.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "b"}}]}})
    item_load, page_load, batch_load = tier.loads
    assert (item_load.ttl, item_load.negative_ttl) == (7, 3)
    assert page_load.ttl == 5
    assert (batch_load.ttl, batch_load.negative_ttl) == (0, 0)  # kept per key, not shared
    assert not any(load.fenced or load.refresh for load in tier.loads)


async def test_a_table_s_own_ttls_reach_the_tier() -> None:
    tier, fake = RecordingTier(), backend()
    tables = {"t": aiodax.TableConfig(item_ttl=1.5)}
    async with aiodax.Cache(item_ttl=7, tables=tables, shared_tier=tier) as cache:
        await get(cache.wrap(fake.client()), KEY)
    assert tier.loads[0].ttl == 1.5


async def test_a_fill_after_a_drop_is_a_fenced_load_that_reads_consistently() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await get(client, KEY)
        cache.invalidate("t", KEY)
        await get(client, KEY)
    first, fenced = tier.loads
    assert not first.fenced and "ConsistentRead" not in first.request
    assert fenced.fenced and fenced.request["ConsistentRead"] is True


async def test_every_fill_of_a_strongly_consistent_table_is_fenced() -> None:
    tier, fake = RecordingTier(), backend()
    async with aiodax.Cache(fill_consistency="strong", shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        await get(client, KEY)
        await client.scan(TableName="t")
    assert [load.fenced for load in tier.loads] == [True, True]


async def test_a_background_reload_is_a_refresh_and_a_miss_is_not() -> None:
    clock, tier, fake = FakeClock(), RecordingTier(), backend()
    async with aiodax.Cache(
        item_ttl=10, stale_while_revalidate=30, clock=clock, shared_tier=tier
    ) as cache:
        client = cache.wrap(fake.client())
        await get(client, KEY)
        clock.advance(15)  # expired, inside stale-while-revalidate: served, reloaded
        await get(client, KEY)
        await until(lambda: len(tier.loads) == 2)
    assert [load.refresh for load in tier.loads] == [False, True]


async def test_a_batch_load_names_each_key_as_the_get_item_that_reads_it() -> None:
    tier, fake = RecordingTier(), backend()
    fake.items["u"] = {"c": {"pk": {"S": "c"}}}
    tables = {"u": aiodax.TableConfig(item_ttl=4, fill_consistency="strong")}
    async with aiodax.Cache(item_ttl=7, negative_ttl=3, tables=tables, shared_tier=tier) as cache:
        await cache.wrap(fake.client()).batch_get_item(
            RequestItems={
                "t": {"Keys": [KEY, {"pk": {"S": "b"}}], "ProjectionExpression": "pk, v"},
                "u": {"Keys": [{"pk": {"S": "c"}}]},
            }
        )
    [load] = tier.loads
    parts = {part.key: part for part in load.parts}
    assert set(parts) == {("pk", "S", "a"), ("pk", "S", "b"), ("pk", "S", "c")}
    a, c = parts["pk", "S", "a"], parts["pk", "S", "c"]
    assert (a.operation, a.table, a.site) == ("get_item", "t", load.site)
    assert a.request["Key"] == KEY and a.request["ProjectionExpression"].startswith("pk, v")
    assert (a.ttl, a.negative_ttl, a.fenced) == (7, 3, False)
    assert (c.ttl, c.fenced, c.request["ConsistentRead"]) == (4, True, True)


class NarrowingTier(RecordingTier):
    """Answers a batch's first key itself (a copy 2 s old) and fetches only the others."""

    async def load(self, load: aiodax.Load, fetch: aiodax.Fetch) -> aiodax.Loaded:
        if not load.parts:
            return await super().load(load, fetch)
        self.loads.append(load)
        first, *others = load.parts
        narrowed = {
            **load.request,
            "RequestItems": {"t": {"Keys": [part.request["Key"] for part in others]}},
        }
        answer = await fetch(narrowed)
        answer["Responses"]["t"].append({**first.request["Key"], "v": {"S": "shared"}})
        return aiodax.Loaded(answer, 2.0)


async def test_a_tier_may_read_only_some_of_a_batch_s_keys_and_answer_the_others() -> None:
    clock, tier, fake = FakeClock(), NarrowingTier(), backend()
    async with aiodax.Cache(item_ttl=10, clock=clock, shared_tier=tier) as cache:
        client = cache.wrap(fake.client())
        response = await client.batch_get_item(
            RequestItems={"t": {"Keys": [KEY, {"pk": {"S": "b"}}]}}
        )
        values = sorted(item["v"]["S"] for item in response["Responses"]["t"])
        assert values == ["b", "shared"]
        [sent] = [request for name, request in fake.requests if name == "batch_get_item"]
        assert sent["RequestItems"]["t"]["Keys"] == [{"pk": {"S": "b"}}]
        clock.advance(8.5)  # the answer's age counts: 10.5 s after the tier's copy
        await get(client, KEY)
        assert fake.calls["get_item"] == 1

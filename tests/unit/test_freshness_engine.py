"""Freshness policies through the public ``Cache``, on a fake backend and a fake clock:
refresh-ahead, stale-while-revalidate and stale-if-error, with single-flight,
cancellation, write-through and ``aclose``."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

import aiodax
from aiodax.testing import client_error
from tests.support import FakeClock, until
from tests.unit.fakes import FakeBackend

KEY = {"pk": {"S": "a"}}
TTL = 10.0
#: seconds every load takes on the fake clock (XFetch's δ)
LOAD = 1.0


def item(value: str) -> dict[str, Any]:
    return {"pk": {"S": "a"}, "v": {"S": value}}


class SlowBackend(FakeBackend):
    """Reads take ``load_time`` on the fake clock, may fail, and may be held (``gate``)
    after their answer is read, so a held reload carries the value from before."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__({"t": {"a": item("v1")}})
        self.clock = clock
        self.load_time = LOAD
        self.errors: list[BaseException] = []
        #: reads answered; the cache stores an answer in the step it arrives in
        self.answered: Counter[str] = Counter()

    async def _read(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self._record(operation, request)
        if self.errors:
            raise self.errors.pop(0)
        self.clock.advance(self.load_time)
        gate, self.gate = self.gate, None
        answer = await getattr(FakeBackend, operation)(self, **request)
        self.calls[operation] -= 1  # counted once, above
        self.requests.pop()
        if gate is not None:
            self.gate = gate
            await gate.wait()
        self.answered[operation] += 1
        return answer  # type: ignore[no-any-return]

    async def get_item(self, **request: Any) -> dict[str, Any]:
        return await self._read("get_item", request)

    async def scan(self, **request: Any) -> dict[str, Any]:
        return await self._read("scan", request)

    async def batch_get_item(self, **request: Any) -> dict[str, Any]:
        return await self._read("batch_get_item", request)


def make(**options: Any) -> tuple[aiodax.Cache, SlowBackend, aiodax.CachedClient, FakeClock]:
    clock = FakeClock()
    fake = SlowBackend(clock)
    cache = aiodax.Cache(item_ttl=TTL, query_ttl=TTL, clock=clock, **options)
    return cache, fake, cache.wrap(fake.client()), clock


async def value(client: aiodax.CachedClient) -> str:
    response = await client.get_item(TableName="t", Key=KEY)
    return str(response["Item"]["v"]["S"])


async def test_a_hot_key_across_its_ttl_is_reloaded_once_and_no_caller_waits() -> None:
    # -ln(0.1)·δ = 2.3 s: a hit within 2.3 s of the expiry refreshes
    cache, fake, client, clock = make(refresh_ahead=1.0, random=lambda: 0.1)
    async with cache:
        assert await value(client) == "v1"  # stored at 1001, expires at 1011
        fake.items["t"]["a"] = item("v2")
        clock.advance(TTL - 2)  # 1009: in the window (opens ln(1000)·δ ≈ 6.9 s before)
        fake.load_time = 0.0
        fake.gate = asyncio.Event()  # the reload is held: nobody may wait for it
        async with asyncio.timeout(1):
            values = await asyncio.gather(*(value(client) for _ in range(50)))
        assert values == ["v1"] * 50
        assert fake.calls["get_item"] == 2
        assert cache.stats()["RefreshesAhead"] == 1
        fake.gate.set()
        await until(lambda: fake.answered["get_item"] == 2)
        clock.advance(5)  # past the first entry's expiry: the reloaded one answers
        assert await value(client) == "v2"
        assert fake.calls["get_item"] == 2


async def test_before_its_window_an_entry_is_a_plain_hit() -> None:
    # 0.0 would refresh anywhere in the window
    cache, fake, client, clock = make(refresh_ahead=1.0, random=lambda: 0.0)
    async with cache:
        await value(client)
        clock.advance(TTL - 7)  # 1004 < 1011 − 6.9
        await value(client)
        assert fake.calls["get_item"] == 1
        assert cache.stats()["RefreshesAhead"] == 0


async def test_without_policies_an_expired_entry_is_a_miss_the_caller_waits_for() -> None:
    cache, fake, client, clock = make()
    async with cache:
        await value(client)
        fake.items["t"]["a"] = item("v2")
        clock.advance(TTL)
        assert await value(client) == "v2"
        assert cache.stats()["StaleServed"] == 0


async def test_stale_while_revalidate_serves_the_expired_entry_while_one_reload_runs() -> None:
    cache, fake, client, clock = make(stale_while_revalidate=30)
    async with cache:
        await value(client)
        fake.items["t"]["a"] = item("v2")
        clock.advance(TTL + 5)
        fake.load_time = 0.0
        fake.gate = asyncio.Event()
        async with asyncio.timeout(1):
            values = await asyncio.gather(*(value(client) for _ in range(5)))
        assert values == ["v1"] * 5
        assert fake.calls["get_item"] == 2
        assert cache.stats()["StaleServed"] == 5
        fake.gate.set()
        await until(lambda: fake.answered["get_item"] == 2)
        assert await value(client) == "v2"
        assert fake.calls["get_item"] == 2
        clock.advance(TTL + 30)  # past the stale window: a miss
        assert await value(client) == "v2"
        assert fake.calls["get_item"] == 3


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException", "GetItem"),
        client_error("ProvisionedThroughputExceededException", "GetItem"),
        client_error("InternalServerError", "GetItem"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        TimeoutError(),
    ],
    ids=["throttling", "provisioned", "5xx", "read-timeout", "timeout"],
)
async def test_stale_if_error_serves_the_expired_entry_when_dynamodb_fails(
    error: BaseException,
) -> None:
    cache, fake, client, clock = make(stale_if_error=60)
    async with cache:
        await value(client)
        clock.advance(TTL + 1)
        fake.errors.append(error)
        assert await value(client) == "v1"
        stats = cache.stats()
        assert (stats["StaleServed"], stats["ItemCacheHits"], stats["ItemCacheMisses"]) == (1, 0, 2)
        clock.advance(60)  # past the window: DynamoDB's error is the caller's
        fake.errors.append(error)
        with pytest.raises(type(error)):
            await value(client)


async def test_stale_if_error_never_hides_an_error_of_the_request() -> None:
    cache, fake, client, clock = make(stale_if_error=60)
    async with cache:
        await value(client)
        clock.advance(TTL + 1)
        fake.errors.append(client_error("ValidationException", "GetItem"))
        with pytest.raises(ClientError, match="ValidationException"):
            await value(client)
        fake.errors.append(client_error("ResourceNotFoundException", "GetItem"))
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            await value(client)
        assert cache.stats()["StaleServed"] == 0


async def test_stale_if_error_serves_nothing_a_drop_has_taken() -> None:
    cache, fake, client, clock = make(stale_if_error=60)
    async with cache:
        await value(client)
        clock.advance(TTL + 1)
        cache.invalidate("t", KEY)
        fake.errors.append(client_error("ThrottlingException", "GetItem"))
        with pytest.raises(ClientError, match="ThrottlingException"):
            await value(client)


async def test_a_write_through_the_cache_wins_over_a_pending_background_reload() -> None:
    cache, fake, client, clock = make(stale_while_revalidate=30, stale_if_error=60)
    async with cache:
        await value(client)
        clock.advance(TTL + 5)
        fake.load_time = 0.0
        fake.gate = asyncio.Event()
        assert await value(client) == "v1"  # served stale; the reload holds "v1"
        await until(lambda: fake.calls["get_item"] == 2)
        await client.put_item(TableName="t", Item=item("v2"))
        fake.gate.set()
        await until(lambda: fake.answered["get_item"] == 2)
        assert await value(client) == "v2"  # the reload's older answer was refused
        assert fake.calls["get_item"] == 2


async def test_a_cancelled_caller_never_cancels_the_background_reload_it_joined() -> None:
    cache, fake, client, clock = make(stale_while_revalidate=5)
    async with cache:
        await value(client)
        fake.items["t"]["a"] = item("v2")
        clock.advance(TTL + 1)
        fake.load_time = 0.0
        fake.gate = asyncio.Event()
        assert await value(client) == "v1"  # starts the background reload
        clock.advance(5)  # past the stale window: the next caller joins the reload
        joined = asyncio.create_task(value(client))
        await until(lambda: cache.stats()["CoalescedRequests"] == 1)
        joined.cancel()
        with pytest.raises(asyncio.CancelledError):
            await joined
        fake.gate.set()
        await until(lambda: fake.answered["get_item"] == 2)
        assert await value(client) == "v2"
        assert fake.calls["get_item"] == 2


async def test_aclose_cancels_a_background_reload_cleanly() -> None:
    cache, fake, client, clock = make(stale_while_revalidate=30)
    await value(client)
    clock.advance(TTL + 1)
    fake.gate = asyncio.Event()  # never set
    assert await value(client) == "v1"
    assert cache.stats()["InFlight"] == 1
    await cache.aclose()
    assert cache.stats()["InFlight"] == 0
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_pages_are_served_stale_while_one_reload_runs_and_on_throttling() -> None:
    cache, fake, client, clock = make(stale_while_revalidate=30, stale_if_error=60)
    async with cache:
        first = await client.scan(TableName="t")
        fake.items["t"]["a"] = item("v2")
        clock.advance(TTL + 1)
        fake.load_time = 0.0
        fake.gate = asyncio.Event()
        assert (await client.scan(TableName="t"))["Items"] == first["Items"]
        await until(lambda: fake.calls["scan"] == 2)
        fake.gate.set()
        await until(lambda: fake.answered["scan"] == 2)
        assert (await client.scan(TableName="t"))["Items"] == [item("v2")]
        clock.advance(TTL + 31)  # past stale-while-revalidate, within stale-if-error
        fake.errors.append(client_error("ThrottlingException", "Scan"))
        assert (await client.scan(TableName="t"))["Items"] == [item("v2")]
        fake.errors.append(client_error("ValidationException", "Scan"))
        with pytest.raises(ClientError, match="ValidationException"):
            await client.scan(TableName="t")
        assert cache.stats()["StaleServed"] == 2


async def test_batch_get_item_serves_stale_keys_while_one_background_batch_reloads() -> None:
    cache, fake, client, clock = make(stale_while_revalidate=30)
    async with cache:
        request = {"t": {"Keys": [KEY]}}
        await client.batch_get_item(RequestItems=request)
        fake.items["t"]["a"] = item("v2")
        clock.advance(TTL + 1)
        fake.load_time = 0.0
        fake.gate = asyncio.Event()
        async with asyncio.timeout(1):
            answers = await asyncio.gather(
                *(client.batch_get_item(RequestItems=request) for _ in range(3))
            )
        assert [a["Responses"]["t"] for a in answers] == [[item("v1")]] * 3
        assert fake.calls["batch_get_item"] == 2
        fake.gate.set()
        await until(lambda: fake.answered["batch_get_item"] == 2)
        answer = await client.batch_get_item(RequestItems=request)
        assert answer["Responses"]["t"] == [item("v2")]
        assert fake.calls["batch_get_item"] == 2


async def test_refresh_ahead_draws_from_the_injected_random_only_inside_the_window() -> None:
    draws: list[float] = []

    def draw() -> float:
        draws.append(clock.now)
        return 0.9  # -ln(0.9)·δ ≈ 0.105 s: only a hit that close to the expiry refreshes

    cache, fake, client, clock = make(refresh_ahead=1.0, random=draw)
    async with cache:
        await value(client)  # stored at 1001, expires at 1011, window from ≈ 1004.1
        clock.advance(2)  # 1003: before the window, nothing drawn
        await value(client)
        assert draws == []
        clock.advance(6)  # 1009: drawn, but 0.105 s of lead is not enough
        await value(client)
        assert (len(draws), fake.calls["get_item"]) == (1, 1)
        clock.advance(1.95)  # 1010.95: 0.05 s before the expiry
        await value(client)
        await until(lambda: fake.answered["get_item"] == 2)
        assert (len(draws), fake.calls["get_item"]) == (2, 2)
        assert cache.stats()["RefreshesAhead"] == 1


def nested(value: str) -> dict[str, Any]:
    return {"pk": {"S": "a"}, "v": {"S": value}, "m": {"M": {"x": {"S": value}, "y": {"S": "-"}}}}


@pytest.mark.parametrize(
    ("projection", "expected"),
    [("v", {"v": {"S": "v1"}}), ("m.x", {"m": {"M": {"x": {"S": "v1"}}}})],
    ids=["top-level, from the whole item", "nested, its own variant"],
)
async def test_stale_if_error_serves_a_projected_get_item(
    projection: str, expected: dict[str, Any]
) -> None:
    cache, fake, client, clock = make(stale_if_error=60)
    fake.items["t"]["a"] = nested("v1")
    async with cache:
        await value(client)  # the whole item
        first = await client.get_item(TableName="t", Key=KEY, ProjectionExpression=projection)
        if projection == "m.x":
            # The fake answers whole items; DynamoDB would answer the projection.
            assert first["Item"] == nested("v1")
        clock.advance(TTL + 1)
        fake.errors.append(client_error("ThrottlingException", "GetItem"))
        stale = await client.get_item(TableName="t", Key=KEY, ProjectionExpression=projection)
        assert stale["Item"] == (nested("v1") if projection == "m.x" else expected)
        assert cache.stats()["StaleServed"] == 1
        fake.errors.append(client_error("ValidationException", "GetItem"))
        with pytest.raises(ClientError, match="ValidationException"):
            await client.get_item(TableName="t", Key=KEY, ProjectionExpression=projection)
        clock.advance(60)  # past the window
        fake.errors.append(client_error("ThrottlingException", "GetItem"))
        with pytest.raises(ClientError, match="ThrottlingException"):
            await client.get_item(TableName="t", Key=KEY, ProjectionExpression=projection)
        assert cache.stats()["StaleServed"] == 1


class FailsAfterAWrite(SlowBackend):
    """Holds each GetItem until ``release`` is set, then throttles it."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.release = asyncio.Event()

    async def get_item(self, **request: Any) -> dict[str, Any]:
        self._record("get_item", request)
        await self.release.wait()
        raise client_error("ThrottlingException", "GetItem")


@pytest.mark.parametrize("stale_if_error", [0.0, 60.0], ids=["off", "on"])
async def test_a_read_failing_after_a_write_stored_the_item_hears_its_error_unless_the_policy_is_on(
    stale_if_error: float,
) -> None:
    clock = FakeClock()
    fake = FailsAfterAWrite(clock)
    async with aiodax.Cache(item_ttl=TTL, clock=clock, stale_if_error=stale_if_error) as cache:
        client = cache.wrap(fake.client())
        reading = asyncio.create_task(value(client))
        await until(lambda: fake.calls["get_item"] == 1)
        await client.put_item(TableName="t", Item=item("v2"))  # stored: a fresh entry
        fake.release.set()
        if stale_if_error:
            assert await reading == "v2"  # the write wins, and stands in
            assert cache.stats()["StaleServed"] == 1
        else:
            with pytest.raises(ClientError, match="ThrottlingException"):
                await reading
            assert cache.stats()["StaleServed"] == 0


def batch_of(*pks: str, **spec: Any) -> dict[str, Any]:
    return {"t": {"Keys": [{"pk": {"S": pk}} for pk in pks], **spec}}


def named(pk: str, value: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": value}}


def batch_make(**options: Any) -> tuple[aiodax.Cache, SlowBackend, aiodax.CachedClient, FakeClock]:
    cache, fake, client, clock = make(**options)
    fake.items["t"].update({pk: named(pk, f"{pk}1") for pk in ("b", "c")})
    return cache, fake, client, clock


async def test_stale_if_error_serves_every_key_of_a_throttled_batch() -> None:
    cache, fake, client, clock = batch_make(stale_if_error=60)
    async with cache:
        await client.batch_get_item(RequestItems=batch_of("a", "b"))
        fake.items["t"]["b"] = named("b", "b2")
        clock.advance(TTL + 1)
        fake.errors.append(client_error("ProvisionedThroughputExceededException", "BatchGetItem"))
        answer = await client.batch_get_item(RequestItems=batch_of("a", "b"))
        assert answer["Responses"]["t"] == [item("v1"), named("b", "b1")]
        assert answer["UnprocessedKeys"] == {}
        assert fake.calls["batch_get_item"] == 2
        assert cache.stats()["StaleServed"] == 2
        # Nothing was stored: the next read reloads.
        assert (await client.batch_get_item(RequestItems=batch_of("b")))["Responses"]["t"] == [
            named("b", "b2")
        ]


async def test_a_partly_stale_batch_returns_the_other_keys_unprocessed_as_dynamodb_would() -> None:
    cache, fake, client, clock = batch_make(stale_if_error=60)
    async with cache:
        await client.batch_get_item(RequestItems=batch_of("a", "b"))
        await client.batch_get_item(RequestItems=batch_of("c"))
        clock.advance(TTL + 1)
        cache.invalidate("t", {"pk": {"S": "b"}})  # dropped: no stale copy of it is left
        await value(client)  # "a" reloaded: a fresh hit
        clock.advance(1)
        fake.errors.append(client_error("ThrottlingException", "BatchGetItem"))
        # A projection of top-level attributes: "c" is answered from its whole item.
        request = batch_of("a", "b", "c", "d", ProjectionExpression="pk, v")
        answer = await client.batch_get_item(RequestItems=request)
        assert answer["Responses"]["t"] == [item("v1"), named("c", "c1")]
        assert answer["UnprocessedKeys"] == {
            "t": {"Keys": [{"pk": {"S": "b"}}, {"pk": {"S": "d"}}], "ProjectionExpression": "pk, v"}
        }
        assert cache.stats()["StaleServed"] == 1
        # The caller retries its unprocessed keys: DynamoDB's error is not hidden.
        fake.errors.append(client_error("ThrottlingException", "BatchGetItem"))
        with pytest.raises(ClientError, match="ThrottlingException"):
            await client.batch_get_item(RequestItems=answer["UnprocessedKeys"])
        assert cache.stats()["StaleServed"] == 1


@pytest.mark.parametrize(
    ("options", "advance", "code"),
    [
        ({}, TTL + 1, "ThrottlingException"),
        ({"stale_if_error": 60}, TTL + 60, "ThrottlingException"),
        ({"stale_if_error": 60}, TTL + 1, "ValidationException"),
        ({"stale_if_error": 60}, TTL + 1, "ResourceNotFoundException"),
    ],
    ids=["policy off", "past the window", "validation", "missing table"],
)
async def test_a_batch_stale_if_error_cannot_serve_raises_as_without_the_policy(
    options: dict[str, Any], advance: float, code: str
) -> None:
    cache, fake, client, clock = batch_make(**options)
    async with cache:
        await client.batch_get_item(RequestItems=batch_of("a", "b"))
        clock.advance(advance)
        fake.errors.append(client_error(code, "BatchGetItem"))
        with pytest.raises(ClientError, match=code):
            await client.batch_get_item(RequestItems=batch_of("a", "b"))
        assert cache.stats()["StaleServed"] == 0


async def test_a_batch_joining_a_failing_get_item_serves_that_key_stale() -> None:
    cache, fake, client, clock = batch_make(stale_if_error=60)
    async with cache:
        await client.batch_get_item(RequestItems=batch_of("a", "b"))
        fake.items["t"]["b"] = named("b", "b2")
        clock.advance(TTL + 1)
        held = asyncio.Event()
        throttled = client_error("ThrottlingException", "GetItem")

        async def held_then_throttled(**request: Any) -> dict[str, Any]:
            fake._record("get_item", request)
            await held.wait()
            raise throttled

        fake.get_item = held_then_throttled  # type: ignore[method-assign]
        getting = asyncio.create_task(value(client))  # loads "a", held
        await until(lambda: fake.calls["get_item"] == 1)
        batching = asyncio.create_task(client.batch_get_item(RequestItems=batch_of("a", "b")))
        await until(lambda: fake.calls["batch_get_item"] == 2)
        assert fake.requests[-1][1]["RequestItems"]["t"]["Keys"] == [{"pk": {"S": "b"}}]
        assert cache.stats()["CoalescedRequests"] == 1
        held.set()
        assert await getting == "v1"
        answer = await batching
        assert answer["Responses"]["t"] == [item("v1"), named("b", "b2")]
        assert cache.stats()["StaleServed"] == 2


async def test_a_write_through_the_cache_while_a_batch_loads_wins_over_its_stale_entry() -> None:
    cache, fake, client, clock = batch_make(stale_if_error=60)
    async with cache:
        await client.batch_get_item(RequestItems=batch_of("a", "b"))
        clock.advance(TTL + 1)
        held = asyncio.Event()

        async def held_then_throttled(**request: Any) -> dict[str, Any]:
            fake._record("batch_get_item", request)
            await held.wait()
            raise client_error("ThrottlingException", "BatchGetItem")

        fake.batch_get_item = held_then_throttled  # type: ignore[method-assign]
        batching = asyncio.create_task(client.batch_get_item(RequestItems=batch_of("a", "b")))
        await until(lambda: fake.calls["batch_get_item"] == 2)
        await client.put_item(TableName="t", Item=named("b", "b2"))
        held.set()
        answer = await batching
        # "a" stands in from its expired entry; "b" from the entry the write stored.
        assert answer["Responses"]["t"] == [item("v1"), named("b", "b2")]
        assert answer["UnprocessedKeys"] == {}

"""``StreamsInvalidator`` on ``aiodax.testing.FakeStreams``: lineage, trims, expired
iterators, throttling, the stream's end, leases and checkpoints, against a private Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError

import aiodax
from aiodax._tiers.redis.codec import decode
from aiodax._tiers.redis.keys import Keys
from aiodax.testing import RedisServer
from aiodax.testing.streams import FakeStreams

NAMESPACE = "streams-fake"
TABLE = "orders"


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


async def _bus(raw: redis.Redis) -> list[tuple[str | None, str | None]]:
    """Every invalidation on the namespace's bus: (table, pk or None), in order."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await raw.xrange(Keys(NAMESPACE).bus)  # type: ignore[assignment]
    seen: list[tuple[str | None, str | None]] = []
    for _, fields in entries:
        decoded = decode(fields[b"m"])
        assert decoded is not None
        _, invalidation = decoded
        seen.append((invalidation.table, None if invalidation.key is None else invalidation.key[2]))
    return seen


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    try:
        async with asyncio.timeout(within):
            while not await check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {within} s") from None


def _checkpointed(raw: redis.Redis, shard: str, number: str) -> Callable[[], Awaitable[bool]]:
    """Whether ``shard``'s checkpoint is ``number`` (the batch's last record)."""

    async def check() -> bool:
        found = await raw.hget(f"{Keys(NAMESPACE).prefix}s:c:{TABLE}", shard)
        return bool(found == number.encode())

    return check


def _invalidator(
    streams: FakeStreams, server: RedisServer, **options: Any
) -> aiodax.StreamsInvalidator:
    options = {"poll_interval": 0.01, "lease_time": 1.0, "describe_interval": 0.05, **options}
    return aiodax.StreamsInvalidator(
        [streams.table], client=streams, redis=server.url, namespace=NAMESPACE, **options
    )


@contextlib.asynccontextmanager
async def _running(
    streams: FakeStreams, server: RedisServer, **options: Any
) -> AsyncIterator[aiodax.StreamsInvalidator]:
    # Bounded as a whole: a hang here fails the test, with its traceback.
    async with asyncio.timeout(60), _invalidator(streams, server, **options) as invalidator:
        yield invalidator


def _has(
    raw: redis.Redis, expected: list[tuple[str | None, str | None]]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _bus(raw) == expected

    return check


async def test_every_record_is_invalidated_in_order_then_checkpointed(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE, view_type="NEW_AND_OLD_IMAGES")
    streams.write(_key("a"), "INSERT", NewImage={"pk": {"S": "a"}, "v": {"S": "new"}})
    streams.write(_key("b"), "MODIFY")
    last = streams.write(_key("a"), "REMOVE")
    async with _running(streams, server) as invalidator:
        await _until(_has(raw_redis, [(TABLE, "a"), (TABLE, "b"), (TABLE, "a")]), "three drops")
        checkpoints = f"aiodax:v1:{{{NAMESPACE}}}:s:c:{TABLE}"

        async def checkpointed() -> bool:
            return bool(await raw_redis.hget(checkpoints, streams.shard_ids[0]) == last.encode())

        await _until(checkpointed, "the checkpoint")
        assert invalidator.stats()["Records"] == 3
    # Only deletes: nothing but the bus and the invalidator's own keys was written.
    prefix = Keys(NAMESPACE).prefix
    copies = [*await raw_redis.keys(prefix + "i:*"), *await raw_redis.keys(prefix + "q:*")]
    assert copies == []
    assert await raw_redis.keys(prefix + "g:i:*")  # the drops moved the items' generations


async def test_a_restart_resumes_after_its_checkpoint(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    first = streams.write(_key("a"))
    async with _running(streams, server):
        await _until(_checkpointed(raw_redis, streams.shard_ids[0], first), "the checkpoint")
    streams.write(_key("b"))
    async with _running(streams, server):
        await _until(_has(raw_redis, [(TABLE, "a"), (TABLE, "b")]), "the second drop")
        await asyncio.sleep(0.1)  # a few idle polls: nothing is replayed
    assert await _bus(raw_redis) == [(TABLE, "a"), (TABLE, "b")]


async def test_children_are_read_only_after_their_parent(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    streams.write(_key("p1"))
    left, right = streams.split()
    streams.write(_key("l1"), shard=left)
    streams.write(_key("r1"), shard=right)
    # A child's records are older than their parent's last one in nothing but
    # order: the parent's come first on the bus, whatever the shards' listing.
    async with _running(streams, server) as invalidator:
        await _until(lambda: _count(raw_redis, 3), "three drops")
        seen = await _bus(raw_redis)
        assert seen[0] == (TABLE, "p1") and set(seen[1:]) == {(TABLE, "l1"), (TABLE, "r1")}
        await _until(lambda: _async(invalidator.stats()["ShardsReading"] == 2), "two children read")
        left2, _ = streams.split(left)
        streams.write(_key("g1"), shard=left2)
        await _until(lambda: _count(raw_redis, 4), "the grandchild's drop")
        assert invalidator.stats()["ShardsFinished"] == 2


async def test_pages_of_shards_are_all_followed(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE, page_size=1, shards=3)
    for at, shard in enumerate(streams.open_shards()):
        streams.write(_key(f"k{at}"), shard=shard)
    async with _running(streams, server):
        await _until(lambda: _count(raw_redis, 3), "a drop from every shard")
    assert streams.calls["describe_stream"] >= 3


async def test_trimmed_past_the_checkpoint_drops_the_table_and_reads_from_the_horizon(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    first = streams.write(_key("a"))
    shard = streams.shard_ids[0]
    async with _running(streams, server):
        await _until(_checkpointed(raw_redis, shard, first), "the checkpoint")
    streams.write(_key("lost"))
    streams.write(_key("kept"))
    streams.trim(shard, 2)  # "a" and "lost" are gone while no invalidator ran
    async with _running(streams, server) as invalidator:
        await _until(
            _has(raw_redis, [(TABLE, "a"), (TABLE, None), (TABLE, "kept")]), "the table's drop"
        )
        assert invalidator.stats()["Trims"] == 1


async def test_expired_iterators_and_throttling_lose_nothing(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    streams.write(_key("a"))
    async with _running(streams, server) as invalidator:
        await _until(_has(raw_redis, [(TABLE, "a")]), "the first drop")
        streams.expire_iterators()
        streams.fail("get_records", "LimitExceededException", times=3)
        streams.fail("get_records", "InternalServerError")
        streams.fail("describe_stream", "LimitExceededException", times=2)
        streams.write(_key("b"))
        await _until(_has(raw_redis, [(TABLE, "a"), (TABLE, "b")]), "the second drop")
        await _until(
            lambda: _async(streams.calls["describe_stream"] >= 5), "listings after throttling"
        )
        stats = invalidator.stats()
        assert stats["ExpiredIterators"] >= 1
        assert stats["Throttles"] == 6
        assert stats["ShardsReading"] == 1


@pytest.mark.parametrize("end", ["delete", "disable"])
async def test_the_streams_end_drops_the_table_and_ends_the_run(
    end: str, server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    streams.write(_key("a"))
    invalidator = _invalidator(streams, server)
    run = asyncio.create_task(invalidator.run())
    await _until(_has(raw_redis, [(TABLE, "a")]), "the first drop")
    if end == "delete":
        streams.delete()
        expected = [(TABLE, "a"), (TABLE, None)]
    else:
        streams.write(_key("last"))
        streams.disable()
        expected = [(TABLE, "a"), (TABLE, "last"), (TABLE, None)]
    async with asyncio.timeout(10):
        await run
    assert await _bus(raw_redis) == expected
    assert invalidator.tables_gone == [TABLE]


async def test_a_table_without_a_stream_is_refused(server: RedisServer) -> None:
    streams = FakeStreams(TABLE)
    invalidator = aiodax.StreamsInvalidator(
        ["not-streamed"], client=streams, redis=server.url, namespace=NAMESPACE
    )
    with pytest.raises(aiodax.StreamNotEnabledError, match="not-streamed"):
        async with invalidator:
            pass
    streams.disable()
    with pytest.raises(aiodax.StreamNotEnabledError):
        await _invalidator(streams, server).run()


async def test_two_invalidators_split_the_shards(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE, shards=4)
    async with _running(streams, server) as one, _running(streams, server) as two:
        await _until(
            lambda: _async(one.stats()["ShardsReading"] + two.stats()["ShardsReading"] >= 4),
            "every shard read",
        )
        for at, shard in enumerate(streams.open_shards()):
            streams.write(_key(f"k{at}"), shard=shard)
        await _until(lambda: _count(raw_redis, 4), "four drops")
        await asyncio.sleep(0.1)
        # One reader a shard: every record was published once.
        assert sorted(key for _, key in await _bus(raw_redis)) == ["k0", "k1", "k2", "k3"]  # type: ignore[type-var]
        assert one.stats()["Records"] + two.stats()["Records"] == 4
    # The leases' holder left: a third takes every shard at once.
    streams.write(_key("after"), shard=streams.open_shards()[0])
    async with _running(streams, server, lease_time=30.0):
        await _until(lambda: _count(raw_redis, 5), "the drop after both left")


async def _count(raw: redis.Redis, count: int) -> bool:
    return len(await _bus(raw)) >= count


async def _async(value: bool) -> bool:
    return value


async def test_a_redis_outage_is_waited_out_and_loses_nothing(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    streams.write(_key("a"))
    async with _running(streams, server) as invalidator:
        await _until(_has(raw_redis, [(TABLE, "a")]), "the first drop")
        await asyncio.to_thread(server.kill)
        streams.write(_key("b"))
        await _until(lambda: _async(invalidator.stats()["RedisFailures"] > 0), "a failure noticed")
        await asyncio.to_thread(server.restart)  # empty: the bus starts over

        async def b_sent() -> bool:
            try:
                return (TABLE, "b") in await _bus(raw_redis)
            except RedisConnectionError:  # the test's own connection died with the server
                return False

        await _until(b_sent, "the drop sent after the outage")


async def test_start_latest_drops_the_table_once_then_follows_the_tip(
    server: RedisServer, raw_redis: redis.Redis
) -> None:
    streams = FakeStreams(TABLE)
    streams.write(_key("old1"))
    streams.write(_key("old2"))
    async with _running(streams, server, start="latest"):
        await _until(_has(raw_redis, [(TABLE, None)]), "the table's drop")
        new = streams.write(_key("new"))
        await _until(_has(raw_redis, [(TABLE, None), (TABLE, "new")]), "the new record's drop")

        async def checkpointed() -> bool:
            found = await raw_redis.hget(
                f"{Keys(NAMESPACE).prefix}s:c:{TABLE}", streams.shard_ids[0]
            )
            return bool(found == new.encode())

        await _until(checkpointed, "the checkpoint")
    # Checkpointed: a restart resumes after it, whatever ``start`` says.
    streams.write(_key("later"))
    async with _running(streams, server, start="latest"):
        await _until(
            _has(raw_redis, [(TABLE, None), (TABLE, "new"), (TABLE, "later")]), "the resumed drop"
        )


def test_bad_options_are_refused() -> None:
    streams = FakeStreams(TABLE)
    for options in ({"start": "now"}, {"poll_interval": 0}, {"lease_time": True}):
        with pytest.raises(aiodax.ConfigurationError):
            aiodax.StreamsInvalidator([TABLE], client=streams, redis="redis://127.0.0.1", **options)
    with pytest.raises(aiodax.ConfigurationError):
        aiodax.StreamsInvalidator(TABLE, client=streams, redis="redis://127.0.0.1")

"""The Redis tier's pure parts: its options, its key layout, and its bus messages, which
decode to an invalidation only when they are exactly one."""

from __future__ import annotations

import sys

import msgpack
import pytest

import aiodax
from aiodax._tiers import Invalidation
from aiodax._tiers.redis.codec import MAX_MESSAGE_BYTES, decode, encode
from aiodax._tiers.redis.keys import Keys, key_digest, request_digest

URL = "redis://127.0.0.1:6399/0"

# ---------------------------------------------------------------- options


def test_a_url_gives_a_tier_with_the_documented_defaults() -> None:
    tier = aiodax.RedisTier(URL)
    assert (tier.namespace, tier.shared_l2, tier.degraded_ttl, tier.lease_time) == (
        "default",
        True,
        2.0,
        1.0,
    )


@pytest.mark.parametrize(
    "url", ["rediss://user:secret@127.0.0.1:6380/1", "unix:///tmp/redis.sock", URL]
)
def test_redis_rediss_and_unix_urls_are_taken(url: str) -> None:
    assert aiodax.RedisTier(url).url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", ""])
def test_a_url_of_another_scheme_is_refused(url: str) -> None:
    with pytest.raises(aiodax.ConfigurationError, match="redis://"):
        aiodax.RedisTier(url)


@pytest.mark.parametrize("namespace", ["", "a{b}", "a:b", "a b", "x" * 65])
def test_a_namespace_that_could_break_out_of_its_keys_is_refused(namespace: str) -> None:
    with pytest.raises(aiodax.ConfigurationError, match="namespace"):
        aiodax.RedisTier(URL, namespace=namespace)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("lease_time", 0, aiodax.ConfigurationError),
        ("degraded_ttl", -1.0, aiodax.ConfigurationError),
        ("timeout", float("inf"), aiodax.ConfigurationError),
        ("liveness", "1", aiodax.ConfigurationTypeError),
        ("outbox_limit", 0, aiodax.ConfigurationError),
        ("max_value_bytes", 1.5, aiodax.ConfigurationTypeError),
        ("shared_l2", 1, aiodax.ConfigurationTypeError),
    ],
)
def test_bad_tier_options_are_refused_by_name(option: str, value: object, error: type) -> None:
    with pytest.raises(error, match=option):
        aiodax.RedisTier(URL, **{option: value})  # type: ignore[arg-type]


def test_a_tier_s_repr_never_shows_its_password() -> None:
    shown = repr(aiodax.RedisTier("redis://app:hunter2@127.0.0.1:6380/0", namespace="ns"))
    assert "hunter2" not in shown
    assert "127.0.0.1:6380" in shown and "ns" in shown


def test_the_cache_takes_a_url_and_a_namespace() -> None:
    aiodax.Cache(redis=URL, namespace="orders-prod")


def test_the_cache_refuses_a_namespace_without_redis() -> None:
    with pytest.raises(aiodax.ConfigurationError, match="redis="):
        aiodax.Cache(namespace="orders")


def test_the_cache_refuses_a_second_namespace_beside_a_tier() -> None:
    with pytest.raises(aiodax.ConfigurationError, match="namespace"):
        aiodax.Cache(redis=aiodax.RedisTier(URL, namespace="a"), namespace="b")


def test_the_cache_refuses_redis_beside_its_own_bus() -> None:
    from tests.unit.fakes import RecordingBus

    with pytest.raises(aiodax.ConfigurationError, match="bus="):
        aiodax.Cache(redis=URL, bus=RecordingBus())


def test_the_cache_refuses_a_redis_that_is_neither_url_nor_tier() -> None:
    with pytest.raises(aiodax.ConfigurationTypeError, match="RedisTier"):
        aiodax.Cache(redis=6379)  # type: ignore[arg-type]


def test_redis_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(aiodax.MissingExtraError, match=r"aiodax\[redis\]"):
        aiodax.Cache(redis=URL)


# --------------------------------------------------------------- key layout


def test_every_key_of_a_namespace_shares_its_hash_tag() -> None:
    keys = Keys("orders-prod")
    names = [
        keys.bus,
        keys.seq,
        keys.epoch,
        keys.everything,
        keys.item("t", "d"),
        keys.item_generation("t", "d"),
        keys.page_generation("t"),
        keys.table_generation("t"),
        keys.page("t", "d"),
        keys.lease("d"),
    ]
    assert all(name.startswith("aiodax:v1:{orders-prod}:") for name in names)
    assert len(set(names)) == len(names)


def test_equal_keys_and_requests_digest_alike_and_others_apart() -> None:
    assert key_digest(("pk", "S", "a")) == key_digest(("pk", "S", "a"))
    assert key_digest(("pk", "S", "a")) != key_digest(("pk", "B", b"a"))
    request = {"TableName": "t", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "v"}
    reordered = {"ProjectionExpression": "v", "Key": {"pk": {"S": "a"}}, "TableName": "t"}
    assert request_digest("s", "get_item", request) == request_digest("s", "get_item", reordered)
    assert request_digest("s", "get_item", request) != request_digest("z", "get_item", request)
    assert request_digest("s", "get_item", request) != request_digest("s", "query", request)


# ------------------------------------------------------------ bus messages


@pytest.mark.parametrize(
    "invalidation",
    [
        Invalidation(None),
        Invalidation("orders"),
        Invalidation("orders", ("pk", "S", "a")),
        Invalidation("orders", ("pk", "B", b"\x00\xff", "sk", "N", "1.5")),
    ],
)
def test_an_invalidation_survives_its_message(invalidation: Invalidation) -> None:
    assert decode(encode("origin", invalidation)) == ("origin", invalidation)


@pytest.mark.parametrize(
    "message",
    [
        [2, "o", "t", None],  # another version
        [1, "o", "t"],  # short
        [1, 7, "t", None],  # origin not a string
        [1, "o", "", None],  # empty table name
        [1, "o", "t" * 256, None],  # longer than any DynamoDB table name
        [1, "o", None, ["pk", "S", "a"]],  # a key without its table
        [1, "o", "t", ["pk", "S"]],  # a key cut short
        [1, "o", "t", ["pk", "S", b"a"]],  # a string key holding bytes
        [1, "o", "t", ["pk", "X", "a"]],  # no such key type
        [1, "o", "t", ["sk", "S", "a", "pk", "S", "b"]],  # parts out of order
        {"table": "t"},
    ],
)
def test_anything_but_an_invalidation_decodes_to_none(message: object) -> None:
    assert decode(msgpack.packb(message, use_bin_type=True)) is None


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x93\x01", "text", None])
def test_bytes_that_are_not_msgpack_decode_to_none(data: object) -> None:
    assert decode(data) is None


def test_an_oversized_message_is_not_even_unpacked() -> None:
    big = msgpack.packb([1, "o", "t", ["pk", "S", "x" * MAX_MESSAGE_BYTES]], use_bin_type=True)
    assert decode(big) is None


def test_stream_bounds_stale_tables() -> None:
    from aiodax._tiers.redis.watermarks import interval, stale_tables

    bounds = {"a": 2.0, "b": 0.5, "c": 1.0}
    # a: 1.5 s old (within 2 s); b: 0.6 s old (past 0.5 s); c: no watermark.
    assert stale_tables(bounds, 10_000, [8_500, 9_400, -1]) == {"b", "c"}
    assert stale_tables(bounds, 10_000, [10_000, 10_000, 9_000]) == frozenset()
    assert interval(bounds) == 0.125
    assert interval({"a": 60.0}) == 0.25
    assert interval({"a": 0.01}) == 0.05

"""Validation and resolution of ``Cache`` and ``TableConfig`` options."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest

import aiodax
from aiodax import ConfigurationError, ConfigurationTypeError, TableConfig

TTL_NAMES = ("item_ttl", "negative_ttl", "query_ttl")


@pytest.mark.parametrize("name", TTL_NAMES)
@pytest.mark.parametrize("value", [-1, -0.001, -math.inf, math.nan])
def test_cache_rejects_negative_or_nan_ttl(name: str, value: float) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(ConfigurationError, match=name) as raised:
        aiodax.Cache(**options)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("name", TTL_NAMES)
@pytest.mark.parametrize("value", [True, False, "5", b"5", [5], object()])
def test_cache_rejects_ttl_that_is_not_a_number(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationTypeError, match=name) as raised:
        aiodax.Cache(**{name: value})
    assert isinstance(raised.value, TypeError)


@pytest.mark.parametrize("name", TTL_NAMES)
@pytest.mark.parametrize("value", [-1, math.nan])
def test_table_config_rejects_bad_ttl_value(name: str, value: float) -> None:
    overrides: dict[str, Any] = {name: value}
    with pytest.raises(ConfigurationError, match=name):
        TableConfig(**overrides)


@pytest.mark.parametrize("name", TTL_NAMES)
@pytest.mark.parametrize("value", [True, "5"])
def test_table_config_rejects_ttl_of_wrong_type(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationTypeError, match=name):
        TableConfig(**{name: value})


@pytest.mark.parametrize("value", [1.5, "1024", True, None, 2.0**20])
def test_max_bytes_must_be_an_int(value: Any) -> None:
    with pytest.raises(ConfigurationTypeError, match="max_bytes"):
        aiodax.Cache(max_bytes=value)


@pytest.mark.parametrize("value", [0, -1])
def test_max_bytes_must_be_positive(value: int) -> None:
    with pytest.raises(ConfigurationError, match="max_bytes"):
        aiodax.Cache(max_bytes=value)


@pytest.mark.parametrize("value", ["", "PARTITION", "tables", "all", None])
def test_query_invalidation_must_be_a_known_mode(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="query_invalidation"):
        aiodax.Cache(query_invalidation=value)


@pytest.mark.parametrize("mode", ["partition", "table", "none"])
def test_query_invalidation_modes_are_accepted(mode: str) -> None:
    assert aiodax.Cache(query_invalidation=mode).config.query_invalidation == mode


def test_clock_must_be_callable() -> None:
    with pytest.raises(ConfigurationTypeError, match="clock"):
        aiodax.Cache(clock=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.5, None, "random"])
def test_random_must_be_callable(value: Any) -> None:
    with pytest.raises(ConfigurationTypeError, match=r"random must be a callable .*\[0, 1\)"):
        aiodax.Cache(random=value)


def test_random_is_refresh_aheads_and_defaults_to_the_standard_library() -> None:
    assert aiodax.Cache().config.draw is random.random
    draw = random.Random(7).random
    assert aiodax.Cache(random=draw).config.draw is draw


def test_unknown_cache_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="item_tll"):
        aiodax.Cache(item_tll=5)  # type: ignore[call-arg]


def test_unknown_table_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="ttl"):
        TableConfig(ttl=5)  # type: ignore[call-arg]


@pytest.mark.parametrize("value", [{"item_ttl": 5}, 5, None, "TableConfig"])
def test_table_override_must_be_a_table_config(value: Any) -> None:
    with pytest.raises(ConfigurationTypeError, match="orders"):
        aiodax.Cache(tables={"orders": value})


@pytest.mark.parametrize("key", [1, None, b"orders", ""])
def test_table_override_key_must_be_a_table_name(key: Any) -> None:
    with pytest.raises(ConfigurationTypeError, match="tables"):
        aiodax.Cache(tables={key: TableConfig()})


def test_tables_must_be_a_mapping() -> None:
    with pytest.raises(ConfigurationTypeError, match="tables"):
        aiodax.Cache(tables=[("orders", TableConfig())])  # type: ignore[arg-type]


def test_defaults_are_five_minutes() -> None:
    ttls = aiodax.Cache().config.ttls_for("orders")
    assert (ttls.item, ttls.negative, ttls.query) == (300, 300, 300)


def test_none_ttl_never_expires_and_zero_stays_zero() -> None:
    ttls = aiodax.Cache(item_ttl=None, query_ttl=0).config.ttls_for("orders")
    assert ttls.item == math.inf
    assert ttls.negative == math.inf
    assert ttls.query == 0


def test_negative_ttl_none_inherits_item_ttl() -> None:
    assert aiodax.Cache(item_ttl=7, negative_ttl=None).config.ttls_for("t").negative == 7
    assert aiodax.Cache(item_ttl=0).config.ttls_for("t").negative == 0


def test_explicit_negative_ttl_is_kept() -> None:
    ttls = aiodax.Cache(item_ttl=7, negative_ttl=2).config.ttls_for("t")
    assert (ttls.item, ttls.negative) == (7, 2)


def test_explicit_negative_ttl_none_in_table_config_follows_table_item_ttl() -> None:
    cache = aiodax.Cache(tables={"t": TableConfig(item_ttl=5, negative_ttl=None)})
    assert cache.config.ttls_for("t").negative == 5


def test_table_item_ttl_carries_into_inherited_negative_ttl() -> None:
    cache = aiodax.Cache(item_ttl=60, tables={"t": TableConfig(item_ttl=5)})
    ttls = cache.config.ttls_for("t")
    assert (ttls.item, ttls.negative, ttls.query) == (5, 5, 300)


def test_cache_negative_ttl_applies_to_table_overriding_item_ttl_only() -> None:
    cache = aiodax.Cache(negative_ttl=7, tables={"t": TableConfig(item_ttl=5)})
    assert cache.config.ttls_for("t").negative == 7


def test_table_negative_ttl_overrides_everything() -> None:
    cache = aiodax.Cache(negative_ttl=7, tables={"t": TableConfig(item_ttl=5, negative_ttl=1)})
    assert cache.config.ttls_for("t").negative == 1


def test_table_none_ttl_never_expires_while_others_keep_cache_values() -> None:
    cache = aiodax.Cache(item_ttl=60, query_ttl=30, tables={"t": TableConfig(query_ttl=None)})
    ttls = cache.config.ttls_for("t")
    assert (ttls.item, ttls.negative, ttls.query) == (60, 60, math.inf)


def test_tables_without_override_get_cache_values() -> None:
    cache = aiodax.Cache(item_ttl=60, tables={"t": TableConfig(item_ttl=5)})
    ttls = cache.config.ttls_for("other")
    assert (ttls.item, ttls.negative, ttls.query) == (60, 60, 300)


def test_table_config_defaults_inherit() -> None:
    config = TableConfig()
    assert (config.item_ttl, config.negative_ttl, config.query_ttl) == (aiodax.INHERIT,) * 3


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (aiodax.Cache().config, "item_ttl"),
        (aiodax.Cache().config, "max_bytes"),
        (aiodax.Cache().config.ttls_for("t"), "item"),
        (TableConfig(item_ttl=5), "item_ttl"),
    ],
    ids=["CacheConfig.item_ttl", "CacheConfig.max_bytes", "TTLs.item", "TableConfig.item_ttl"],
)
def test_config_objects_are_frozen(obj: Any, field: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, 1)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"fill_consistency": "sometimes"}, ConfigurationError),
        ({"fill_consistency": None}, ConfigurationError),
        ({"fence": -1}, ConfigurationError),
        ({"fence": math.inf}, ConfigurationError),
        ({"fence": math.nan}, ConfigurationError),
        ({"fence": "2"}, ConfigurationTypeError),
        ({"fence": True}, ConfigurationTypeError),
    ],
)
def test_fill_options_are_validated(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(options))):
        aiodax.Cache(**options)
    with pytest.raises(error, match=next(iter(options))):
        TableConfig(**options)


def test_fill_options_default_to_a_two_second_fence_and_apply_per_table() -> None:
    cache = aiodax.Cache(
        fence=1.5,
        tables={
            "strong": TableConfig(fill_consistency="strong"),
            "unfenced": TableConfig(fence=0),
        },
    )
    assert aiodax.Cache().config.fills_for("t").fence == 2.0
    assert cache.config.fills_for("other").fence == 1.5
    assert cache.config.fills_for("strong").consistency == "strong"
    assert cache.config.fills_for("strong").fence == 1.5
    assert not cache.config.fills_for("unfenced").fences
    assert cache.config.longest_fence == 1.5
    assert aiodax.Cache(fill_consistency="eventual").config.longest_fence == 0.0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"refresh_ahead": 0}, ConfigurationError),
        ({"refresh_ahead": -1.0}, ConfigurationError),
        ({"refresh_ahead": math.inf}, ConfigurationError),
        ({"refresh_ahead": math.nan}, ConfigurationError),
        ({"refresh_ahead": "1"}, ConfigurationTypeError),
        ({"refresh_ahead": True}, ConfigurationTypeError),
        ({"stale_while_revalidate": -1}, ConfigurationError),
        ({"stale_while_revalidate": math.nan}, ConfigurationError),
        ({"stale_while_revalidate": None}, ConfigurationTypeError),
        ({"stale_if_error": -0.5}, ConfigurationError),
        ({"stale_if_error": "10"}, ConfigurationTypeError),
    ],
)
def test_freshness_options_are_validated(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(options))):
        aiodax.Cache(**options)
    with pytest.raises(error, match=next(iter(options))):
        TableConfig(**options)


def test_freshness_policies_are_off_by_default_and_apply_per_table() -> None:
    assert not aiodax.Cache().config.ttls_for("t").freshness.any
    cache = aiodax.Cache(
        refresh_ahead=1.0,
        stale_if_error=60,
        tables={
            "swr": TableConfig(stale_while_revalidate=5, refresh_ahead=None),
            "eager": TableConfig(refresh_ahead=2),
        },
    )
    other = cache.config.ttls_for("other").freshness
    assert (other.refresh_ahead, other.stale_while_revalidate, other.stale_if_error) == (
        1.0,
        0.0,
        60.0,
    )
    swr = cache.config.ttls_for("swr").freshness
    assert (swr.refresh_ahead, swr.stale_while_revalidate, swr.stale_if_error) == (
        None,
        5.0,
        60.0,
    )
    assert cache.config.ttls_for("eager").freshness.refresh_ahead == 2.0

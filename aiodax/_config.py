"""Frozen, validated configuration.

Everything a user can set is checked here, once, at construction; the engine then
reads plain attributes and never re-validates on the hot path.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from ._errors import ConfigurationError, ConfigurationTypeError
from ._rules.freshness import NO_FRESHNESS, Freshness

Clock: TypeAlias = Callable[[], float]
#: Uniform draws in [0, 1): refresh-ahead's randomness (``_rules.freshness.decide``).
Draw: TypeAlias = Callable[[], float]
QueryInvalidation: TypeAlias = Literal["partition", "table", "none"]
FillConsistency: TypeAlias = Literal["fenced", "strong", "eventual"]

DEFAULT_TTL: Final = 300.0
DEFAULT_MAX_BYTES: Final = 64 * 2**20
#: Seconds a drop fences fills: AWS says an eventually consistent read is consistent
#: "usually within one second"; twice that covers the usual case with room.
DEFAULT_FENCE: Final = 2.0
QUERY_INVALIDATION_MODES: Final = ("partition", "table", "none")
FILL_CONSISTENCY_MODES: Final = ("fenced", "strong", "eventual")


class _Inherit(Enum):
    INHERIT = "inherit"

    def __repr__(self) -> str:
        return "INHERIT"


#: A ``TableConfig`` field left at ``INHERIT`` takes the ``Cache``-wide value.
INHERIT: Final = _Inherit.INHERIT


def check_ttl(name: str, value: object) -> float:
    """Return ``value`` as seconds: ``None`` (never expires) becomes ``math.inf``."""
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationTypeError(
            f"{name} must be a number of seconds or None, not {type(value).__name__}"
        )
    try:
        value = float(value)
    except OverflowError:
        raise ConfigurationError(f"{name} is too large; use None for no expiry") from None
    if math.isnan(value) or value < 0:
        raise ConfigurationError(f"{name} must be >= 0 seconds or None, got {value!r}")
    return float(value)


def check_fence(name: str, value: object) -> float:
    """Return ``value`` as seconds of fence: a finite number >= 0 (``0``: no fence)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationTypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def check_refresh_ahead(name: str, value: object) -> float | None:
    """Return XFetch's ``β``: ``None`` (off) or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationTypeError(
            f"{name} must be XFetch's beta (a number > 0, 1.0 typical) or None, "
            f"not {type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"{name} must be a finite number > 0 (1.0 typical) or None, got {value!r}"
        )
    return float(value)


def check_stale(name: str, value: object) -> float:
    """Return seconds past an entry's TTL it may be served: a number >= 0 or ``math.inf``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationTypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    if math.isnan(value) or value < 0:
        raise ConfigurationError(f"{name} must be >= 0 seconds, got {value!r}")
    return float(value)


def check_fill_consistency(name: str, value: object) -> FillConsistency:
    if value not in FILL_CONSISTENCY_MODES:
        raise ConfigurationError(f"{name} must be one of {FILL_CONSISTENCY_MODES}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TTLs:
    """Resolved lifetimes in seconds: ``0`` = not cached, ``math.inf`` = never expires."""

    item: float
    negative: float
    query: float
    freshness: Freshness = NO_FRESHNESS


@dataclass(frozen=True, slots=True)
class Fills:
    """How a table's misses read DynamoDB: ``consistency``, and the fence in seconds."""

    consistency: FillConsistency
    fence: float

    @property
    def fences(self) -> bool:
        """Whether a drop makes the table's next fills consistent for a while."""
        return self.consistency == "fenced" and self.fence > 0


@dataclass(frozen=True, slots=True)
class TableConfig:
    """Per-table overrides of the ``Cache``-wide TTLs and fill rules (same meaning,
    same units)."""

    item_ttl: float | _Inherit | None = INHERIT
    negative_ttl: float | _Inherit | None = INHERIT
    query_ttl: float | _Inherit | None = INHERIT
    fill_consistency: str | _Inherit = INHERIT
    fence: float | _Inherit = INHERIT
    refresh_ahead: float | _Inherit | None = INHERIT
    stale_while_revalidate: float | _Inherit = INHERIT
    stale_if_error: float | _Inherit = INHERIT

    def __post_init__(self) -> None:
        if self.refresh_ahead is not INHERIT:
            check_refresh_ahead("TableConfig.refresh_ahead", self.refresh_ahead)
        for name in ("stale_while_revalidate", "stale_if_error"):
            value = getattr(self, name)
            if value is not INHERIT:
                check_stale(f"TableConfig.{name}", value)
        for name in ("item_ttl", "negative_ttl", "query_ttl"):
            value = getattr(self, name)
            if value is not INHERIT:
                check_ttl(f"TableConfig.{name}", value)
        if self.fill_consistency is not INHERIT:
            check_fill_consistency("TableConfig.fill_consistency", self.fill_consistency)
        if self.fence is not INHERIT:
            check_fence("TableConfig.fence", self.fence)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The validated options of one ``Cache``; see ``Cache`` for their meaning."""

    item_ttl: float = DEFAULT_TTL
    negative_ttl: float = DEFAULT_TTL
    query_ttl: float = DEFAULT_TTL
    max_bytes: int = DEFAULT_MAX_BYTES
    query_invalidation: QueryInvalidation = "partition"
    tables: Mapping[str, TTLs] = field(default_factory=dict)
    clock: Clock = time.monotonic
    #: refresh-ahead's draws; the field is named apart from the module it defaults from
    draw: Draw = random.random
    fill_consistency: FillConsistency = "fenced"
    fence: float = DEFAULT_FENCE
    table_fills: Mapping[str, Fills] = field(default_factory=dict)
    freshness: Freshness = NO_FRESHNESS

    @classmethod
    def build(
        cls,
        *,
        item_ttl: float | None,
        negative_ttl: float | None,
        query_ttl: float | None,
        max_bytes: int,
        query_invalidation: str,
        tables: Mapping[str, TableConfig] | None,
        clock: Clock,
        draw: Draw = random.random,
        fill_consistency: str = "fenced",
        fence: float = DEFAULT_FENCE,
        refresh_ahead: float | None = None,
        stale_while_revalidate: float = 0.0,
        stale_if_error: float = 0.0,
    ) -> CacheConfig:
        item = check_ttl("item_ttl", item_ttl)
        # A missing item is news as much as a present one: by default it lives as
        # long, as in DAX, which has a single item TTL.
        negative = item if negative_ttl is None else check_ttl("negative_ttl", negative_ttl)
        query = check_ttl("query_ttl", query_ttl)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
            raise ConfigurationTypeError(
                f"max_bytes must be an int, not {type(max_bytes).__name__}"
            )
        if max_bytes <= 0:
            raise ConfigurationError(f"max_bytes must be > 0, got {max_bytes!r}")
        if query_invalidation not in QUERY_INVALIDATION_MODES:
            raise ConfigurationError(
                f"query_invalidation must be one of {QUERY_INVALIDATION_MODES}, "
                f"got {query_invalidation!r}"
            )
        consistency = check_fill_consistency("fill_consistency", fill_consistency)
        fence = check_fence("fence", fence)
        freshness = Freshness(
            check_refresh_ahead("refresh_ahead", refresh_ahead),
            check_stale("stale_while_revalidate", stale_while_revalidate),
            check_stale("stale_if_error", stale_if_error),
        )
        if not callable(clock):
            raise ConfigurationTypeError("clock must be a callable returning seconds")
        if not callable(draw):
            raise ConfigurationTypeError(
                f"random must be a callable returning a float in [0, 1), not {type(draw).__name__}"
            )
        if tables is not None and not isinstance(tables, Mapping):
            raise ConfigurationTypeError(
                f"tables must map table names to aiodax.TableConfig, not {type(tables).__name__}"
            )
        resolved: dict[str, TTLs] = {}
        fills: dict[str, Fills] = {}
        for table, override in (tables or {}).items():
            if not isinstance(table, str) or not table:
                raise ConfigurationTypeError(f"tables keys must be table names, got {table!r}")
            if not isinstance(override, TableConfig):
                raise ConfigurationTypeError(
                    f"tables[{table!r}] must be an aiodax.TableConfig, "
                    f"not {type(override).__name__}"
                )
            table_item = _pick(override.item_ttl, item, f"tables[{table!r}].item_ttl")
            if override.negative_ttl is None or (
                override.negative_ttl is INHERIT and negative_ttl is None
            ):
                table_negative = table_item  # "None" means "as long as items live"
            else:
                table_negative = _pick(
                    override.negative_ttl, negative, f"tables[{table!r}].negative_ttl"
                )
            resolved[table] = TTLs(
                item=table_item,
                negative=table_negative,
                query=_pick(override.query_ttl, query, f"tables[{table!r}].query_ttl"),
                freshness=Freshness(
                    freshness.refresh_ahead
                    if override.refresh_ahead is INHERIT
                    else check_refresh_ahead(
                        f"tables[{table!r}].refresh_ahead", override.refresh_ahead
                    ),
                    freshness.stale_while_revalidate
                    if override.stale_while_revalidate is INHERIT
                    else check_stale(
                        f"tables[{table!r}].stale_while_revalidate",
                        override.stale_while_revalidate,
                    ),
                    freshness.stale_if_error
                    if override.stale_if_error is INHERIT
                    else check_stale(f"tables[{table!r}].stale_if_error", override.stale_if_error),
                ),
            )
            fills[table] = Fills(
                consistency
                if override.fill_consistency is INHERIT
                else check_fill_consistency(
                    f"tables[{table!r}].fill_consistency", override.fill_consistency
                ),
                fence
                if override.fence is INHERIT
                else check_fence(f"tables[{table!r}].fence", override.fence),
            )
        return cls(
            item_ttl=item,
            negative_ttl=negative,
            query_ttl=query,
            max_bytes=max_bytes,
            query_invalidation=query_invalidation,  # type: ignore[arg-type]
            tables=MappingProxyType(resolved),
            clock=clock,
            draw=draw,
            fill_consistency=consistency,
            fence=fence,
            table_fills=MappingProxyType(fills),
            freshness=freshness,
        )

    def fills_for(self, table: str) -> Fills:
        found = self.table_fills.get(table)
        if found is not None:
            return found
        return Fills(self.fill_consistency, self.fence)

    @property
    def longest_fence(self) -> float:
        """The longest fence of any table: what a drop of everything fences."""
        fenced = [f.fence for f in (self.fills_for(""), *self.table_fills.values()) if f.fences]
        return max(fenced, default=0.0)

    def ttls_for(self, table: str) -> TTLs:
        found = self.tables.get(table)
        if found is not None:
            return found
        return TTLs(
            item=self.item_ttl,
            negative=self.negative_ttl,
            query=self.query_ttl,
            freshness=self.freshness,
        )


def _pick(value: float | _Inherit | None, inherited: float, name: str) -> float:
    return inherited if value is INHERIT else check_ttl(name, value)

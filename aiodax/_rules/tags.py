"""The one vocabulary of store keys and tags: what a drop names, and what it finds.

Every entry is stored under a key and filed under tags; a drop names keys or tags.
A write must find exactly the Query and Scan pages it can make stale, so the tags a
page is filed under (``page_tags``) and the tags a write drops
(``pages_dropped_by_write``) are defined here, side by side, and nowhere else.

- An item is stored under ``(table, *canonical key)`` and tagged with its table
  (``table`` is the table's token: ``_rules.tables``).
- A page is stored under ``(table, "pages", operation, fingerprint)`` and tagged
  ``(table, "pages")``, plus, with ``query_invalidation="partition"``, either the
  partition its base-table Query pins, ``(table, "partition", key part)``, or
  ``(table, "table-wide")`` (scans, index queries, unreadable key conditions),
  which every write to the table drops.

The same names serve as the *scopes* of ``_engine.guards``' generations: a fill
is refused when any scope it was filed under was dropped while it was out.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final, Literal, TypeAlias

from .tables import TableToken
from .wire import ItemKey, KeyPart

StoreKey: TypeAlias = tuple[Hashable, ...]
Tags: TypeAlias = tuple[Hashable, ...]
QueryInvalidation: TypeAlias = Literal["partition", "table", "none"]

_PAGES: Final = "pages"
_PARTITION: Final = "partition"
_TABLE_WIDE: Final = "table-wide"


def item_key(table: TableToken, key: ItemKey) -> StoreKey:
    return (table, *key)


def item_tags(table: TableToken) -> Tags:
    return (table,)


def item_scopes(table: TableToken, key: ItemKey) -> Tags:
    """What a drop names that makes a fill of ``key``'s item stale: the item, its table."""
    return (item_key(table, key), table)


def page_key(table: TableToken, operation: str, fingerprint: Hashable) -> StoreKey:
    return (table, _PAGES, operation, fingerprint)


def table_of(store_key: StoreKey) -> TableToken:
    return store_key[0]  # type: ignore[return-value]


def page_tags(table: TableToken, mode: QueryInvalidation, partition: KeyPart | None) -> Tags:
    """The tags of a page; ``partition`` is what its base-table Query pins, if anything."""
    if mode != "partition":
        return ((table, _PAGES),)
    if partition is not None:
        return ((table, _PAGES), (table, _PARTITION, partition))
    return ((table, _PAGES), (table, _TABLE_WIDE))


def pages_dropped_by_write(
    table: TableToken, mode: QueryInvalidation, partition: KeyPart | None
) -> Tags:
    """The page tags a write to an item of ``partition`` (``None``: unknown) drops."""
    if mode == "none":
        return ()
    if mode == "table" or partition is None:
        return ((table, _PAGES),)
    return ((table, _PARTITION, partition), (table, _TABLE_WIDE))


def table_tags(table: TableToken) -> Tags:
    """The tags under which every entry of ``table`` is filed: its items, its pages."""
    return (table, (table, _PAGES))

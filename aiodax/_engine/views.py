"""A facade's form of cached answers, kept with the entry it was made of.

The engine answers in wire form.  A facade that speaks another form (the resource's
Python values) hands the engine a ``View``: ``view(wire)`` takes a wire item or
response (the callee's to keep) and returns a function handing out copies of it in
the facade's form, each the caller's own, and the bytes that function holds.  A
view is made once per entry, on its fill or first read, and kept in
``entry.view``; an entry is never updated in place (fills and writes store new
entries), so a view never outlives what it was made of.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from .._rules.projection import Projection
from .._rules.responses import thaw_page
from .._rules.tables import TableToken
from .._rules.tags import StoreKey, item_key
from .._rules.wire import ItemKey, WireItem
from .._store import Entry, ItemEntry, PageEntry, Store

#: See the module docstring.
View: TypeAlias = Callable[[Any], tuple[Callable[[], Any], int]]


def keep_view(
    store: Store, store_key: StoreKey, entry: Entry, view: View, value: Any
) -> Callable[[], Any]:
    """Make ``entry``'s view of ``value`` (its image or page) and account for its size."""
    copies, size = view(value)
    entry.view = copies
    store.grow(store_key, entry, size)
    return copies


def item_copies(
    store: Store,
    table: TableToken,
    key: ItemKey,
    projection: Projection | None,
    image: WireItem,
    view: View,
) -> Callable[[], Any]:
    """``image`` of ``key`` in ``view``'s form, kept with the whole item's entry.

    A projection is converted each time: its image is not the entry's.
    """
    if projection is None:
        store_key = item_key(table, key)
        entry = store.peek(store_key)
        if isinstance(entry, ItemEntry) and entry.image is image:
            return entry.view or keep_view(store, store_key, entry, view, image)
    return view(image)[0]


def page_copies(
    store: Store, store_key: StoreKey, page: dict[str, Any], view: View
) -> Callable[[], Any]:
    """``page`` in ``view``'s form, kept with the page while the store holds it."""
    entry = store.peek(store_key)
    if isinstance(entry, PageEntry) and entry.page is page:
        return entry.view or keep_view(store, store_key, entry, view, thaw_page(page))
    return view(thaw_page(page))[0]


def response_in_view(response: dict[str, Any], view: View | None) -> dict[str, Any]:
    """An uncached ``response`` in ``view``'s form (made once: nothing keeps it)."""
    return response if view is None else view(response)[0]()


def get_response_in_view(response: dict[str, Any], view: View | None) -> dict[str, Any]:
    """An uncached GetItem ``response`` with its item in an item ``view``'s form."""
    if view is not None and "Item" in response:
        response["Item"] = view(response["Item"])[0]()
    return response


def batch_response_in_view(response: dict[str, Any], view: View | None) -> dict[str, Any]:
    """An uncached BatchGetItem ``response``, items and keys in an item ``view``'s form."""
    if view is not None:
        for items in (response.get("Responses") or {}).values():
            items[:] = [view(item)[0]() for item in items]
        for spec in (response.get("UnprocessedKeys") or {}).values():
            spec["Keys"] = [view(key)[0]() for key in spec.get("Keys", ())]
    return response

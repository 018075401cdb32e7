"""The hit paths: ``get_item`` closures that answer the commonest hits in their first lines.

A hit is the operation aiodax exists for, so its cost is measured
(``benchmarks/hit_latency.py``, ``hit_instructions.py``) and kept below an
async-lru hit.  Each closure reaches its entry through local names only: the
store's dict, the clock, the counters.  Anything that is not a plain fresh hit
goes to the general path (``ItemReads.get_item``) with the request as it came.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from .._backend import Backend
from .._rules.responses import HIT_METADATA
from .._rules.wire import ItemKey
from .._store import ItemEntry
from .shared import Shared
from .views import View, keep_view

#: A keyword argument the caller did not pass (``None`` may be one it did).
_ABSENT: Final = object()


def bind_client_get_item(
    shared: Shared,
    backend: Backend,
    general: Callable[[Backend, dict[str, Any]], Awaitable[dict[str, Any]]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """``get_item(**request)`` of the client flavour, for one backend.

    The commonest call (``TableName`` and a one-attribute string ``Key``) is
    answered here.  ``TableName`` and ``Key`` are keyword-only parameters rather
    than entries of ``**request`` because Python binds them to locals without
    building a dict, which is a sixth of a hit.
    """
    entries = shared.store.entries
    clock = shared.clock
    stats = shared.stats
    metadata = HIT_METADATA

    async def get_item(
        *, TableName: Any = _ABSENT, Key: Any = _ABSENT, **request: Any
    ) -> dict[str, Any]:
        if not request and type(Key) is dict and len(Key) == 1 and type(TableName) is str:
            for name in Key:
                value = Key[name]
            if type(value) is dict and len(value) == 1 and "S" in value:
                raw = value["S"]
                if type(raw) is str and raw:
                    entry = entries.get((TableName, name, "S", raw))
                    if entry is not None and clock() < entry.expires_at:
                        entry.referenced = True
                        image = entry.image  # type: ignore[union-attr]
                        stats.item_hits += 1
                        if image is not None:
                            return {"Item": image.copy(), "ResponseMetadata": metadata}
                        stats.negative_hits += 1
                        return {"ResponseMetadata": metadata}
        if Key is not _ABSENT:
            request = {"Key": Key, **request}
        if TableName is not _ABSENT:
            request = {"TableName": TableName, **request}
        return await general(backend, request)

    return get_item


def bind_table_get_item(
    shared: Shared,
    table: str,
    *,
    key_of: Callable[[dict[Any, Any]], ItemKey | None],
    view: View,
    meta: Any,
    general: Callable[[dict[str, Any]], Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """``get_item(**kwargs)`` of a facade holding keys and items in another form.

    The resource facade's items are Python values; converting the wire image on
    every hit would cost many times the hit itself.  So a hit serves the entry's
    own *view* of the item (``_engine.views``), made when the facade first reads
    the entry (a miss through ``general`` or the first hit here).

    A hit needs ``kwargs`` to be ``{"Key": key}``.  A one-attribute key whose value
    is a non-empty ``str`` names the string key with that value (that is how the
    facade spells one); ``key_of`` canonicalizes any other key or says ``None``.
    Every hit sets ``meta.data`` to ``None``, as a boto3 resource forgets its
    loaded attributes after each action (``meta`` is the table's ``ResourceMeta``;
    an attribute store here costs a third of a call).  Everything that is no hit
    goes to ``general`` with ``kwargs``.
    """
    store = shared.store
    entries = store.entries
    clock = shared.clock
    stats = shared.stats
    metadata = HIT_METADATA

    def store_key_of(key: dict[Any, Any]) -> tuple[Any, ...] | None:
        canonical = key_of(key)
        return None if canonical is None else (table, *canonical)

    def first_hit(store_key: tuple[Any, ...], entry: ItemEntry) -> Callable[[], Any] | None:
        if entry.image is None:
            stats.negative_hits += 1
            return None
        return keep_view(store, store_key, entry, view, entry.image)

    async def get_item(*, Key: Any = _ABSENT, **kwargs: Any) -> Any:
        if not kwargs and type(Key) is dict:
            store_key: tuple[Any, ...] | None
            if len(Key) == 1:
                for name in Key:
                    value = Key[name]
                if type(value) is str and value:
                    store_key = (table, name, "S", value)
                else:
                    store_key = store_key_of(Key)
            else:
                store_key = store_key_of(Key)
            if store_key is not None:
                entry = entries.get(store_key)
                if entry is not None and clock() < entry.expires_at:
                    entry.referenced = True
                    stats.item_hits += 1
                    meta.data = None
                    copies = entry.view
                    if copies is None:
                        copies = first_hit(store_key, entry)  # type: ignore[arg-type]
                        if copies is None:
                            return {"ResponseMetadata": metadata}
                    return {"Item": copies(), "ResponseMetadata": metadata}
        if Key is not _ABSENT:
            kwargs = {"Key": Key, **kwargs}
        return await general(kwargs)

    return get_item

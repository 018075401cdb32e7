"""The hit paths: closures that answer the commonest hits in their first lines.

A hit is the operation aiodax exists for, so its cost is measured
(``benchmarks/hit_latency.py``, ``hit_instructions.py``) and kept at or below an
async-lru hit for every common key shape.  Each closure reaches its entries
through local names only: the store's dict and the clock; a hit counts itself in
the counters its entry holds (its table's, ``_stats``).  Anything
that is not a plain fresh hit (another parameter, a projection, an expired entry,
a key these functions do not read) goes to the general path with the request as
it came, which answers it or asks DynamoDB.

The keys built here are the store's (``_rules.tags.item_key``) as the caller
spelled them: the store holds canonical spellings only, so a lookup under any
other spelling misses and the general path canonicalizes it (``hit_keys``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from .._backend import Backend
from .._rules.responses import HIT_METADATA
from .._rules.tables import FIRST_SITE, TableToken, table_token
from .._rules.wire import ItemKey
from .._store import Entry, ItemEntry
from .hit_keys import StoreKeyOf, python_store_key, remembered_texts, wire_store_key
from .shared import Shared
from .views import View, keep_view

#: A keyword argument the caller did not pass (``None`` may be one it did).
_ABSENT: Final = object()
#: DynamoDB's limit of keys in a BatchGetItem.
_BATCH_LIMIT: Final = 100


def bind_item_hit(shared: Shared) -> Callable[[tuple[Any, ...]], dict[str, Any] | None]:
    """``hit(store_key)``: the GetItem answer of a fresh whole-item entry, or ``None``."""
    entries = shared.store.entries
    clock = shared.clock
    metadata = HIT_METADATA

    def hit(store_key: tuple[Any, ...]) -> dict[str, Any] | None:
        entry = entries.get(store_key)
        if entry is None or not clock() < entry.expires_at:
            return None
        entry.referenced = True
        image = entry.image  # type: ignore[union-attr]
        entry.counts.item_hits += 1
        if image is not None:
            return {"Item": image.copy(), "ResponseMetadata": metadata}
        entry.counts.negative_hits += 1
        return {"ResponseMetadata": metadata}

    return hit


def bind_client_get_item(
    shared: Shared,
    backend: Backend,
    general: Callable[[Backend, dict[str, Any]], Awaitable[dict[str, Any]]],
) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    """``get_item(**request)`` of the client flavour, for one backend.

    A plain call (``TableName`` and a ``Key`` of one or two attributes, on the
    first site a cache meets) is answered on local names only, its store key built
    inline.  ``TableName`` and ``Key`` are keyword-only parameters rather than
    entries of ``**request`` because Python binds them to locals without building
    a dict, which is a sixth of a hit.
    """
    site = shared.sites.site_of(backend)
    if site != FIRST_SITE:
        return _bind_client_get_item_on_site(shared, site, backend, general)
    entries = shared.store.entries
    clock = shared.clock
    metadata = HIT_METADATA

    async def get_item(
        *, TableName: Any = _ABSENT, Key: Any = _ABSENT, **request: Any
    ) -> dict[str, Any]:
        # What is no plain request goes first: the hit's jumps stay short.
        if request or type(Key) is not dict or type(TableName) is not str:
            if Key is not _ABSENT:
                request = {"Key": Key, **request}
            if TableName is not _ABSENT:
                request = {"TableName": TableName, **request}
            return await general(backend, request)
        # The key's store key, inline for one and two attributes (a call would cost
        # a tenth of a hit).  Any value but a string or bytes (DynamoDB's scalars on
        # the wire: S, N's text, B) is no lookup; the store holds no other.
        if len(Key) == 1:
            [name] = Key
            value = Key[name]
            if type(value) is not dict or len(value) != 1:
                return await general(backend, {"TableName": TableName, "Key": Key})
            # The commonest types without an iterator over ``value``, the dearest step here.
            if "S" in value:
                wire_type, raw = "S", value["S"]
            elif "N" in value:
                wire_type, raw = "N", value["N"]
            else:
                [wire_type] = value
                raw = value[wire_type]
            if type(raw) is not str and type(raw) is not bytes:
                return await general(backend, {"TableName": TableName, "Key": Key})
            store_key: tuple[Any, ...] = (TableName, name, wire_type, raw)
        elif len(Key) == 2:
            name_a, name_b = Key
            value_a, value_b = Key[name_a], Key[name_b]
            if (
                type(value_a) is not dict
                or type(value_b) is not dict
                or len(value_a) != 1
                or len(value_b) != 1
                or type(name_a) is not str
                or type(name_b) is not str
            ):
                return await general(backend, {"TableName": TableName, "Key": Key})
            if "S" in value_a:
                type_a, raw_a = "S", value_a["S"]
            else:
                [type_a] = value_a
                raw_a = value_a[type_a]
            if "S" in value_b:
                type_b, raw_b = "S", value_b["S"]
            else:
                [type_b] = value_b
                raw_b = value_b[type_b]
            if (type(raw_a) is not str and type(raw_a) is not bytes) or (
                type(raw_b) is not str and type(raw_b) is not bytes
            ):
                return await general(backend, {"TableName": TableName, "Key": Key})
            if name_a < name_b:
                store_key = (TableName, name_a, type_a, raw_a, name_b, type_b, raw_b)
            else:
                store_key = (TableName, name_b, type_b, raw_b, name_a, type_a, raw_a)
        else:
            return await general(backend, {"TableName": TableName, "Key": Key})
        try:
            entry = entries[store_key]
        except KeyError:
            return await general(backend, {"TableName": TableName, "Key": Key})
        if clock() < entry.expires_at:
            entry.referenced = True
            image = entry.image  # type: ignore[union-attr]
            entry.counts.item_hits += 1
            if image is not None:
                return {"Item": image.copy(), "ResponseMetadata": metadata}
            entry.counts.negative_hits += 1
            return {"ResponseMetadata": metadata}
        return await general(backend, {"TableName": TableName, "Key": Key})

    return get_item


def _bind_client_get_item_on_site(
    shared: Shared,
    site: int,
    backend: Backend,
    general: Callable[[Backend, dict[str, Any]], Awaitable[dict[str, Any]]],
) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    """``bind_client_get_item`` for a client of any site but the first: its tables'
    tokens are ``(site, TableName)`` (``_rules.tables``)."""
    hit = bind_item_hit(shared)

    async def get_item(
        *, TableName: Any = _ABSENT, Key: Any = _ABSENT, **request: Any
    ) -> dict[str, Any]:
        if not request and type(Key) is dict and type(TableName) is str:
            store_key = wire_store_key((site, TableName), Key)
            if store_key is not None:
                answer = hit(store_key)
                if answer is not None:
                    return answer
        if Key is not _ABSENT:
            request = {"Key": Key, **request}
        if TableName is not _ABSENT:
            request = {"TableName": TableName, **request}
        return await general(backend, request)

    return get_item


def bind_table_get_item(
    shared: Shared,
    table: TableToken,
    *,
    key_of: Callable[[dict[Any, Any]], ItemKey | None],
    view: View,
    meta: Any,
    general: Callable[[dict[str, Any]], Awaitable[Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
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
    metadata = HIT_METADATA
    store_key_of = python_store_key(key_of)
    number_texts, text_of = remembered_texts()

    def first_hit(store_key: tuple[Any, ...], entry: ItemEntry) -> Callable[[], Any] | None:
        if entry.image is None:
            entry.counts.negative_hits += 1
            return None
        return keep_view(store, store_key, entry, view, entry.image)

    async def get_item(*, Key: Any = _ABSENT, **kwargs: Any) -> Any:
        # What is no plain key goes first: the hit's jumps stay short (no EXTENDED_ARG).
        if kwargs or type(Key) is not dict:
            if Key is not _ABSENT:
                kwargs = {"Key": Key, **kwargs}
            return await general(kwargs)
        # A one-attribute key's store key, inline (a call would cost a tenth of a
        # hit): a string, an integer and bytes are boto3's S, N and B; an int's text
        # is its number_text.  Anything else (two attributes, a Decimal, Binary, an
        # int past DynamoDB's range) is ``store_key_of``'s.
        store_key: tuple[Any, ...] | None
        if len(Key) == 1:
            [name] = Key
            value = Key[name]
            kind = type(value)
            if kind is str:
                store_key = (table, name, "S", value)
            elif kind is int:
                try:
                    store_key = (table, name, "N", number_texts[value])
                except KeyError:
                    text = text_of(value)
                    store_key = (
                        store_key_of(table, Key) if text is None else (table, name, "N", text)
                    )
            elif kind is bytes:
                store_key = (table, name, "B", value)
            else:
                store_key = store_key_of(table, Key)
        else:
            store_key = store_key_of(table, Key)
        if store_key is None:
            return await general({"Key": Key})
        try:
            entry = entries[store_key]  # a subscript: cheaper than dict.get, a call
        except KeyError:
            return await general({"Key": Key})
        if clock() < entry.expires_at:
            entry.referenced = True
            entry.counts.item_hits += 1
            meta.data = None
            copies = entry.view
            if copies is None:
                copies = first_hit(store_key, entry)  # type: ignore[arg-type]
                if copies is None:
                    return {"ResponseMetadata": metadata}
            return {"Item": copies(), "ResponseMetadata": metadata}
        return await general({"Key": Key})

    return get_item


def _fresh_entries(
    request_items: Any,
    site: int,
    store_key_of: StoreKeyOf,
    entries: dict[Any, Entry],
    now: float,
) -> dict[str, list[tuple[tuple[Any, ...], ItemEntry]]] | None:
    """Every key of ``RequestItems`` with a fresh whole-item entry, or ``None``.

    ``None`` unless each table asks for ``Keys`` alone (no projection, no
    consistent read), no key twice and at most 100 in all, and every one is a hit.
    """
    found: dict[str, list[tuple[tuple[Any, ...], ItemEntry]]] = {}
    count = 0
    for table, spec in request_items.items():
        if type(table) is not str or type(spec) is not dict or len(spec) != 1:
            return None
        keys = spec.get("Keys")
        if type(keys) is not list or not keys:
            return None
        count += len(keys)
        if count > _BATCH_LIMIT:
            return None
        token = table_token(table, site)
        hits = []
        for key in keys:
            store_key = store_key_of(token, key) if type(key) is dict else None
            if store_key is None:
                return None
            try:
                entry = entries[store_key]
            except KeyError:
                return None
            if not now < entry.expires_at:
                return None
            hits.append((store_key, entry))
        if len({store_key for store_key, _ in hits}) != len(hits):
            return None  # DynamoDB refuses duplicate keys: let it say so
        found[table] = hits  # type: ignore[assignment]
    return found or None


def bind_batch_get_item(
    shared: Shared,
    site: int,
    store_key_of: StoreKeyOf,
    view: View | None,
    general: Callable[[dict[str, Any]], Awaitable[Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``batch_get_item(**request)`` answering a batch whose every key is a fresh hit.

    ``store_key_of`` reads the facade's keys (``wire_store_key``, or the resource's
    ``python_store_key``); with ``view``, items are served from their entries'
    views, as ``bind_table_get_item`` serves them.  Anything else goes to
    ``general(request)``.
    """
    store = shared.store
    entries = store.entries
    clock = shared.clock

    async def batch_get_item(*, RequestItems: Any = _ABSENT, **request: Any) -> Any:
        if not request and type(RequestItems) is dict:
            found = _fresh_entries(RequestItems, site, store_key_of, entries, clock())
            if found is not None:
                responses: dict[str, list[Any]] = {}
                for table, hits in found.items():
                    items = responses[table] = []
                    for store_key, entry in hits:
                        entry.referenced = True
                        image = entry.image
                        entry.counts.item_hits += 1
                        if image is None:
                            entry.counts.negative_hits += 1
                        elif view is None:
                            items.append(image.copy())
                        else:
                            copies = entry.view or keep_view(store, store_key, entry, view, image)
                            items.append(copies())
                return {
                    "Responses": responses,
                    "UnprocessedKeys": {},
                    "ResponseMetadata": HIT_METADATA,
                }
        if RequestItems is not _ABSENT:
            request = {"RequestItems": RequestItems, **request}
        return await general(request)

    return batch_get_item

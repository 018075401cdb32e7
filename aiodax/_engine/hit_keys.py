"""Store keys read from a caller's ``Key`` as it is spelled, for the hit paths.

A hit path must find its entry without canonicalizing the key (that would cost
more than the hit): these readers build the store key (``_rules.tags.item_key``)
of a key spelled the way DynamoDB returns it, and nothing else.  The store holds
canonical spellings only, so a key spelled otherwise finds no entry and the
general path canonicalizes it.  ``fast_path`` inlines the commonest of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .._rules.tables import TableToken
from .._rules.wire import ItemKey

#: Integers between these are printed by Python (and are DynamoDB numbers when
#: they have at most 38 significant digits; if not, no entry has their spelling).
_INT_LOW: Final = -(10**126)
_INT_HIGH: Final = 10**126
#: How many integer keys' texts a table's hit path remembers (a hundred bytes each).
_REMEMBERED_TEXTS: Final = 1024
#: What a key's raw value may be to be looked up as it is (strings, numbers' text, bytes).
_SCALARS: Final = frozenset({str, bytes})


StoreKeyOf = Callable[[TableToken, dict[Any, Any]], "tuple[Any, ...] | None"]


def wire_store_key(table: TableToken, key: dict[Any, Any]) -> tuple[Any, ...] | None:
    """The store key a wire ``Key`` of one or two attributes names if spelled canonically.

    Nothing is converted or checked: the store holds canonical spellings only
    (``_rules.wire``: strings and bytes as they are, numbers in ``number_text``'s
    form), so a key spelled otherwise, or no key at all, finds no entry here and
    takes the general path, which canonicalizes it.  ``None``: not even a lookup.
    """
    # An S attribute is read without an iterator over it, as ``fast_path`` reads it:
    # the iterator is the dearest step of reading a key.
    if len(key) == 1:
        for name in key:
            value = key[name]
        if type(value) is dict and len(value) == 1:
            if "S" in value:
                wire_type, raw = "S", value["S"]
            else:
                for wire_type in value:
                    raw = value[wire_type]
            return (table, name, wire_type, raw) if type(raw) in _SCALARS else None
        return None
    if len(key) != 2:
        return None
    (name_a, value_a), (name_b, value_b) = key.items()
    if type(value_a) is not dict or type(value_b) is not dict:
        return None
    if len(value_a) != 1 or len(value_b) != 1 or type(name_a) is not str or type(name_b) is not str:
        return None
    if "S" in value_a:
        type_a, raw_a = "S", value_a["S"]
    else:
        for type_a in value_a:
            raw_a = value_a[type_a]
    if "S" in value_b:
        type_b, raw_b = "S", value_b["S"]
    else:
        for type_b in value_b:
            raw_b = value_b[type_b]
    if type(raw_a) not in _SCALARS or type(raw_b) not in _SCALARS:
        return None
    if name_a < name_b:
        return (table, name_a, type_a, raw_a, name_b, type_b, raw_b)
    return (table, name_b, type_b, raw_b, name_a, type_a, raw_a)


def remembered_texts() -> tuple[dict[int, str], Callable[[int], str | None]]:
    """Integer keys' texts, and the function adding one (``None``: past DynamoDB's range).

    Formatting an int and hashing the new text is a tenth of a hit: a resource hit
    path looks its integers' texts up here, up to ``_REMEMBERED_TEXTS`` at a time.
    """
    texts: dict[int, str] = {}

    def text_of(number: int) -> str | None:
        if not _INT_LOW < number < _INT_HIGH:
            return None
        if len(texts) >= _REMEMBERED_TEXTS:
            texts.clear()
        text = texts[number] = f"{number}"
        return text

    return texts, text_of


def python_store_key(
    key_of: Callable[[dict[Any, Any]], ItemKey | None],
) -> StoreKeyOf:
    """The store key of a facade's ``Key`` in Python values, or ``None``.

    Strings, integers and bytes (DynamoDB's ``S``, ``N`` and ``B``, as boto3
    serializes them) are read here; any other value, and any key of other than one
    or two attributes, is canonicalized by ``key_of``.  An empty string or bytes
    finds no entry (none is stored under one) and goes the general way.
    """
    number_texts, text_of = remembered_texts()

    def store_key_of(table: TableToken, key: dict[Any, Any]) -> tuple[Any, ...] | None:
        if len(key) == 2:
            (name_a, value_a), (name_b, value_b) = key.items()
            kind_a, kind_b = type(value_a), type(value_b)
            if kind_a is str and value_a:
                type_a = "S"
            elif kind_a is int and (text := number_texts.get(value_a) or text_of(value_a)):
                type_a, value_a = "N", text  # an int's text is its number_text
            elif kind_a is bytes:
                type_a = "B"
            else:
                type_a = None
            if kind_b is str and value_b:
                type_b = "S"
            elif kind_b is int and (text := number_texts.get(value_b) or text_of(value_b)):
                type_b, value_b = "N", text
            elif kind_b is bytes:
                type_b = "B"
            else:
                type_b = None
            if type_a is not None and type_b is not None and type(name_a) is type(name_b) is str:
                if name_a < name_b:
                    return (table, name_a, type_a, value_a, name_b, type_b, value_b)
                return (table, name_b, type_b, value_b, name_a, type_a, value_a)
        canonical = key_of(key)
        return None if canonical is None else (table, *canonical)

    return store_key_of

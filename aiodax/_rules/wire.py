"""DynamoDB's wire format (``{"S": "x"}``): canonical keys, images, sizes.

The engine works on wire-format requests and responses only.  This module turns
them into the hashable, type-exact forms the store and the flights are keyed by,
and into the compact *images* the store holds and copies out on a hit.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Hashable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final, NoReturn, TypeAlias

#: ``(attribute name, wire type, canonical value[, name, type, value])``, sorted
#: by name.  Flat, so that hashing a store key walks one tuple, not two.
ItemKey: TypeAlias = tuple[Any, ...]
#: Wire item as DynamoDB returns it: attribute name → ``{type: value}``.
WireItem: TypeAlias = dict[str, Any]
#: What the store keeps of an item (see ``freeze``); ``None`` is a missing item.
Image: TypeAlias = "WireItem | None"


#: One key attribute in canonical form: ``(name, wire type, canonical value)``.
KeyPart: TypeAlias = tuple[str, str, Hashable]


def key_part(name: object, value: object) -> KeyPart | None:
    """One wire key attribute in canonical form, or ``None`` if it cannot be a key."""
    # isinstance, not type(): a value taken from a served item is a ReadOnlyDict.
    if type(name) is not str or not isinstance(value, dict) or len(value) != 1:
        return None
    ((wire_type, raw),) = value.items()
    if wire_type == "S":
        return (name, "S", raw) if type(raw) is str and raw else None
    if wire_type == "N":
        number = number_value(raw)
        return None if number is None else (name, "N", number_text(number))
    if wire_type == "B":
        data = binary_value(raw)
        return (name, "B", data) if data else None
    return None


def canonical_key(key: object) -> ItemKey | None:
    """The type-exact, hashable form of a wire key; ``None`` if it cannot be a key.

    Numbers compare by value (``"1"`` and ``"1.0"`` name the same item in DynamoDB:
    both are ``"1"``, see ``number_text``), strings and binaries by content, and the
    type tag keeps ``{"N": "1"}`` apart from ``{"S": "1"}``.  A key this function
    rejects is sent to DynamoDB uncached, so the caller gets DynamoDB's own error.
    """
    if type(key) is not dict:
        return None
    if len(key) == 1:
        for name, value in key.items():
            return key_part(name, value)
    if len(key) == 2:
        (name_a, value_a), (name_b, value_b) = key.items()
        return composite_key(key_part(name_a, value_a), key_part(name_b, value_b))
    return None


def composite_key(part_a: KeyPart | None, part_b: KeyPart | None) -> ItemKey | None:
    """Two attributes' canonical parts as one key, sorted by name; ``None`` if either is."""
    if part_a is None or part_b is None:
        return None
    return (*part_a, *part_b) if part_a[0] < part_b[0] else (*part_b, *part_a)


_NUMBER_CONTEXT: Final = Context(prec=60)  # exact for anything DynamoDB accepts

#: DynamoDB's number syntax; Python's Decimal also takes "1_000", " 1 " and "NaN".
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def number_value(raw: object) -> Decimal | None:
    """The value of a wire number, or ``None`` for what DynamoDB would refuse.

    DynamoDB takes up to 38 significant digits, magnitudes from 1E-130 to below
    1E+126, and no NaN or infinity.
    """
    if type(raw) is not str or _NUMBER.fullmatch(raw) is None:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return None
    if number.is_zero():
        return number
    digits = number.normalize(_NUMBER_CONTEXT).as_tuple().digits
    if len(digits) > 38 or not -130 <= number.adjusted() <= 125:
        return None
    return number


def number_text(number: Decimal) -> str:
    """A number's one spelling: as DynamoDB returns it (``1.50`` → ``"1.5"``, ``1e2`` → ``"100"``).

    Keys hold numbers in this form, so that every spelling of one value names one
    entry and a hit path can look a key up as the caller spelled it: the store
    holds only these spellings, so a hit proves the spelling canonical and any
    other misses there and is canonicalized on the general path.
    """
    if number.is_zero():
        return "0"
    return format(_NUMBER_CONTEXT.normalize(number), "f")


def binary_value(raw: object) -> bytes | None:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    if isinstance(raw, str):
        # botocore sends a str blob as its UTF-8 bytes; DynamoDB returns bytes.
        return raw.encode("utf-8")
    return None


# ---------------------------------------------------------------------------
# Images: what the store keeps of an item, and the copies a hit hands out.


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        "attribute values served by aiodax are read-only (the cache shares them); "
        "assign a new value, e.g. item['n'] = {'N': '5'}, or copy.deepcopy() the item"
    )


class ReadOnlyDict(dict[str, Any]):
    """A wire attribute value (``{"S": "x"}``) or map that refuses to change.

    Every value a cached response holds is shared with the cache, so a hit costs
    one shallow copy of the item instead of a deep one; a caller that tries to
    change a shared value in place gets a ``TypeError`` rather than corrupting
    what the next caller reads.  Copies (``copy()``, ``dict()``, ``copy.copy``,
    ``copy.deepcopy``, pickling) are ordinary dicts.
    """

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def copy(self) -> dict[str, Any]:
        return dict(self)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class ReadOnlyList(list[Any]):
    """A wire list or set (``L``, ``SS``, ``NS``, ``BS``) shared with the cache."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = clear = extend = insert = pop = remove = reverse = sort = _read_only

    def copy(self) -> list[Any]:
        return list(self)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def freeze(item: Mapping[str, Any] | None, *, written: bool = False) -> Image:
    """A private image of a wire item: nothing the caller holds aliases it.

    The image is a plain dict of read-only attribute values; ``thaw`` hands out
    shallow copies of it.  An item a caller ``written`` (rather than one DynamoDB
    returned) gets its numbers in the form DynamoDB returns them in: normalized
    at the top level (``N`` and ``NS``), as sent inside maps and lists, which is
    what DynamoDB Local answers.
    """
    if item is None:
        return None
    return {name: _freeze_value(value, written) for name, value in item.items()}


def _freeze_value(value: Any, written: bool) -> Any:
    if type(value) is not dict and not isinstance(value, Mapping):
        return value
    frozen: dict[str, Any] = {}
    for wire_type, raw in value.items():
        if wire_type == "M":
            frozen["M"] = ReadOnlyDict({k: _freeze_value(v, False) for k, v in raw.items()})
        elif wire_type == "L":
            frozen["L"] = ReadOnlyList([_freeze_value(v, False) for v in raw])
        elif wire_type == "BS":
            frozen["BS"] = ReadOnlyList([binary_value(v) for v in raw])
        elif wire_type == "NS" and written:
            frozen["NS"] = ReadOnlyList([dynamodb_number(v) for v in raw])
        elif wire_type in ("SS", "NS"):
            frozen[wire_type] = ReadOnlyList(raw)
        elif wire_type == "B":
            frozen["B"] = binary_value(raw)
        elif wire_type == "N" and written:
            frozen["N"] = dynamodb_number(raw)
        else:
            frozen[wire_type] = raw
    return ReadOnlyDict(frozen)


def dynamodb_number(raw: Any) -> Any:
    """A number as DynamoDB returns it: ``"1.50"`` → ``"1.5"``, ``"1e2"`` → ``"100"``.

    A string that is no number is left alone: DynamoDB refused the write anyway.
    """
    number = number_value(raw)
    return raw if number is None else number_text(number)


def thaw(image: Image) -> WireItem | None:
    """The item a caller gets: its own top-level dict over read-only values."""
    return None if image is None else image.copy()


# ---------------------------------------------------------------------------
# Sizes: what an entry costs in memory, close to what tracemalloc would count.

_getsizeof = sys.getsizeof


def size_of(obj: object) -> int:
    """Approximate bytes held by ``obj`` and everything it contains (not shared)."""
    size = _getsizeof(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            size += _getsizeof(key) + size_of(value)
    elif isinstance(obj, tuple | list):
        for value in obj:
            size += size_of(value)
    return size

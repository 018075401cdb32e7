"""The bus's messages: what one process tells the others, as bounded, validated msgpack.

A message is ``[1, origin, table, key]``: the version, the sending process's
random ``origin``, the bare table name (``None``: every table) and the item key
(``None``: the whole table), the ``Invalidation`` it carries.  Keys only, never
values: a message can only make a process drop something.  Anything that is not
such a message decodes to ``None`` and is counted, never applied in part; pickle
is never involved.  Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from ..._rules.wire import ItemKey
from .. import Invalidation

VERSION: Final = 1
#: A DynamoDB key is at most 2 KiB (partition) + 1 KiB (sort); names, tags, the
#: table name and the envelope fit well inside this.
MAX_MESSAGE_BYTES: Final = 8 * 1024
_KEY_TYPES: Final = {"S": str, "N": str, "B": bytes}


def encode(origin: str, invalidation: Invalidation) -> bytes:
    """``invalidation`` as a message from ``origin``."""
    key = None if invalidation.key is None else list(invalidation.key)
    return msgpack.packb([VERSION, origin, invalidation.table, key], use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: object) -> tuple[str, Invalidation] | None:
    """The origin and invalidation ``data`` carries, or ``None`` if it carries none."""
    if not isinstance(data, bytes) or len(data) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = msgpack.unpackb(data, raw=False, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(message, list) or len(message) != 4 or message[0] != VERSION:
        return None
    _, origin, table, key = message
    if not isinstance(origin, str) or not (table is None or _is_table(table)):
        return None
    if key is None:
        return origin, Invalidation(table)
    item_key = _item_key(key)
    if item_key is None or table is None:
        return None
    return origin, Invalidation(table, item_key)


def _is_table(table: Any) -> bool:
    return isinstance(table, str) and 0 < len(table) <= 255


def _item_key(key: Any) -> ItemKey | None:
    """``key`` as an ``ItemKey`` (``_rules.wire``: name, type, value per attribute)."""
    if not isinstance(key, list) or len(key) not in (3, 6):
        return None
    for at in range(0, len(key), 3):
        name, kind, value = key[at : at + 3]
        if not isinstance(name, str) or not name or _KEY_TYPES.get(kind) is not type(value):
            return None
    if len(key) == 6 and not key[0] < key[3]:
        return None  # two attributes are sorted by name (``composite_key``)
    return tuple(key)

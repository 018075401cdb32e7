"""Projections and fingerprints: which attributes a read asks for, and what a request is.

A read's projection (``ProjectionExpression`` with its names, or the legacy
``AttributesToGet``) is read into one canonical form, so that two spellings of the
same projection share a cache entry; a fingerprint is the hashable, type-exact
form of a whole Query or Scan request, the key of its cached page.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

from .wire import WireItem

#: One canonical projection: sorted, placeholder-free document paths.
Projection: TypeAlias = tuple[str, ...]


def projection_of(request: Mapping[str, Any]) -> Projection | Literal[False] | None:
    """The canonical projection of a read request.

    ``None`` = the whole item; ``False`` = a projection aiodax cannot read, which
    the caller then sends uncached so that DynamoDB judges it.
    """
    expression = request.get("ProjectionExpression")
    legacy = request.get("AttributesToGet")
    if expression is None and legacy is None:
        return False if "ExpressionAttributeNames" in request else None
    if expression is not None and legacy is not None:
        return False
    if legacy is not None:
        if not isinstance(legacy, list | tuple) or not legacy:
            return False
        if not all(isinstance(name, str) and name for name in legacy):
            return False
        return tuple(sorted({_path_text((name,)) for name in legacy}))
    names = request.get("ExpressionAttributeNames")
    if names is not None and (not isinstance(names, Mapping) or not names):
        return False
    if not isinstance(expression, str):
        return False
    names = names or {}
    used: set[str] = set()
    paths = []
    for raw_path in expression.split(","):
        path = _parse_path(raw_path.strip(), names, used)
        if path is None:
            return False
        paths.append(_path_text(path))
    if used != set(names):
        return False  # DynamoDB rejects unused names; let it say so
    return tuple(sorted(set(paths)))


def _parse_path(
    text: str, names: Mapping[str, Any], used: set[str]
) -> tuple[str | int, ...] | None:
    if not text:
        return None
    elements: list[str | int] = []
    for dotted in text.split("."):
        head, bracket, rest = dotted.partition("[")
        head = head.strip()
        if head.startswith("#"):
            resolved = names.get(head)
            if not isinstance(resolved, str):
                return None
            used.add(head)
            head = resolved
        elif not head.replace("_", "a").isalnum():
            return None
        elements.append(head)
        while bracket:
            index, closing, rest = rest.partition("]")
            index = index.strip()
            if not closing or not (index.isascii() and index.isdigit()):
                return None
            elements.append(int(index))
            rest = rest.strip()
            if not rest:
                break
            if not rest.startswith("["):
                return None
            rest = rest[1:]
    return tuple(elements)


def _path_text(path: tuple[str | int, ...]) -> str:
    # Escaping keeps ``a.b`` (a nested path) apart from an attribute named "a.b".
    return "".join(
        f"[{element}]"
        if isinstance(element, int)
        else "." + element.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[")
        for element in path
    )


def top_level_name(path: str) -> str | None:
    """The attribute a canonical path names when it is a top-level one, else ``None``."""
    name = path[1:]
    if "\\" not in name:
        return None if "[" in name or "." in name else name
    unescaped, escaped = [], False
    for char in name:
        if escaped:
            unescaped.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ".[":
            return None
        else:
            unescaped.append(char)
    return "".join(unescaped)


def top_level_names(projection: Projection) -> tuple[str, ...] | None:
    """Attribute names when every path is a top-level attribute, else ``None``."""
    names = []
    for path in projection:
        name = top_level_name(path)
        if name is None:
            return None
        names.append(name)
    return tuple(names)


def project(item: WireItem, names: Sequence[str]) -> WireItem:
    return {name: item[name] for name in names if name in item}


def fingerprint(value: Any) -> Hashable:
    """A hashable, type-exact and order-insensitive (for maps) form of request data.

    Never ``str()`` of a dict: that depends on insertion order and conflates
    ``True`` with ``"True"``.  ``1``, ``1.0`` and ``True`` are equal in Python, so
    scalars carry their type.
    """
    kind = type(value)
    if kind is str or value is None:
        return value  # type: ignore[no-any-return]
    if isinstance(value, dict):  # read-only maps from cached answers included
        return ("M", tuple(sorted((key, fingerprint(item)) for key, item in value.items())))
    if isinstance(value, list | tuple):
        return ("L", tuple(fingerprint(item) for item in value))
    if isinstance(value, bytes | bytearray):
        return ("B", bytes(value))
    if isinstance(value, set | frozenset):
        return ("S", frozenset(fingerprint(item) for item in value))
    return (kind.__name__, value)

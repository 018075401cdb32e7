"""Projections and fingerprints: which attributes a read asks for, and what a request is.

A read's projection (``ProjectionExpression`` with its names, or the legacy
``AttributesToGet``) is read into one canonical form, so that two spellings of the
same projection share a cache entry; a fingerprint is the hashable, type-exact
form of a whole Query or Scan request, the key of its cached page.

A projection is read as DynamoDB reads it, and one DynamoDB would refuse is not
read at all: a cached item must never answer a request DynamoDB answers with
``ValidationException`` (see ``projection_of`` for what is checked).  What this
module does not know to be valid is refused too, at the cost of a hit.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, TypeGuard

from .reserved import RESERVED_WORDS
from .wire import WireItem

#: One canonical projection: sorted, placeholder-free document paths.
Projection: TypeAlias = tuple[str, ...]
#: A document path's elements: attribute names and list indexes.
Path: TypeAlias = tuple[str | int, ...]

#: DynamoDB's limits on a projection, each past which it answers ValidationException.
MAX_EXPRESSION_LENGTH: Final = 4096  # "Expression size has exceeded the maximum allowed size"
MAX_DEPTH: Final = 32  # "The document path has too many nesting levels"
MAX_INDEX: Final = 2**31 - 1  # "List index is not within the allowable range"
MAX_NAME_BYTES: Final = 65535  # "Attribute name is too large, must be less than 65536 bytes"
MAX_PLACEHOLDER_LENGTH: Final = 255  # "a key that is too long"
#: "The maximum length of all substitution variables in an expression is 2 MB";
#: placeholders are counted with their names, which can only refuse more.
MAX_SUBSTITUTION_BYTES: Final = 2 * 1024 * 1024

_PLACEHOLDER: Final = re.compile(r"#[A-Za-z0-9_]+")
#: One document path between commas, white space (space, tab, CR, LF; not \f, \v
#: or Unicode spaces) around its tokens: its first name or ``#placeholder``, then
#: the rest, ``.name`` and ``[index]`` steps (no sign, no leading zero).
_PATH: Final = re.compile(
    r"[ \t\n\r]*(#?[A-Za-z0-9_]+)"
    r"((?:[ \t\n\r]*(?:\.[ \t\n\r]*#?[A-Za-z0-9_]+|\[[ \t\n\r]*(?:0|[1-9][0-9]*)[ \t\n\r]*\]))*)"
    r"[ \t\n\r]*"
)
#: The steps of a path's rest: (name or placeholder, "") or ("", index digits).
_STEPS: Final = re.compile(r"(#?[A-Za-z0-9_]+)|\[[ \t\n\r]*([0-9]+)")
#: A name spelled in an expression starts with an ASCII letter.
_NOT_A_NAME_START: Final = frozenset("0123456789_")
_MAX_INDEX_TEXT: Final = str(MAX_INDEX)


def projection_of(request: Mapping[str, Any]) -> Projection | Literal[False] | None:
    """The canonical projection of a read request.

    ``None`` = the whole item; ``False`` = a projection DynamoDB would refuse, or
    that aiodax cannot read, which the caller then sends uncached so that DynamoDB
    judges it.  Checked as DynamoDB (and DynamoDB Local) checks it:

    - ``ProjectionExpression``: not empty, at most 4 KB; comma-separated document
      paths of names (an ASCII letter, then letters, digits, ``_``; no reserved
      word, in any case), ``#placeholders`` and list indexes (``[0]``, no sign or
      leading zero, below 2**31), at most 32 levels deep, white space only
      between tokens; no two paths overlapping (``a, a``, ``a, a.b``) or
      conflicting (``a.b, a[0]``);
    - ``ExpressionAttributeNames``: only beside an expression, not empty, each
      key a ``#placeholder`` the expression uses, each name non-empty and below
      64 KB;
    - ``AttributesToGet``: not beside an expression or names, non-empty strings,
      none twice.
    """
    if "ProjectionExpression" in request:
        if "AttributesToGet" in request:
            return False
        return _expression(request["ProjectionExpression"], request)
    if "ExpressionAttributeNames" in request:
        return False  # names without an expression to use them
    if "AttributesToGet" in request:
        return _attributes_to_get(request["AttributesToGet"])
    return None


def _attributes_to_get(names: object) -> Projection | Literal[False]:
    if not isinstance(names, list | tuple) or not names:
        return False
    seen: set[str] = set()
    for name in names:
        if type(name) is not str or not name or name in seen:
            return False  # DynamoDB: "Cannot have two attributes with the same name"
        if _utf8_length(name) > MAX_NAME_BYTES:
            return False
        seen.add(name)
    return tuple(sorted(_path_text((name,)) for name in names))


def _expression(expression: object, request: Mapping[str, Any]) -> Projection | Literal[False]:
    if type(expression) is not str or len(expression) > MAX_EXPRESSION_LENGTH:
        return False
    names = request.get("ExpressionAttributeNames")
    if names is None:
        if "ExpressionAttributeNames" in request:
            return False
        names = {}
    elif not _valid_names(names):
        return False
    used: set[str] = set()
    paths = _parse(expression, names, used)
    if paths is None or used != names.keys() or not _disjoint(paths):
        return False  # DynamoDB refuses unused names too
    return tuple(sorted(_path_text(path) for path in paths))


def _valid_names(names: object) -> TypeGuard[dict[str, str]]:
    if not isinstance(names, dict) or not names:
        return False
    size = 0
    for placeholder, name in names.items():
        if type(placeholder) is not str or len(placeholder) > MAX_PLACEHOLDER_LENGTH:
            return False
        if _PLACEHOLDER.fullmatch(placeholder) is None:
            return False
        if type(name) is not str or not name:
            return False
        length = _utf8_length(name)
        if length > MAX_NAME_BYTES:
            return False
        size += len(placeholder) + length
    return size <= MAX_SUBSTITUTION_BYTES


def _utf8_length(text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:  # a lone surrogate: no name DynamoDB could hold
        return MAX_NAME_BYTES + 1


def _parse(text: str, names: Mapping[str, str], used: set[str]) -> list[Path] | None:
    """The document paths of an expression, or ``None``: a syntax DynamoDB refuses."""
    paths: list[Path] = []
    for spelled in text.split(","):  # no name or placeholder holds a comma
        match = _PATH.fullmatch(spelled)
        if match is None:
            return None
        first, rest = match.groups()
        element = _element(first, names, used)
        if element is None:
            return None
        if not rest:
            paths.append((element,))
            continue
        path: list[str | int] = [element]
        for name, index in _STEPS.findall(rest):
            if index:
                if len(index) > len(_MAX_INDEX_TEXT) or int(index) > MAX_INDEX:
                    return None
                path.append(int(index))
            else:
                element = _element(name, names, used)
                if element is None:
                    return None
                path.append(element)
        if len(path) > MAX_DEPTH:
            return None
        paths.append(tuple(path))
    return paths


def _element(token: str, names: Mapping[str, str], used: set[str]) -> str | None:
    """The attribute a name or ``#placeholder`` token names, or ``None``: refused."""
    if token[0] == "#":
        name = names.get(token)
        if name is not None:  # else DynamoDB: "An expression attribute name ... is not defined"
            used.add(token)
        return name
    if token[0] in _NOT_A_NAME_START or token.upper() in RESERVED_WORDS:
        return None
    return token


def _disjoint(paths: list[Path]) -> bool:
    """No path is another's prefix (they overlap) or takes it as a map and a list (conflict).

    The paths are walked into a tree of their elements: a path that ends where
    another goes on, or goes on where another ended, overlaps it; a node whose
    children mix names and indexes is a conflict.
    """
    if all(len(path) == 1 for path in paths):  # top-level names only, the commonest
        return len(set(paths)) == len(paths)
    root: dict[str | int, Any] = {}
    for path in paths:
        node = root
        last = len(path) - 1
        for depth, element in enumerate(path):
            for sibling in node:
                if type(sibling) is not type(element):
                    return False
                break
            if depth == last:
                if element in node:
                    return False
                node[element] = None  # a path ends here
            else:
                child = node.get(element)
                if child is None:
                    if element in node:
                        return False
                    child = node[element] = {}
                node = child
    return True


def _path_text(path: Path) -> str:
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

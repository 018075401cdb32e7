"""Python values ⇄ DynamoDB's wire format, for the resource flavour.

The engine speaks wire format.  The resource facade converts a request once on the
way in with boto3's own machinery (``TransformationInjector``:
``ConditionExpressionBuilder`` and ``TypeSerializer``), and responses with its
``TypeDeserializer``, so that every value, condition and error is exactly what
aioboto3's resource would produce.

A hit must not pay for ``TypeDeserializer`` (6–18 µs for ten attributes, the whole
item hit budget is about 1 µs; a millisecond for a 100-item page).  So each cached
item or page gets a *Python view* (``_engine.views``): converted once and kept beside
its wire form in the store entry (``ItemEntry.view``, ``PageEntry.view``); a hit
hands out a copy of it in which the containers and the ``Binary`` values are new.
Strings, ``Decimal``, the bytes inside a ``Binary``, booleans and ``None`` are
immutable, which makes that copy as safe as a deep one; a ``Binary`` is not (its
``value`` can be replaced), so each hit gets its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

# boto3 ships no type information; its DynamoDB helpers are used as documented.
from boto3.dynamodb.transform import (  # type: ignore[import-untyped]
    TransformationInjector,
    copy_dynamodb_params,
)
from boto3.dynamodb.types import (  # type: ignore[import-untyped]
    DYNAMODB_CONTEXT,
    Binary,
    TypeDeserializer,
)

from .._rules.wire import ItemKey, KeyPart, WireItem, composite_key, number_text

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel

_deserialize = TypeDeserializer().deserialize
_getsizeof = sys.getsizeof
_new = object.__new__
_CONTAINERS: Final = (dict, list, set)
#: Integers below this in magnitude have at most 38 digits: DynamoDB takes them as they are.
_NUMBER_LIMIT: Final = 10**38


def python_view(image: WireItem) -> tuple[Callable[[], dict[str, Any]], int]:
    """A function handing out copies of a cached item in Python values, and its size.

    The item is deserialized once, with boto3's ``TypeDeserializer`` as the
    resource's client deserializes responses, so a hit serves what a miss served.
    """
    return copies_of({name: _deserialize(value) for name, value in image.items()})


def copies_of(value: dict[str, Any]) -> tuple[Callable[[], dict[str, Any]], int]:
    """A function handing out copies of ``value`` (kept as it is), and its size.

    Each call returns the caller's own copy: new containers (maps, lists, sets) and
    new ``Binary`` objects all the way down, shared immutable scalars.  Where those
    are is worked out once, into a tree of copying functions, so that a copy never
    looks at a scalar: a value with neither is served by the C-level ``dict.copy``
    alone.
    """
    copies, size = _copier(value)
    return copies, _size(value) + size


def _binary(value: bytes) -> Any:
    """A new ``Binary`` of ``value``: ``Binary(value)`` without its type check, which
    ``value``, taken from a ``Binary``, has passed."""
    fresh = _new(Binary)
    fresh.value = value
    return fresh


def _copier(container: Any) -> tuple[Callable[[], Any], int]:
    """A function copying ``container`` and everything in it a copy makes anew, and its size."""
    kind = type(container)
    if kind is set:
        return _set_copier(container)
    members = container.items() if kind is dict else enumerate(container)
    binaries = []
    inner = []
    for where, member in members:
        member_kind = type(member)
        if member_kind is Binary:
            binaries.append((where, member.value))
        elif member_kind in _CONTAINERS:
            inner.append((where, *_copier(member)))
    if not inner and not binaries:
        return container.copy, _getsizeof(container.copy)
    size = sum(member_size for _, _, member_size in inner)
    if kind is list and len(inner) == len(container):
        # A list of containers only (a page's items): rebuilt, not patched.
        copiers = tuple(copies for _, copies, _ in inner)

        def copy_list() -> list[Any]:
            return [copies() for copies in copiers]

        return copy_list, size + _function_size(copy_list) + _getsizeof(copiers)
    replaced = tuple((where, copies) for where, copies, _ in inner)
    fresh = tuple(binaries)
    pairs = replaced + fresh
    size += _getsizeof(replaced) + _getsizeof(fresh) + sum(_getsizeof(pair) for pair in pairs)
    if not replaced and len(fresh) == 1:
        # One Binary beside scalars (a binary key's item): the hit a B key pays for.
        ((only, value),) = fresh

        def copy_with_binary() -> Any:
            copy = container.copy()
            binary = _new(Binary)
            binary.value = value
            copy[only] = binary
            return copy

        return copy_with_binary, size + _function_size(copy_with_binary)

    def copy_container() -> Any:
        copy = container.copy()
        for where, copies in replaced:
            copy[where] = copies()
        for where, value in fresh:
            # ``_binary`` inlined: a call would cost as much again (a binary key's hit).
            binary = _new(Binary)
            binary.value = value
            copy[where] = binary
        return copy

    return copy_container, size + _function_size(copy_container)


def _set_copier(members: set[Any]) -> tuple[Callable[[], set[Any]], int]:
    """A set's copier: ``set.copy``, unless it is a binary set (``BS``), whose members are new."""
    if not members or type(next(iter(members))) is not Binary:
        return members.copy, _getsizeof(members.copy)
    # DynamoDB's sets hold one type: every member is a Binary.
    values = tuple(member.value for member in members)

    def copy_binary_set() -> set[Any]:
        return set(map(_binary, values))

    return copy_binary_set, _function_size(copy_binary_set) + _getsizeof(values)


def _function_size(function: Callable[..., Any]) -> int:
    cells = getattr(function, "__closure__", None) or ()
    return _getsizeof(function) + sum(_getsizeof(cell) for cell in cells)


def _size(value: Any) -> int:
    """Approximate bytes a view's value holds beyond the wire image it was made of.

    Its containers and numbers are new objects; its strings (names and ``S``
    values), the bytes inside ``Binary`` and ``True``/``False``/``None`` are the
    wire image's own objects, which the entry's size already counts.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return 0
    size = _getsizeof(value)
    if kind is dict:
        for member in value.values():
            size += _size(member)
    elif kind is list or kind is set or kind is tuple:
        for member in value:
            size += _size(member)
    return size


def python_key(key: dict[Any, Any]) -> ItemKey | None:
    """The canonical form of a Python ``Key`` (as ``canonical_key`` of its wire form).

    ``None`` sends the request the general way, which then raises boto3's error or
    asks DynamoDB; see ``python_key_part`` for which values take this fast way.
    """
    if len(key) == 1:
        for name, value in key.items():
            return python_key_part(name, value)
    if len(key) == 2:
        (name_a, value_a), (name_b, value_b) = key.items()
        return composite_key(python_key_part(name_a, value_a), python_key_part(name_b, value_b))
    return None


def python_key_part(name: Any, value: Any) -> KeyPart | None:
    """One attribute of a Python key in canonical form, or ``None`` for the general path.

    Mirrors ``TypeSerializer`` for the key types (``str`` → S; ``int`` and ``Decimal``
    → N, through boto3's own ``DYNAMODB_CONTEXT``; ``bytes`` and ``Binary`` → B) and
    hands every other value, and every value boto3 would refuse, to the general
    path, which then raises boto3's error or asks DynamoDB.
    """
    if type(name) is not str:
        return None
    kind = type(value)
    if kind is str:
        return (name, "S", value) if value else None
    if kind is int and -_NUMBER_LIMIT < value < _NUMBER_LIMIT:
        return (name, "N", str(value))  # at most 38 digits: exact, and number_text's spelling
    if kind is int or kind is Decimal:
        try:
            number = DYNAMODB_CONTEXT.create_decimal(value)
        except ArithmeticError:  # more than 38 digits, out of range: boto3 raises
            return None
        return (name, "N", number_text(number)) if number.is_finite() else None
    if kind is Binary:
        value = value.value
        kind = type(value)
    if kind is bytes or kind is bytearray:
        return (name, "B", bytes(value)) if value else None
    return None


class Converter:
    """boto3's DynamoDB resource transformation, applied outside botocore's events.

    A resource's client runs these transformations as event handlers on every call;
    aiodax runs them once, here, and talks wire format to the engine and to a
    client without those handlers.
    """

    __slots__ = ("_injector", "_models", "_names", "_service_model")

    def __init__(self, service_model: ServiceModel, method_to_api: dict[str, str]) -> None:
        self._service_model = service_model
        self._names = method_to_api
        self._models: dict[str, OperationModel] = {}
        self._injector = TransformationInjector()

    def _model(self, operation: str) -> OperationModel:
        model = self._models.get(operation)
        if model is None:
            model = self._models[operation] = self._service_model.operation_model(
                self._names[operation]
            )
        return model

    def request(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The wire request for Python ``params`` of ``operation`` (``"get_item"``…).

        A deep copy first, as the resource's client makes one: nothing the caller
        passed is shared with the request, hence with the cache.  Raises what boto3
        raises for a value it cannot serialize (``TypeError`` for a ``float``).
        """
        model = self._model(operation)
        wire: dict[str, Any] = copy_dynamodb_params(params)
        self._injector.inject_condition_expressions(wire, model)
        self._injector.inject_attribute_value_input(wire, model)
        return wire

    def response(self, operation: str, response: dict[str, Any]) -> dict[str, Any]:
        """A wire response of ``operation`` in Python values, converted in place."""
        self._injector.inject_attribute_value_output(response, self._model(operation))
        return response

    def response_view(self, operation: str) -> Callable[[dict[str, Any]], Any]:
        """The engine's ``View`` of ``operation``'s responses in Python values.

        A cached Query or Scan page is converted once, on its fill or first hit,
        and each later hit is served a copy of that conversion (``copies_of``).
        """
        return lambda wire: copies_of(self.response(operation, wire))

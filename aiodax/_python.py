"""Python values ⇄ DynamoDB's wire format, for the resource flavour.

The engine speaks wire format only.  The resource facade converts a request once
on the way in and the response once on the way out, with boto3's own machinery
(``TransformationInjector``: ``ConditionExpressionBuilder`` and ``TypeSerializer``
in, ``TypeDeserializer`` out), so that every value, condition and error is exactly
what aioboto3's resource would produce.

An item hit must not pay for ``TypeDeserializer`` (6–18 µs for ten attributes, the
whole hit budget is about 1 µs).  So each cached item gets a *Python view*: the
item deserialized once and kept beside its wire image in the store entry
(``ItemEntry.python``); a hit hands out a copy of it in which only the containers
are new.  Strings, ``Decimal``, ``Binary``, booleans and ``None`` are immutable
(or treated so), which makes that copy as safe as a deep one.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeAlias

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

from ._wire import ItemKey, WireItem

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel

_deserialize = TypeDeserializer().deserialize
_getsizeof = sys.getsizeof
_CONTAINERS: Final = (dict, list, set)


#: Where a container holds containers: ``((key or index, inner plan), ...)``, the
#: inner plan ``None`` for a container of scalars only (copied by its ``copy()``).
CopyPlan: TypeAlias = "tuple[tuple[str | int, CopyPlan | None], ...]"


def python_view(image: WireItem) -> tuple[Callable[[], dict[str, Any]], int]:
    """A function handing out copies of a cached item in Python values, and its size.

    The item is deserialized once, with boto3's ``TypeDeserializer`` as the
    resource's client deserializes responses, so a hit serves what a miss served.
    Each call returns the caller's own item: new containers (maps, lists, sets) all
    the way down, shared immutable scalars.  Where the containers are is planned
    once too, so that a copy never looks at a scalar: an item without containers is
    served by the C-level ``dict.copy`` of the private item alone.
    """
    item = {name: _deserialize(value) for name, value in image.items()}
    plan = _plan(item)
    size = _size(item)
    if plan is None:
        return item.copy, size
    return functools.partial(_copy, item, plan), size + _size(plan)


def _plan(value: Any) -> CopyPlan | None:
    kind = type(value)
    members = value.items() if kind is dict else enumerate(value) if kind is list else ()
    plan = tuple((where, _plan(member)) for where, member in members if type(member) in _CONTAINERS)
    return plan or None


def _copy(value: Any, plan: CopyPlan) -> Any:
    copy = value.copy()
    for where, inner in plan:
        member = copy[where]
        copy[where] = member.copy() if inner is None else _copy(member, inner)
    return copy


def _size(value: Any) -> int:
    """Approximate bytes held by a deserialized value and everything in it."""
    size = _getsizeof(value)
    kind = type(value)
    if kind is dict:
        for name, member in value.items():
            size += _getsizeof(name) + _size(member)
    elif kind is list or kind is set or kind is tuple:
        for member in value:
            size += _size(member)
    elif kind is Binary:
        size += _getsizeof(value.value)
    return size


def key_of(key: dict[Any, Any]) -> ItemKey | None:
    """The canonical form of a Python ``Key`` (as ``canonical_key`` of its wire form).

    ``None`` sends the request the general way, which then raises boto3's error or
    asks DynamoDB; see ``key_part`` for which values take this fast way.
    """
    if len(key) == 1:
        for name, value in key.items():
            return key_part(name, value)
    if len(key) == 2:
        (name_a, value_a), (name_b, value_b) = key.items()
        part_a = key_part(name_a, value_a)
        part_b = key_part(name_b, value_b)
        if part_a is None or part_b is None:
            return None
        # Sorted by name, as canonical_key sorts; key_part made sure they are str.
        return (*part_a, *part_b) if name_a < name_b else (*part_b, *part_a)
    return None


def key_part(name: Any, value: Any) -> tuple[str, str, Hashable] | None:
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
    if kind is int or kind is Decimal:
        try:
            number = DYNAMODB_CONTEXT.create_decimal(value)
        except ArithmeticError:  # more than 38 digits, out of range: boto3 raises
            return None
        return (name, "N", number) if number.is_finite() else None
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

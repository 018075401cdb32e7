"""Python views: the copies a resource-flavour hit hands out (``aiodax._facades.python``)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from aiodax._facades.python import copies_of, python_view

scalars = st.one_of(
    st.text(max_size=5),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.booleans(),
    st.none(),
    st.binary(max_size=4).map(Binary),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
        st.sets(st.text(max_size=3), max_size=3),
    ),
    max_leaves=25,
)
items = st.dictionaries(st.text(max_size=4), values, max_size=6)


def containers(value: Any) -> Iterator[Any]:
    """``value`` and every dict, list and set inside it."""
    if isinstance(value, dict | list | set):
        yield value
    members = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for member in members:
            yield from containers(member)


def mutate_everything(value: Any) -> None:
    for container in list(containers(value)):
        if isinstance(container, dict):
            container["mutated"] = True
        elif isinstance(container, list):
            container.append("mutated")
        else:
            container.add("mutated")


@given(items)
def test_every_copy_equals_the_value_and_shares_no_container(item: dict[str, Any]) -> None:
    original = copy.deepcopy(item)
    copies, size = copies_of(item)
    first, second = copies(), copies()

    assert first == second == original
    kept = {id(container) for container in containers(item)}
    assert not kept & {id(container) for container in containers(first)}
    mutate_everything(first)
    assert item == original
    assert copies() == original
    assert size > 0


def test_a_value_without_containers_is_copied_by_dict_copy() -> None:
    item = {"pk": "a", "n": Decimal(1), "flag": True}
    copies, _ = copies_of(item)
    assert copies == item.copy  # the C-level copy, nothing in Python around it
    assert copies() == item and copies() is not item


def test_python_view_deserializes_once_and_holds_its_size() -> None:
    wire = {
        "pk": {"S": "a"},
        "tags": {"SS": ["x", "y"]},
        "profile": {"M": {"langs": {"L": [{"S": "en"}, {"M": {"x": {"BOOL": True}}}]}}},
    }
    copies, size = python_view(wire)
    assert copies() == {"pk": "a", "tags": {"x", "y"}, "profile": {"langs": ["en", {"x": True}]}}
    _, flat_size = python_view({"pk": {"S": "a"}})
    assert size > flat_size  # the nested containers and their copiers take room

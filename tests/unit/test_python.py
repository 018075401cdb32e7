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
        st.sets(st.binary(max_size=3).map(Binary), max_size=3),
    ),
    max_leaves=25,
)
items = st.dictionaries(st.text(max_size=4), values, max_size=6)


def mutables(value: Any) -> Iterator[Any]:
    """``value`` and every dict, list, set and ``Binary`` inside it."""
    if isinstance(value, dict | list | set | Binary):
        yield value
    if isinstance(value, dict | list | set):
        for member in value.values() if isinstance(value, dict) else value:
            yield from mutables(member)


def mutate_everything(value: Any) -> None:
    # Binaries first: a set's members are changed before the set is.
    for mutable in sorted(mutables(value), key=lambda m: not isinstance(m, Binary)):
        if isinstance(mutable, Binary):
            mutable.value = b"mutated " + mutable.value
        elif isinstance(mutable, dict):
            mutable["mutated"] = True
        elif isinstance(mutable, list):
            mutable.append("mutated")
        else:
            mutable.add("mutated")


@given(items)
def test_every_copy_equals_the_value_and_shares_no_container_nor_binary(
    item: dict[str, Any],
) -> None:
    original = copy.deepcopy(item)
    copies, size = copies_of(item)
    first, second = copies(), copies()

    assert first == second == original
    kept = {id(mutable) for mutable in mutables(item)}
    assert not kept & {id(mutable) for mutable in mutables(first)}
    mutate_everything(first)
    assert item == original
    assert copies() == original
    assert size > 0


def test_each_copy_has_binaries_of_its_own_with_the_same_bytes() -> None:
    item = {"pk": Binary(b"k"), "set": {Binary(b"a"), Binary(b"b")}, "list": [Binary(b"c")]}
    copies, _ = copies_of(item)
    first, second = copies(), copies()
    assert type(first["pk"]) is Binary
    assert len({id(first["pk"]), id(second["pk"]), id(item["pk"])}) == 3
    assert first["pk"].value is item["pk"].value  # bytes are immutable: shared
    first["pk"].value = b"changed"
    (member,) = (m for m in first["set"] if m == Binary(b"a"))
    member.value = b"changed"
    first["list"][0].value = b"changed"
    unchanged = {"pk": Binary(b"k"), "set": {Binary(b"a"), Binary(b"b")}, "list": [Binary(b"c")]}
    assert copies() == item == unchanged
    assert Binary(b"a") in copies()["set"]  # the cached set still hashes its members right


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

"""The hit paths' key readers name the store key the canonical rules name, or none.

A reader that named another key than ``canonical_key`` (wire) or ``python_key``
(Python values) for a canonically spelled key would serve another item; one that
named the canonical key for another spelling would be harmless but is not what
they promise: any other spelling finds no entry and goes the general way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiodax._engine.hit_keys import python_store_key, remembered_texts, wire_store_key
from aiodax._facades.python import python_key
from aiodax._rules.tags import item_key
from aiodax._rules.wire import canonical_key, number_text

TABLE = "orders"
NAMES = st.sampled_from(["pk", "sk", "id", "at", "ü"])
#: Key values in Python form: what boto3 serializes to S, N and B.
VALUES = st.one_of(
    st.text(min_size=1, max_size=8),
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.binary(min_size=1, max_size=8),
)


def _wire(value: str | int | bytes) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": number_text(Decimal(value))}
    return {"B": value}


@st.composite
def python_keys(draw: st.DrawFn) -> dict[str, str | int | bytes]:
    names = draw(st.lists(NAMES, min_size=1, max_size=2, unique=True))
    return {name: draw(VALUES) for name in names}


@given(python_keys())
def test_a_canonically_spelled_wire_key_names_its_canonical_store_key(
    key: dict[str, str | int | bytes],
) -> None:
    wire = {name: _wire(value) for name, value in key.items()}
    canonical = canonical_key(wire)
    assert canonical is not None

    assert wire_store_key(TABLE, wire) == item_key(TABLE, canonical)


@given(python_keys())
def test_a_python_key_names_the_store_key_python_key_names(
    key: dict[str, str | int | bytes],
) -> None:
    canonical = python_key(key)
    assert canonical is not None

    assert python_store_key(python_key)(TABLE, key) == item_key(TABLE, canonical)


def test_another_spelling_of_a_number_names_no_canonical_store_key() -> None:
    spelled = {"id": {"N": "1E4"}}
    canonical = canonical_key(spelled)
    assert canonical == ("id", "N", "10000")

    assert wire_store_key(TABLE, spelled) != item_key(TABLE, canonical)


def test_a_wire_key_the_readers_cannot_read_is_no_lookup() -> None:
    assert wire_store_key(TABLE, {}) is None
    assert wire_store_key(TABLE, {"pk": "bare"}) is None
    assert wire_store_key(TABLE, {"pk": {"S": ["list"]}}) is None
    assert wire_store_key(TABLE, {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}) is None


def test_the_same_key_in_either_attribute_order_names_one_store_key() -> None:
    forward = {"pk": {"S": "user#1"}, "sk": {"N": "7"}}
    backward = {"sk": {"N": "7"}, "pk": {"S": "user#1"}}

    assert wire_store_key(TABLE, forward) == wire_store_key(TABLE, backward) is not None
    read = python_store_key(python_key)
    assert read(TABLE, {"pk": "user#1", "sk": 7}) == read(TABLE, {"sk": 7, "pk": "user#1"})


def test_remembered_texts_stay_right_past_their_bound_and_refuse_huge_numbers() -> None:
    texts, text_of = remembered_texts()
    for number in range(-1_500, 1_500):
        assert (texts.get(number) or text_of(number)) == str(number)
    assert len(texts) <= 1_024

    assert text_of(10**126) is None
    assert text_of(-(10**126)) is None

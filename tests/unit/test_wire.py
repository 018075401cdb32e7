"""Wire-format helpers: canonical keys, images, projections and fingerprints."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from aiodax._rules.projection import fingerprint, projection_of, top_level_names
from aiodax._rules.schema import KeySchema
from aiodax._rules.wire import ReadOnlyDict, ReadOnlyList, canonical_key, freeze, thaw

ITEM: dict[str, Any] = {
    "pk": {"S": "user#1"},
    "sk": {"N": "7"},
    "name": {"S": "Ada"},
    "tags": {"SS": ["a", "b"]},
    "scores": {"NS": ["1", "2"]},
    "blobs": {"BS": [b"\x00", "x"]},
    "blob": {"B": "text"},
    "active": {"BOOL": True},
    "nothing": {"NULL": True},
    "profile": {
        "M": {
            "city": {"S": "London"},
            "langs": {"L": [{"S": "en"}, {"M": {"level": {"N": "2"}}}]},
        }
    },
}


def plain(value: Any) -> bool:
    """Whether ``value`` and everything in it are ordinary dicts and lists."""
    if isinstance(value, dict):
        return type(value) is dict and all(plain(v) for v in value.values())
    if isinstance(value, list):
        return type(value) is list and all(plain(v) for v in value)
    return True


# ---------------------------------------------------------------- canonical_key


def test_canonical_key_of_string_partition_key() -> None:
    assert canonical_key({"pk": {"S": "a"}}) == ("pk", "S", "a")


def test_key_types_never_mix() -> None:
    assert canonical_key({"pk": {"N": "1"}}) != canonical_key({"pk": {"S": "1"}})
    assert canonical_key({"pk": {"B": b"1"}}) != canonical_key({"pk": {"S": "1"}})


def test_attribute_names_are_part_of_the_key() -> None:
    assert canonical_key({"pk": {"S": "a"}}) != canonical_key({"id": {"S": "a"}})


@pytest.mark.parametrize("spelling", ["1.0", "1E+0", "1e0", "10E-1", "01", "1.000"])
def test_equal_numbers_are_one_key(spelling: str) -> None:
    one = canonical_key({"n": {"N": "1"}})
    other = canonical_key({"n": {"N": spelling}})
    assert other == one
    assert hash(other) == hash(one)


def test_different_numbers_are_different_keys() -> None:
    assert canonical_key({"n": {"N": "1"}}) != canonical_key({"n": {"N": "1.0000001"}})


def test_attribute_order_of_a_composite_key_is_irrelevant() -> None:
    forward = canonical_key({"pk": {"S": "a"}, "sk": {"N": "2"}})
    backward = canonical_key({"sk": {"N": "2.0"}, "pk": {"S": "a"}})
    assert forward == backward
    assert forward is not None and len(forward) == 6


@pytest.mark.parametrize("blob", [b"\x00ab", bytearray(b"\x00ab"), "\x00ab"])
def test_binary_key_given_as_bytes_bytearray_or_str_is_bytes(blob: Any) -> None:
    key = canonical_key({"pk": {"B": blob}})
    assert key == ("pk", "B", b"\x00ab")
    assert key is not None
    assert type(key[2]) is bytes


@pytest.mark.parametrize(
    "key",
    [
        None,
        "pk",
        [("pk", {"S": "a"})],
        {},
        {"pk": "a"},
        {"pk": {}},
        {"pk": {"S": "a", "N": "1"}},
        {1: {"S": "a"}},
        {"pk": {"S": ""}},
        {"pk": {"B": b""}},
        {"pk": {"B": bytearray()}},
        {"pk": {"B": ""}},
        {"pk": {"B": 1}},
        {"pk": {"S": 1}},
        {"pk": {"S": None}},
        {"pk": {"N": ""}},
        {"pk": {"N": "abc"}},
        {"pk": {"N": "NaN"}},
        {"pk": {"N": "sNaN"}},
        {"pk": {"N": "Infinity"}},
        {"pk": {"N": "-Infinity"}},
        {"pk": {"N": "inf"}},
        {"pk": {"N": 1}},
        {"pk": {"N": 1.0}},
        {"pk": {"N": Decimal("1")}},
        {"pk": {"BOOL": True}},
        {"pk": {"NULL": True}},
        {"pk": {"SS": ["a"]}},
        {"pk": {"M": {}}},
        {"pk": {"L": []}},
        {"pk": {"S": "a"}, "sk": {"S": ""}},
        {"pk": {"S": "a"}, "sk": {"BOOL": False}},
        {"a": {"S": "a"}, "b": {"S": "b"}, "c": {"S": "c"}},
    ],
)
def test_what_cannot_be_a_key_is_none(key: Any) -> None:
    assert canonical_key(key) is None


@pytest.mark.parametrize("spelling", ["1_0", "1_000"])
def test_number_with_underscores_is_not_a_key(spelling: str) -> None:
    assert canonical_key({"n": {"N": spelling}}) is None


def test_key_built_from_served_attribute_values_is_the_same_key() -> None:
    served = thaw(freeze({"pk": {"S": "a"}, "sk": {"N": "2"}, "x": {"S": "y"}}))
    assert served is not None
    key = {"pk": served["pk"], "sk": served["sk"]}
    assert canonical_key(key) == canonical_key({"pk": {"S": "a"}, "sk": {"N": "2"}})


# ------------------------------------------------------------------- KeySchema


def test_key_of_takes_only_the_key_attributes() -> None:
    schema = KeySchema("pk", "sk")
    assert schema.key_of(ITEM) == canonical_key({"pk": {"S": "user#1"}, "sk": {"N": "7"}})


def test_key_of_hash_only_schema() -> None:
    assert KeySchema("pk", None).key_of(ITEM) == ("pk", "S", "user#1")


@pytest.mark.parametrize(
    "item",
    [
        {"pk": {"S": "a"}},
        {"sk": {"N": "1"}},
        {"pk": {"S": "a"}, "sk": {"BOOL": True}},
        {},
    ],
)
def test_key_of_item_lacking_a_valid_key_is_none(item: dict[str, Any]) -> None:
    assert KeySchema("pk", "sk").key_of(item) is None


def test_key_of_a_served_item_is_its_key() -> None:
    served = thaw(freeze(ITEM))
    assert served is not None
    assert KeySchema("pk", "sk").key_of(served) == KeySchema("pk", "sk").key_of(ITEM)


def test_partition_of_is_the_hash_key_part_whatever_the_name_order() -> None:
    schema = KeySchema("zone", "at")
    key = canonical_key({"zone": {"S": "eu"}, "at": {"N": "5"}})
    assert key is not None
    assert schema.partition_of(key) == ("zone", "S", "eu")


def test_partition_of_key_without_hash_attribute_is_none() -> None:
    key = canonical_key({"other": {"S": "eu"}})
    assert key is not None
    assert KeySchema("zone", None).partition_of(key) is None


# ------------------------------------------------------------------ freeze/thaw


def test_thaw_equals_the_original_item_with_binaries_as_bytes() -> None:
    served = thaw(freeze(ITEM))
    expected = copy.deepcopy(ITEM)
    expected["blob"] = {"B": b"text"}
    expected["blobs"] = {"BS": [b"\x00", b"x"]}
    assert served == expected


def test_written_numbers_are_normalized_at_the_top_level_only() -> None:
    item = {
        "n": {"N": "1.50"},
        "big": {"N": "1e2"},
        "zero": {"N": "-0.0"},
        "set": {"NS": ["1e2", "2.50"]},
        "map": {"M": {"x": {"N": "1.50"}}},
        "list": {"L": [{"N": "2.0"}]},
    }
    served = thaw(freeze(item, written=True))
    assert served == {
        "n": {"N": "1.5"},
        "big": {"N": "100"},
        "zero": {"N": "0"},
        "set": {"NS": ["100", "2.5"]},
        "map": {"M": {"x": {"N": "1.50"}}},
        "list": {"L": [{"N": "2.0"}]},
    }


def test_numbers_dynamodb_returned_are_kept_as_they_are() -> None:
    assert thaw(freeze({"n": {"N": "1.50"}, "s": {"NS": ["1e2"]}})) == {
        "n": {"N": "1.50"},
        "s": {"NS": ["1e2"]},
    }


def test_freeze_and_thaw_of_missing_item_are_none() -> None:
    assert freeze(None) is None
    assert thaw(None) is None


def test_thaw_gives_a_new_top_level_dict_each_time() -> None:
    image = freeze(ITEM)
    first, second = thaw(image), thaw(image)
    assert first is not None and second is not None
    assert first is not second
    assert type(first) is dict
    first["name"] = {"S": "Bob"}
    del first["tags"]
    assert second == thaw(image)
    assert second["name"] == {"S": "Ada"}


def test_freeze_does_not_alias_the_callers_item() -> None:
    item = copy.deepcopy(ITEM)
    item["blob"] = {"B": bytearray(b"ab")}
    image = freeze(item)
    item["name"]["S"] = "Bob"
    item["tags"]["SS"].append("c")
    item["profile"]["M"]["city"] = {"S": "Paris"}
    item["profile"]["M"]["langs"]["L"].clear()
    item["blob"]["B"][0] = ord("z")
    served = thaw(image)
    assert served is not None
    assert served["name"] == {"S": "Ada"}
    assert served["tags"] == {"SS": ["a", "b"]}
    assert served["profile"]["M"]["city"] == {"S": "London"}
    assert len(served["profile"]["M"]["langs"]["L"]) == 2
    assert served["blob"] == {"B": b"ab"}


def served_values() -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    served = thaw(freeze(ITEM))
    assert served is not None
    return served["name"], served["profile"]["M"], served["profile"]["M"]["langs"]["L"]


DICT_MUTATIONS: list[Callable[[Any], Any]] = [
    lambda d: d.__setitem__("S", "x"),
    lambda d: d.__delitem__(next(iter(d))),
    lambda d: d.clear(),
    lambda d: d.pop(next(iter(d))),
    lambda d: d.pop("missing", None),
    lambda d: d.popitem(),
    lambda d: d.setdefault("new", 1),
    lambda d: d.update(new=1),
    lambda d: d.__ior__({"new": 1}),
]

LIST_MUTATIONS: list[Callable[[Any], Any]] = [
    lambda v: v.__setitem__(0, {"S": "x"}),
    lambda v: v.__setitem__(slice(0, 1), []),
    lambda v: v.__delitem__(0),
    lambda v: v.__iadd__([1]),
    lambda v: v.__imul__(2),
    lambda v: v.append(1),
    lambda v: v.clear(),
    lambda v: v.extend([1]),
    lambda v: v.insert(0, 1),
    lambda v: v.pop(),
    lambda v: v.remove(v[0]),
    lambda v: v.reverse(),
    lambda v: v.sort(key=str),
]


@pytest.mark.parametrize("mutate", DICT_MUTATIONS)
def test_served_maps_refuse_every_change(mutate: Callable[[Any], Any]) -> None:
    for value in served_values()[:2]:
        assert isinstance(value, ReadOnlyDict)
        before = dict(value)
        with pytest.raises(TypeError):
            mutate(value)
        assert value == before


@pytest.mark.parametrize("mutate", LIST_MUTATIONS)
def test_served_lists_refuse_every_change(mutate: Callable[[Any], Any]) -> None:
    value = served_values()[2]
    assert isinstance(value, ReadOnlyList)
    before = list(value)
    with pytest.raises(TypeError):
        mutate(value)
    assert value == before


def test_augmented_assignment_on_served_values_raises() -> None:
    _, profile, langs = served_values()
    with pytest.raises(TypeError):
        profile |= {"x": {"S": "y"}}
    with pytest.raises(TypeError):
        langs += [{"S": "fr"}]


def test_served_sets_refuse_changes() -> None:
    served = thaw(freeze(ITEM))
    assert served is not None
    for name, kind in (("tags", "SS"), ("scores", "NS"), ("blobs", "BS")):
        with pytest.raises(TypeError):
            served[name][kind].append("z")


@pytest.mark.parametrize(
    "copier",
    [copy.copy, copy.deepcopy, lambda v: v.copy(), lambda v: pickle.loads(pickle.dumps(v))],
    ids=["copy.copy", "copy.deepcopy", ".copy()", "pickle"],
)
def test_copies_of_served_values_are_plain_and_mutable(copier: Callable[[Any], Any]) -> None:
    for value in served_values():
        duplicate = copier(value)
        assert type(duplicate) in (dict, list)
        assert duplicate == value
        if isinstance(duplicate, dict):
            duplicate["new"] = 1
        else:
            duplicate.append(1)
        assert duplicate != value


def test_dict_and_list_of_served_values_are_plain() -> None:
    name, profile, langs = served_values()
    assert type(dict(name)) is dict
    assert type(dict(profile)) is dict
    assert type(list(langs)) is list


@pytest.mark.parametrize(
    "copier",
    [copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))],
    ids=["copy.deepcopy", "pickle"],
)
def test_deep_copy_of_served_item_is_plain_all_the_way_down(copier: Callable[[Any], Any]) -> None:
    served = thaw(freeze(ITEM))
    duplicate = copier(served)
    assert duplicate == served
    assert plain(duplicate)
    duplicate["profile"]["M"]["langs"]["L"].append({"S": "fr"})
    assert len(served["profile"]["M"]["langs"]["L"]) == 2  # type: ignore[index]


def test_served_values_compare_equal_to_plain_ones() -> None:
    name, profile, langs = served_values()
    assert name == {"S": "Ada"}
    assert langs == [{"S": "en"}, {"M": {"level": {"N": "2"}}}]
    assert profile == ITEM["profile"]["M"]


def test_served_item_is_json_serializable() -> None:
    item = {k: v for k, v in ITEM.items() if k not in ("blob", "blobs")}
    served = thaw(freeze(item))
    assert json.loads(json.dumps(served)) == item


# ------------------------------------------------------------------ projections


def expr(expression: str, **names: str) -> Any:
    request: dict[str, Any] = {"ProjectionExpression": expression}
    if names:
        request["ExpressionAttributeNames"] = {f"#{k}": v for k, v in names.items()}
    return projection_of(request)


def test_no_projection_means_the_whole_item() -> None:
    assert projection_of({"TableName": "t", "Key": {}}) is None


def test_projection_of_top_level_names() -> None:
    assert expr("a, b") == (".a", ".b")


def test_projection_is_order_insensitive() -> None:
    assert expr("b,a") == expr(" a , b ") == (".a", ".b")


def test_a_path_named_twice_overlaps_itself_and_is_false() -> None:
    # DynamoDB: "Two document paths overlap with each other".
    assert expr("b,a, b ,a") is False


def test_names_placeholders_resolve() -> None:
    assert expr("#n, b", n="a") == expr("a, b")
    assert expr("#n.#m[1]", n="a", m="b") == expr("a.b[1]")


def test_nested_paths_are_distinct_from_top_level_ones() -> None:
    assert expr("a.b[1]") == (".a.b[1]",)
    assert expr("a.b[1]") != expr("a.b")
    assert expr("a.b") != expr("a")
    assert expr("a[1][2]") == (".a[1][2]",)


def test_attribute_whose_name_has_a_dot_is_not_a_nested_path() -> None:
    assert expr("#n", n="a.b") != expr("a.b")
    assert projection_of({"AttributesToGet": ["a.b"]}) == expr("#n", n="a.b")


def test_attributes_to_get_equals_the_same_projection_expression() -> None:
    assert projection_of({"AttributesToGet": ["b", "a"]}) == expr("a, b")
    # DynamoDB: "Cannot have two attributes with the same name".
    assert projection_of({"AttributesToGet": ["b", "a", "b"]}) is False


@pytest.mark.parametrize(
    "request_",
    [
        {"ProjectionExpression": "a", "ExpressionAttributeNames": {"#unused": "b"}},
        {"ProjectionExpression": "#x", "ExpressionAttributeNames": {"#n": "a"}},
        {"ProjectionExpression": "#n, #x", "ExpressionAttributeNames": {"#n": "a"}},
        {"ProjectionExpression": "#n"},
        {"ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": 1}},
        {"ProjectionExpression": "a", "ExpressionAttributeNames": {}},
        {"ProjectionExpression": "a", "ExpressionAttributeNames": ["#n"]},
        {"ExpressionAttributeNames": {"#n": "a"}},
        {"ProjectionExpression": "a", "AttributesToGet": ["a"]},
        {"AttributesToGet": []},
        {"AttributesToGet": "a"},
        {"AttributesToGet": ["a", ""]},
        {"AttributesToGet": ["a", 1]},
        {"ProjectionExpression": 5},
        {"ProjectionExpression": ["a"]},
        {"ProjectionExpression": ""},
        {"ProjectionExpression": "a,"},
        {"ProjectionExpression": ",a"},
        {"ProjectionExpression": "a b"},
        {"ProjectionExpression": "a..b"},
        {"ProjectionExpression": "a."},
        {"ProjectionExpression": "a-b"},
        {"ProjectionExpression": "a[x]"},
        {"ProjectionExpression": "a[-1]"},
        {"ProjectionExpression": "a[1"},
        {"ProjectionExpression": "a[1]b"},
        {"ProjectionExpression": "a[]"},
        {"ProjectionExpression": "[1]"},
        {"ProjectionExpression": "a = :v"},
    ],
)
def test_unreadable_projection_is_false(request_: dict[str, Any]) -> None:
    assert projection_of(request_) is False


def test_index_in_non_ascii_digits_is_false_not_an_error() -> None:
    assert projection_of({"ProjectionExpression": "a[²]"}) is False


def test_top_level_names_of_top_level_projection() -> None:
    projection = expr("b, #n", n="a")
    assert isinstance(projection, tuple)
    assert top_level_names(projection) == ("a", "b")


@pytest.mark.parametrize("expression", ["a, b.c", "a[0]", "a.b"])
def test_top_level_names_of_nested_projection_is_none(expression: str) -> None:
    projection = expr(expression)
    assert isinstance(projection, tuple)
    assert top_level_names(projection) is None


# ----------------------------------------------------------------- fingerprint


def test_fingerprint_ignores_dict_key_order_at_every_depth() -> None:
    one = {"a": 1, "b": {"x": [1, {"p": "q", "r": "s"}], "y": None}}
    two = {"b": {"y": None, "x": [1, {"r": "s", "p": "q"}]}, "a": 1}
    assert fingerprint(one) == fingerprint(two)
    assert hash(fingerprint(one)) == hash(fingerprint(two))


def test_fingerprint_keeps_scalar_types_apart() -> None:
    values = [1, True, 1.0, "1", b"1", Decimal("1"), None, "None", "True"]
    fingerprints = [fingerprint({"v": value}) for value in values]
    assert len(set(fingerprints)) == len(values)


def test_fingerprint_keeps_list_order() -> None:
    assert fingerprint({"v": [1, 2]}) != fingerprint({"v": [2, 1]})


def test_fingerprint_sees_nested_differences() -> None:
    base = {"Key": {"pk": {"S": "a"}}, "Limit": 10}
    assert fingerprint(base) != fingerprint({"Key": {"pk": {"S": "b"}}, "Limit": 10})
    assert fingerprint(base) != fingerprint({"Key": {"pk": {"N": "a"}}, "Limit": 10})
    assert fingerprint(base) != fingerprint({"Key": {"pk": {"S": "a"}}, "Limit": 11})
    assert fingerprint(base) != fingerprint({"Key": {"pk": {"S": "a"}}})


def test_fingerprint_of_bytes_equals_bytearray_and_sets_ignore_order() -> None:
    assert fingerprint(b"ab") == fingerprint(bytearray(b"ab"))
    assert fingerprint({"a", "b"}) == fingerprint(frozenset({"b", "a"}))


def test_fingerprint_of_request_holding_served_values_is_hashable_and_equal() -> None:
    page_key = thaw(freeze({"pk": {"S": "a"}, "sk": {"N": "2"}}))
    served = thaw(freeze({"tags": {"L": [{"S": "x"}]}}))
    assert page_key is not None and served is not None
    request = {
        "ExclusiveStartKey": page_key,
        "ExpressionAttributeValues": {":t": served["tags"]},
    }
    expected = {
        "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"N": "2"}},
        "ExpressionAttributeValues": {":t": {"L": [{"S": "x"}]}},
    }
    assert hash(fingerprint(request)) == hash(fingerprint(expected))
    assert fingerprint(request) == fingerprint(expected)

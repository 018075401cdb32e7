"""Read plans (``_rules.reads``): which reads are cached, under which key, sending what."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from aiodax._rules.reads import (
    BATCH_GET_LIMIT,
    BatchPlan,
    plan_batch_get,
    plan_get,
    plan_page,
)
from aiodax._rules.schema import KeySchema
from aiodax._rules.wire import canonical_key

KEY = {"pk": {"S": "a"}}
GET = {"TableName": "t", "Key": KEY}


def batch(*keys: dict[str, Any], table: str = "t", **spec: Any) -> dict[str, Any]:
    return {"RequestItems": {table: {"Keys": list(keys), **spec}}}


def batch_plan(request: dict[str, Any]) -> BatchPlan:
    plan = plan_batch_get(request)
    assert plan is not None
    return plan


# --------------------------------------------------------------------- GetItem


def test_a_plain_get_item_is_cached_under_its_table_canonical_key_and_whole_item() -> None:
    plan = plan_get(GET)
    assert plan is not None
    assert (plan.table, plan.key, plan.projection) == ("t", ("pk", "S", "a"), None)
    assert plan.send == GET
    assert plan.wants_capacity is False


def test_a_get_item_flight_key_is_its_table_key_and_projection() -> None:
    plan = plan_get({**GET, "ProjectionExpression": "b, a"})
    assert plan is not None
    assert plan.flight_key == ("t", ("pk", "S", "a"), (".a", ".b"))


def test_two_spellings_of_one_number_key_share_a_flight_key() -> None:
    one = plan_get({"TableName": "t", "Key": {"n": {"N": "1"}}})
    other = plan_get({"TableName": "t", "Key": {"n": {"N": "1.0"}}})
    assert one is not None and other is not None
    assert one.flight_key == other.flight_key


def test_a_string_key_and_a_number_key_of_the_same_text_are_different_items() -> None:
    text = plan_get({"TableName": "t", "Key": {"k": {"S": "1"}}})
    number = plan_get({"TableName": "t", "Key": {"k": {"N": "1"}}})
    assert text is not None and number is not None
    assert text.flight_key != number.flight_key


def test_a_consistent_get_item_is_never_answered_from_the_cache() -> None:
    assert plan_get({**GET, "ConsistentRead": True}) is None


def test_a_false_consistent_read_is_cached_and_not_sent() -> None:
    plan = plan_get({**GET, "ConsistentRead": False})
    assert plan is not None
    assert "ConsistentRead" not in plan.send
    assert plan.send == GET


def test_a_get_item_with_a_parameter_aiodax_does_not_know_goes_uncached() -> None:
    assert plan_get({**GET, "Unknown": 1}) is None


@pytest.mark.parametrize(
    "key",
    [
        None,
        {},
        {"pk": {"S": ""}},
        {"pk": {"S": 1}},
        {"pk": {"N": "not a number"}},
        {"pk": {"N": "NaN"}},
        {"pk": {"BOOL": True}},
        {"pk": {"S": "a", "N": "1"}},
        {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}},
        [("pk", {"S": "a"})],
    ],
    ids=repr,
)
def test_a_get_item_with_a_key_that_cannot_be_a_key_goes_uncached(key: object) -> None:
    assert plan_get({"TableName": "t", "Key": key}) is None


@pytest.mark.parametrize("table", ["", None, 7, b"t"], ids=repr)
def test_a_get_item_without_a_table_name_goes_uncached(table: object) -> None:
    assert plan_get({"TableName": table, "Key": KEY}) is None


def test_a_get_item_with_no_table_name_at_all_goes_uncached() -> None:
    assert plan_get({"Key": KEY}) is None


def test_a_projection_expression_is_read_into_sorted_placeholder_free_paths() -> None:
    plan = plan_get(
        {
            **GET,
            "ProjectionExpression": "#b, a.c[1], d",
            "ExpressionAttributeNames": {"#b": "b"},
        }
    )
    assert plan is not None
    assert plan.projection == (".a.c[1]", ".b", ".d")


def test_legacy_attributes_to_get_and_the_same_projection_expression_share_a_flight() -> None:
    legacy = plan_get({**GET, "AttributesToGet": ["b", "a"]})
    expression = plan_get(
        {**GET, "ProjectionExpression": "a, #b", "ExpressionAttributeNames": {"#b": "b"}}
    )
    assert legacy is not None and expression is not None
    assert legacy.flight_key == expression.flight_key


@pytest.mark.parametrize(
    "projection",
    [
        {"ProjectionExpression": "a", "AttributesToGet": ["a"]},
        {"ProjectionExpression": "#a"},
        {"ProjectionExpression": "a", "ExpressionAttributeNames": {"#unused": "b"}},
        {"ExpressionAttributeNames": {"#a": "a"}},
        {"ProjectionExpression": "a,,b"},
        {"ProjectionExpression": "a[x]"},
        {"ProjectionExpression": 5},
        {"AttributesToGet": []},
        {"AttributesToGet": "a"},
        {"AttributesToGet": [""]},
    ],
    ids=repr,
)
def test_a_get_item_with_a_projection_aiodax_cannot_read_goes_uncached(
    projection: dict[str, Any],
) -> None:
    assert plan_get({**GET, **projection}) is None


def test_a_get_item_asking_for_capacity_says_so_in_its_plan() -> None:
    plan = plan_get({**GET, "ReturnConsumedCapacity": "TOTAL"})
    none = plan_get({**GET, "ReturnConsumedCapacity": "NONE"})
    assert plan is not None and none is not None
    assert plan.wants_capacity is True
    assert none.wants_capacity is False


# ----------------------------------------------------------------- Query, Scan

QUERY = {
    "TableName": "t",
    "KeyConditionExpression": "pk = :v",
    "ExpressionAttributeValues": {":v": {"S": "a"}},
}


def test_query_and_scan_each_accept_only_their_own_parameters() -> None:
    assert plan_page("query", {**QUERY, "ScanIndexForward": False}) is not None
    assert plan_page("scan", {"TableName": "t", "ScanIndexForward": False}) is None
    assert plan_page("scan", {"TableName": "t", "Segment": 0, "TotalSegments": 2}) is not None
    assert plan_page("query", {**QUERY, "Segment": 0, "TotalSegments": 2}) is None


def test_a_page_with_an_unknown_parameter_goes_uncached() -> None:
    assert plan_page("query", {**QUERY, "Unknown": 1}) is None
    assert plan_page("scan", {"TableName": "t", "Unknown": 1}) is None


def test_a_consistent_page_goes_uncached_and_a_false_consistent_read_is_not_sent() -> None:
    assert plan_page("scan", {"TableName": "t", "ConsistentRead": True}) is None
    plan = plan_page("scan", {"TableName": "t", "ConsistentRead": False})
    assert plan is not None
    assert plan.send == {"TableName": "t"}


@pytest.mark.parametrize("table", ["", None, 1], ids=repr)
def test_a_page_without_a_table_name_goes_uncached(table: object) -> None:
    assert plan_page("scan", {"TableName": table}) is None


def test_a_base_table_query_may_read_one_partition() -> None:
    plan = plan_page("query", QUERY)
    assert plan is not None
    assert plan.is_query
    assert plan.reads_one_partition is True


def test_an_index_query_reads_no_single_partition_of_the_table() -> None:
    plan = plan_page("query", {**QUERY, "IndexName": "by-b"})
    assert plan is not None
    assert plan.reads_one_partition is False


def test_a_scan_reads_no_single_partition() -> None:
    plan = plan_page("scan", {"TableName": "t"})
    assert plan is not None
    assert not plan.is_query
    assert plan.reads_one_partition is False


@pytest.mark.parametrize(
    "values",
    [
        {":v": {"S": SimpleNamespace()}},
        {":v": {"M": {1: {"S": "x"}, "a": {"S": "y"}}}},
    ],
    ids=["unhashable value", "map of unsortable keys"],
)
def test_a_page_with_values_no_fingerprint_can_hold_goes_uncached(values: object) -> None:
    assert plan_page("query", {**QUERY, "ExpressionAttributeValues": values}) is None


def test_return_consumed_capacity_is_not_part_of_a_page_s_store_key() -> None:
    plain = plan_page("query", QUERY)
    counted = plan_page("query", {**QUERY, "ReturnConsumedCapacity": "TOTAL"})
    assert plain is not None and counted is not None
    assert plain.store_key == counted.store_key
    assert (plain.wants_capacity, counted.wants_capacity) == (False, True)
    assert counted.send["ReturnConsumedCapacity"] == "TOTAL"


def test_pages_of_different_requests_have_different_store_keys() -> None:
    a = plan_page("query", QUERY)
    b = plan_page("query", {**QUERY, "ExpressionAttributeValues": {":v": {"S": "b"}}})
    limited = plan_page("query", {**QUERY, "Limit": 1})
    scan = plan_page("scan", {"TableName": "t"})
    assert a is not None and b is not None and limited is not None and scan is not None
    assert len({a.store_key, b.store_key, limited.store_key, scan.store_key}) == 4


def test_a_page_store_key_does_not_depend_on_the_order_of_the_request() -> None:
    forward = plan_page("query", {**QUERY, "Limit": 2})
    backward = plan_page("query", dict(reversed(list({**QUERY, "Limit": 2}.items()))))
    assert forward is not None and backward is not None
    assert forward.store_key == backward.store_key


def test_a_page_store_key_tells_a_number_from_a_boolean_and_a_string() -> None:
    keys = set()
    for value in (1, True, "1", 1.0):
        plan = plan_page("scan", {"TableName": "t", "Limit": value})
        assert plan is not None
        keys.add(plan.store_key)
    assert len(keys) == 4


# ---------------------------------------------------------------- BatchGetItem


def test_a_batch_get_is_read_into_one_flight_key_per_key_in_order() -> None:
    plan = batch_plan(batch({"pk": {"S": "b"}}, {"pk": {"S": "a"}}))
    assert plan.keys == [("t", ("pk", "S", "b"), None), ("t", ("pk", "S", "a"), None)]
    assert plan.key_names == {"t": ("pk",)}
    assert plan.added_names == {"t": ()}


def test_a_batch_get_asking_for_one_key_twice_goes_uncached() -> None:
    assert plan_batch_get(batch({"pk": {"S": "a"}}, {"pk": {"S": "a"}})) is None


def test_a_batch_get_naming_one_number_twice_in_two_spellings_goes_uncached() -> None:
    assert plan_batch_get(batch({"n": {"N": "1"}}, {"n": {"N": "1.00"}})) is None


def test_a_batch_get_of_the_limit_of_keys_is_cached_and_one_more_is_not() -> None:
    keys = [{"pk": {"S": str(index)}} for index in range(BATCH_GET_LIMIT + 1)]
    assert plan_batch_get(batch(*keys[:BATCH_GET_LIMIT])) is not None
    assert plan_batch_get(batch(*keys)) is None


def test_the_key_limit_counts_keys_of_every_table_together() -> None:
    half = [{"pk": {"S": str(index)}} for index in range(BATCH_GET_LIMIT // 2 + 1)]
    request = {"RequestItems": {"a": {"Keys": half}, "b": {"Keys": half}}}
    assert plan_batch_get(request) is None


def test_a_batch_get_whose_keys_name_different_attributes_goes_uncached() -> None:
    assert plan_batch_get(batch({"pk": {"S": "a"}}, {"other": {"S": "b"}})) is None


@pytest.mark.parametrize(
    "request_",
    [
        {},
        {"RequestItems": {}},
        {"RequestItems": []},
        {"RequestItems": {"t": {"Keys": []}}},
        {"RequestItems": {"t": {"Keys": [{"pk": {"S": ""}}]}}},
        {"RequestItems": {"t": {"Keys": [KEY], "ConsistentRead": True}}},
        {"RequestItems": {"t": {"Keys": [KEY], "Unknown": 1}}},
        {"RequestItems": {"": {"Keys": [KEY]}}},
        {"RequestItems": {"t": [KEY]}},
        {"RequestItems": {"t": {"Keys": [KEY]}}, "Unknown": 1},
        {"RequestItems": {"t": {"Keys": [KEY], "ProjectionExpression": "#x"}}},
    ],
    ids=repr,
)
def test_a_malformed_or_consistent_batch_get_goes_uncached(request_: dict[str, Any]) -> None:
    assert plan_batch_get(request_) is None


def test_a_batch_get_projecting_a_path_inside_a_key_attribute_goes_uncached() -> None:
    assert plan_batch_get(batch(KEY, ProjectionExpression="pk.inner, a")) is None
    assert plan_batch_get(batch(KEY, ProjectionExpression="pk[0]")) is None


def test_a_batch_get_projection_without_the_key_asks_for_the_key_too() -> None:
    plan = batch_plan(batch(KEY, ProjectionExpression="a"))
    assert plan.added_names == {"t": ("pk",)}
    spec = plan.request_items(plan.keys)["t"]
    assert spec["ProjectionExpression"] == "a, #aiodax_key0"
    assert spec["ExpressionAttributeNames"] == {"#aiodax_key0": "pk"}
    assert spec["Keys"] == [KEY]


def test_a_batch_get_projection_that_has_the_key_asks_for_nothing_more() -> None:
    plan = batch_plan(batch(KEY, ProjectionExpression="pk, a"))
    assert plan.added_names == {"t": ()}
    assert plan.request_items(plan.keys)["t"]["ProjectionExpression"] == "pk, a"


def test_a_legacy_batch_get_projection_gets_the_key_added_to_its_attribute_list() -> None:
    plan = batch_plan(batch(KEY, AttributesToGet=["a"]))
    spec = plan.request_items(plan.keys)["t"]
    assert spec["AttributesToGet"] == ["a", "pk"]
    assert "ProjectionExpression" not in spec


def test_added_key_attributes_keep_the_caller_s_own_placeholders() -> None:
    plan = batch_plan(batch(KEY, ProjectionExpression="#a", ExpressionAttributeNames={"#a": "a"}))
    spec = plan.request_items(plan.keys)["t"]
    assert spec["ExpressionAttributeNames"] == {"#a": "a", "#aiodax_key0": "pk"}


def test_an_answered_item_is_matched_to_its_key_and_loses_the_added_attributes() -> None:
    plan = batch_plan(batch(KEY, {"pk": {"S": "b"}}, ProjectionExpression="a"))
    flight_key, visible = plan.identify("t", {"pk": {"S": "b"}, "a": {"S": "x"}})
    assert flight_key == ("t", ("pk", "S", "b"), (".a",))
    assert flight_key in plan.wanted
    assert visible == {"a": {"S": "x"}}


def test_an_answered_item_keeps_key_attributes_the_caller_asked_for() -> None:
    plan = batch_plan(batch(KEY, ProjectionExpression="a, pk"))
    flight_key, visible = plan.identify("t", {"pk": {"S": "a"}, "a": {"S": "x"}})
    assert flight_key == plan.keys[0]
    assert visible == {"pk": {"S": "a"}, "a": {"S": "x"}}


def test_request_items_ask_for_exactly_the_keys_given_as_the_caller_wrote_them() -> None:
    first, second = {"n": {"N": "1.50"}}, {"n": {"N": "2"}}
    plan = batch_plan(batch(first, second, ConsistentRead=False))
    items = plan.request_items(plan.keys[1:])
    assert items == {"t": {"Keys": [second]}}
    assert plan.request_items(plan.keys)["t"]["Keys"] == [first, second]


def test_request_items_group_keys_by_table_with_each_table_s_own_projection() -> None:
    request = {
        "RequestItems": {
            "a": {"Keys": [KEY], "ProjectionExpression": "pk, x"},
            "b": {"Keys": [{"id": {"N": "1"}}]},
        }
    }
    plan = batch_plan(request)
    assert plan.request_items(plan.keys) == {
        "a": {"Keys": [KEY], "ProjectionExpression": "pk, x"},
        "b": {"Keys": [{"id": {"N": "1"}}]},
    }
    assert plan.projections == {"a": (".pk", ".x"), "b": None}


def test_every_round_trip_of_request_items_and_identify_returns_the_flight_keys() -> None:
    plan = batch_plan(batch(*({"pk": {"S": str(n)}} for n in range(5)), AttributesToGet=["v"]))
    spec = plan.request_items(plan.keys)["t"]
    answered = [{**key, "v": {"S": "value"}} for key in spec["Keys"]]
    found = [plan.identify("t", item) for item in answered]
    assert [flight_key for flight_key, _ in found] == plan.keys
    assert all(visible == {"v": {"S": "value"}} for _, visible in found)


def test_a_batch_get_for_the_key_schema_of_its_table_matches() -> None:
    plan = batch_plan(batch({"pk": {"S": "a"}, "sk": {"N": "1"}}))
    assert plan.keys_match({"t": KeySchema("pk", "sk")})
    assert plan.keys_match({"t": KeySchema("sk", "pk")})


def test_a_batch_get_for_keys_of_other_attributes_than_the_schema_s_does_not_match() -> None:
    plan = batch_plan(batch({"pk": {"S": "a"}}))
    assert not plan.keys_match({"t": KeySchema("pk", "sk")})
    assert not plan.keys_match({"t": KeySchema("id", None)})


def test_a_batch_get_of_a_table_whose_schema_is_unknown_matches() -> None:
    plan = batch_plan(batch({"pk": {"S": "a"}}))
    assert plan.keys_match({"t": None})
    assert plan.keys_match({})


def test_the_unprocessed_spec_is_the_caller_s_own_parameters_without_keys() -> None:
    plan = batch_plan(batch(KEY, ProjectionExpression="#a", ExpressionAttributeNames={"#a": "a"}))
    assert plan.unprocessed_spec("t") == {
        "ProjectionExpression": "#a",
        "ExpressionAttributeNames": {"#a": "a"},
    }


def test_an_unprocessed_key_is_read_into_its_flight_key() -> None:
    plan = batch_plan(batch({"n": {"N": "1"}}, ProjectionExpression="n"))
    assert plan.unprocessed_key("t", {"n": {"N": "1.0"}}) == plan.keys[0]
    assert plan.unprocessed_key("t", {"n": {"N": "x"}}) is None


def test_a_batch_get_asking_for_capacity_says_so_in_its_plan() -> None:
    request = {**batch(KEY), "ReturnConsumedCapacity": "INDEXES"}
    assert batch_plan(request).wants_capacity is True
    assert batch_plan(batch(KEY)).wants_capacity is False


def test_the_flight_keys_of_a_batch_get_and_a_get_item_of_one_item_agree() -> None:
    get = plan_get({**GET, "ProjectionExpression": "a"})
    plan = batch_plan(batch(KEY, ProjectionExpression="a"))
    assert get is not None
    assert plan.keys == [get.flight_key]
    assert canonical_key(KEY) == get.key


def test_a_batch_get_projecting_a_dotted_key_attribute_asks_for_it_once_and_returns_it() -> None:
    plan = plan_batch_get(
        {
            "RequestItems": {
                "t": {
                    "Keys": [{"pk.id": {"S": "a"}}],
                    "ProjectionExpression": "#k, v",
                    "ExpressionAttributeNames": {"#k": "pk.id"},
                }
            }
        }
    )
    assert plan is not None
    assert plan.added_names == {"t": ()}
    _, visible = plan.identify("t", {"pk.id": {"S": "a"}, "v": {"S": "x"}})
    assert visible == {"pk.id": {"S": "a"}, "v": {"S": "x"}}


def test_added_key_placeholders_never_overwrite_the_caller_s_own() -> None:
    plan = plan_batch_get(
        {
            "RequestItems": {
                "t": {
                    "Keys": [{"pk": {"S": "a"}}],
                    "ProjectionExpression": "#aiodax_key0",
                    "ExpressionAttributeNames": {"#aiodax_key0": "v"},
                }
            }
        }
    )
    assert plan is not None
    spec = plan.request_items(plan.keys)["t"]
    names = spec["ExpressionAttributeNames"]
    assert sorted(names.values()) == ["pk", "v"]


def test_a_batch_get_projecting_a_key_attribute_and_a_nested_path_is_cacheable() -> None:
    plan = plan_batch_get(
        {
            "RequestItems": {
                "t": {"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "pk, info.x"}
            }
        }
    )
    assert plan is not None
    assert plan.added_names == {"t": ()}


# ------------------------------------------- validated as DynamoDB validates

#: Spellings DynamoDB takes, each with the canonical projection it reads into.
VALID_PROJECTIONS: list[tuple[dict[str, Any], tuple[str, ...] | None]] = [
    ({"ProjectionExpression": "v"}, (".v",)),
    ({"ProjectionExpression": "V"}, (".V",)),
    ({"ProjectionExpression": "v, V"}, (".V", ".v")),  # names are case-sensitive
    ({"ProjectionExpression": "a1, b2c3, v_1, x_"}, (".a1", ".b2c3", ".v_1", ".x_")),
    ({"ProjectionExpression": "a.b[0].c"}, (".a.b[0].c",)),
    ({"ProjectionExpression": "a[0][1]"}, (".a[0][1]",)),
    ({"ProjectionExpression": "a[10], a[2147483647]"}, (".a[10]", ".a[2147483647]")),
    ({"ProjectionExpression": "a.b, a.c"}, (".a.b", ".a.c")),
    ({"ProjectionExpression": "a[0], a[1]"}, (".a[0]", ".a[1]")),
    ({"ProjectionExpression": "a.b[0].c, a.b[1].c"}, (".a.b[0].c", ".a.b[1].c")),
    ({"ProjectionExpression": "  v ,\n a . b [ 0 ] . c\t\r"}, (".a.b[0].c", ".v")),
    ({"ProjectionExpression": ".".join(["a"] * 32)}, ("." + ".".join(["a"] * 32),)),
    ({"ProjectionExpression": "a" + "[0]" * 31}, (".a" + "[0]" * 31,)),
    (
        {"ProjectionExpression": "#n.#m", "ExpressionAttributeNames": {"#n": "a", "#m": "b"}},
        (".a.b",),
    ),
    ({"ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "name"}}, (".name",)),
    ({"ProjectionExpression": "#n[0]", "ExpressionAttributeNames": {"#n": "a"}}, (".a[0]",)),
    (
        {"ProjectionExpression": "#v.x, #v.y", "ExpressionAttributeNames": {"#v": "a"}},
        (".a.x", ".a.y"),
    ),
    (
        {
            "ProjectionExpression": "#1, #_a, #A",
            "ExpressionAttributeNames": {"#1": "p", "#_a": "q", "#A": "r"},
        },
        (".p", ".q", ".r"),
    ),
    # A placeholder names any attribute: a reserved word, a dot, white space, Unicode.
    (
        {"ProjectionExpression": "#d, a.b", "ExpressionAttributeNames": {"#d": "a.b"}},
        (".a.b", ".a\\.b"),
    ),
    ({"ProjectionExpression": "#s", "ExpressionAttributeNames": {"#s": " é "}}, (". é ",)),
    (
        {
            "ProjectionExpression": "#" + "k" * 254,
            "ExpressionAttributeNames": {"#" + "k" * 254: "v"},
        },
        (".v",),
    ),
    ({"ProjectionExpression": "v" + " " * 4095}, (".v",)),  # 4 KB, the limit
    ({"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": "é" * 32767}}, None),
    ({"AttributesToGet": ["name", "a.b", "v", "V"]}, (".V", ".a\\.b", ".name", ".v")),
    ({"AttributesToGet": ("v",)}, (".v",)),
]


@pytest.mark.parametrize(("projection", "canonical"), VALID_PROJECTIONS, ids=repr)
def test_a_projection_dynamodb_takes_is_cached(
    projection: dict[str, Any], canonical: tuple[str, ...] | None
) -> None:
    plan = plan_get({**GET, **projection})
    assert plan is not None
    if canonical is not None:
        assert plan.projection == canonical
    batch_get = plan_batch_get(batch(KEY, **projection))
    assert batch_get is not None
    assert batch_get.projections["t"] == plan.projection


def test_spellings_of_one_projection_share_a_flight_key() -> None:
    spellings: list[dict[str, Any]] = [
        {"ProjectionExpression": "a.b[0], v"},
        {"ProjectionExpression": " v , a . b [ 0 ] "},
        {
            "ProjectionExpression": "#a.#b[0], #v",
            "ExpressionAttributeNames": {"#a": "a", "#b": "b", "#v": "v"},
        },
    ]
    keys = set()
    for spelling in spellings:
        plan = plan_get({**GET, **spelling})
        assert plan is not None
        keys.add(plan.flight_key)
    assert len(keys) == 1


@pytest.mark.parametrize(
    "projection",
    [
        {"ProjectionExpression": "name"},  # a reserved word
        {"ProjectionExpression": "Name"},
        {"ProjectionExpression": "a.name"},
        {"ProjectionExpression": "a[0].status"},
        {"ProjectionExpression": "size"},  # reserved, though DynamoDB Local takes it
        {"ProjectionExpression": "v, v"},  # paths that overlap
        {"ProjectionExpression": "v, #v", "ExpressionAttributeNames": {"#v": "v"}},
        {"ProjectionExpression": "#a, #b", "ExpressionAttributeNames": {"#a": "v", "#b": "v"}},
        {"ProjectionExpression": "a, a.b"},
        {"ProjectionExpression": "a.b, a"},
        {"ProjectionExpression": "a.b[0], a.b[0].c"},
        {"ProjectionExpression": "a.b, a[0]"},  # paths that conflict
        {"ProjectionExpression": "a[0].b, a.c"},
        {"ProjectionExpression": "a.b.c, a.b[0]"},
        {"ProjectionExpression": "1v"},  # tokens DynamoDB does not read
        {"ProjectionExpression": "_v"},
        {"ProjectionExpression": "é"},
        {"ProjectionExpression": "v-w"},
        {"ProjectionExpression": "a.1b"},
        {"ProjectionExpression": "a#b", "ExpressionAttributeNames": {"#b": "b"}},
        {"ProjectionExpression": "v\f"},
        {"ProjectionExpression": "v\v"},
        {"ProjectionExpression": "v\u00a0"},
        {"ProjectionExpression": "v\u2003"},
        {"ProjectionExpression": "# n", "ExpressionAttributeNames": {"#n": "v"}},
        {"ProjectionExpression": "#", "ExpressionAttributeNames": {"#": "v"}},
        {"ProjectionExpression": "#a-b", "ExpressionAttributeNames": {"#a-b": "v"}},
        {"ProjectionExpression": "#é", "ExpressionAttributeNames": {"#é": "v"}},
        {"ProjectionExpression": ":v"},
        {"ProjectionExpression": "a[00]"},  # indexes DynamoDB refuses
        {"ProjectionExpression": "a[01]"},
        {"ProjectionExpression": "a[+1]"},
        {"ProjectionExpression": "a[2147483648]"},
        {"ProjectionExpression": "a[99999999999999999999]"},
        {"ProjectionExpression": "a[0]b"},
        {"ProjectionExpression": "a[0"},
        {"ProjectionExpression": ".".join(["a"] * 33)},  # limits
        {"ProjectionExpression": "a" + "[0]" * 32},
        {"ProjectionExpression": "v" + " " * 4096},
        {"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": "é" * 32768}},
        {"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": "v" * 65536}},
        {"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": "\ud800"}},
        {
            "ProjectionExpression": "#" + "k" * 255,
            "ExpressionAttributeNames": {"#" + "k" * 255: "v"},
        },
        {"ProjectionExpression": ""},  # empty expressions
        {"ProjectionExpression": "  "},
        {"ProjectionExpression": "v,"},
        {"ProjectionExpression": ",v"},
        {"ProjectionExpression": "v,,w"},
        {"ProjectionExpression": None},
        {"ProjectionExpression": "v", "ExpressionAttributeNames": {"#v": "v"}},  # unused
        {"ProjectionExpression": "#v"},  # undefined
        {"ProjectionExpression": "#V", "ExpressionAttributeNames": {"#v": "v"}},
        {"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": ""}},
        {"ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": 1}},
        {"ProjectionExpression": "v", "ExpressionAttributeNames": {"v": "v"}},
        {"ProjectionExpression": "v", "ExpressionAttributeNames": None},
        {"AttributesToGet": ["v", "v"]},  # the legacy form
        {"AttributesToGet": ["v", ""]},
        {"AttributesToGet": ["v"], "ExpressionAttributeNames": {"#v": "v"}},
        {"AttributesToGet": ["v" * 65536]},
        {"AttributesToGet": None},
    ],
    ids=lambda projection: repr(projection)[:80],
)
def test_a_projection_dynamodb_refuses_is_never_cached(projection: dict[str, Any]) -> None:
    assert plan_get({**GET, **projection}) is None
    assert plan_batch_get(batch(KEY, **projection)) is None


@pytest.mark.parametrize("capacity", ["NONE", "TOTAL", "INDEXES"])
def test_every_capacity_mode_dynamodb_knows_is_cached(capacity: str) -> None:
    assert plan_get({**GET, "ReturnConsumedCapacity": capacity}) is not None
    assert plan_page("query", {**QUERY, "ReturnConsumedCapacity": capacity}) is not None
    assert plan_batch_get({**batch(KEY), "ReturnConsumedCapacity": capacity}) is not None


@pytest.mark.parametrize("capacity", ["BOGUS", "total", "", None, 1, ["TOTAL"]], ids=repr)
def test_a_capacity_mode_dynamodb_refuses_is_never_cached(capacity: object) -> None:
    # A page's store key leaves the capacity mode out: this is what keeps a page
    # from answering a request DynamoDB refuses.
    assert plan_get({**GET, "ReturnConsumedCapacity": capacity}) is None
    assert plan_page("query", {**QUERY, "ReturnConsumedCapacity": capacity}) is None
    assert plan_page("scan", {"TableName": "t", "ReturnConsumedCapacity": capacity}) is None
    assert plan_batch_get({**batch(KEY), "ReturnConsumedCapacity": capacity}) is None


@pytest.mark.parametrize("consistent", [0, "", None, 1, "false"], ids=repr)
def test_a_consistent_read_of_no_boolean_is_never_cached(consistent: object) -> None:
    assert plan_get({**GET, "ConsistentRead": consistent}) is None
    assert plan_page("scan", {"TableName": "t", "ConsistentRead": consistent}) is None
    assert plan_batch_get(batch(KEY, ConsistentRead=consistent)) is None


def _clash(one: tuple[str | int, ...], other: tuple[str | int, ...]) -> bool:
    """DynamoDB's rule, pair by pair: one path a prefix of the other, or a map beside a list."""
    for mine, theirs in zip(one, other, strict=False):
        if type(mine) is not type(theirs):
            return True
        if mine != theirs:
            return False
    return True


def test_overlaps_and_conflicts_are_found_among_many_paths_as_pair_by_pair() -> None:
    rng = random.Random(11)
    elements: list[str | int] = ["a", "b", 0, 1]
    for _ in range(3000):
        paths = [
            (rng.choice("ab"), *(rng.choice(elements) for _ in range(rng.randrange(0, 4))))
            for _ in range(rng.randrange(1, 6))
        ]
        expression = ", ".join(
            "".join(f"[{e}]" if isinstance(e, int) else f".{e}" for e in path)[1:] for path in paths
        )
        clash = any(_clash(p, q) for i, p in enumerate(paths) for q in paths[i + 1 :])
        plan = plan_get({**GET, "ProjectionExpression": expression})
        assert (plan is None) == clash, expression

"""Write plans (``_rules.writes``): which items a write touches, and what it leaves them as."""

from __future__ import annotations

from typing import Any

import pytest

from aiodax._rules.schema import KeySchema
from aiodax._rules.writes import (
    INVALIDATE,
    WritePlan,
    WriteRow,
    plan_write,
    tables_named,
    write_key,
)

PK = KeySchema("pk", None)
PK_SK = KeySchema("pk", "sk")
SCHEMAS = {"t": PK, "u": PK_SK}
KEY = {"pk": {"S": "a"}}
KEY_A = ("pk", "S", "a")
ITEM = {"pk": {"S": "a"}, "n": {"N": "1.50"}}


def planned(operation: str, request: dict[str, Any], schemas: Any = None) -> WritePlan:
    plan = plan_write(operation, request, SCHEMAS if schemas is None else schemas)
    assert plan is not None
    return plan


# ---------------------------------------------------------------- tables_named


@pytest.mark.parametrize(
    ("operation", "request_", "tables"),
    [
        ("put_item", {"TableName": "t", "Item": ITEM}, ["t"]),
        ("update_item", {"TableName": "t", "Key": KEY}, ["t"]),
        ("delete_item", {"TableName": "t", "Key": KEY}, ["t"]),
        (
            "batch_write_item",
            {"RequestItems": {"t": [{"PutRequest": {"Item": ITEM}}], "u": []}},
            ["t", "u"],
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": "t", "Item": ITEM}},
                    {"Update": {"TableName": "u", "Key": KEY}},
                    {"Delete": {"TableName": "v", "Key": KEY}},
                ]
            },
            ["t", "u", "v"],
        ),
        ("execute_statement", {"Statement": "UPDATE t SET a = 1"}, []),
        ("batch_execute_statement", {"Statements": []}, []),
        ("execute_transaction", {"TransactStatements": []}, []),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_tables_named_lists_the_tables_whose_schemas_a_write_needs(
    operation: str, request_: dict[str, Any], tables: list[str]
) -> None:
    assert tables_named(operation, request_) == tables


def test_a_condition_check_in_a_transaction_needs_no_schema() -> None:
    request = {
        "TransactItems": [
            {"ConditionCheck": {"TableName": "c", "Key": KEY, "ConditionExpression": "x"}},
            {"Put": {"TableName": "t", "Item": ITEM}},
        ]
    }
    assert tables_named("transact_write_items", request) == ["t"]


@pytest.mark.parametrize(
    ("operation", "request_"),
    [
        ("put_item", {"Item": ITEM}),
        ("put_item", {"TableName": 1, "Item": ITEM}),
        ("put_item", {"TableName": "t"}),
        ("put_item", {"TableName": "t", "Item": [ITEM]}),
        ("update_item", {"Key": KEY}),
        ("delete_item", {"TableName": None, "Key": KEY}),
        ("batch_write_item", {}),
        ("batch_write_item", {"RequestItems": [("t", [])]}),
        ("batch_write_item", {"RequestItems": {"t": {"PutRequest": {"Item": ITEM}}}}),
        ("batch_write_item", {"RequestItems": {1: []}}),
        ("transact_write_items", {}),
        ("transact_write_items", {"TransactItems": {"Put": {}}}),
        ("transact_write_items", {"TransactItems": ["Put"]}),
        ("transact_write_items", {"TransactItems": [{}]}),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "Put": {"TableName": "t", "Item": ITEM},
                        "Delete": {"TableName": "t", "Key": KEY},
                    }
                ]
            },
        ),
        ("transact_write_items", {"TransactItems": [{"Put": "t"}]}),
        ("transact_write_items", {"TransactItems": [{"Put": {"Item": ITEM}}]}),
        ("transact_write_items", {"TransactItems": [{"ConditionCheck": {"Key": KEY}}]}),
    ],
    ids=repr,
)
def test_a_malformed_write_names_no_tables_and_is_sent_as_it_is(
    operation: str, request_: dict[str, Any]
) -> None:
    assert tables_named(operation, request_) is None


def test_tables_named_refuses_what_is_not_a_write() -> None:
    with pytest.raises(ValueError, match="not a write"):
        tables_named("get_item", {"TableName": "t", "Key": KEY})


# ------------------------------------------------------------------- write_key


def test_a_write_key_of_the_table_s_key_attributes_names_the_item() -> None:
    assert write_key(PK, KEY) == KEY_A
    assert write_key(PK_SK, {"sk": {"N": "2"}, "pk": {"S": "a"}}) is not None


@pytest.mark.parametrize(
    "key",
    [
        {"id": {"S": "a"}},
        {"pk": {"S": "a"}, "sk": {"S": "b"}},
        {"pk": {"S": ""}},
        None,
    ],
    ids=repr,
)
def test_a_write_key_of_other_attributes_or_malformed_names_no_item(key: object) -> None:
    assert write_key(PK, key) is None


def test_a_write_key_without_a_schema_names_no_item() -> None:
    assert write_key(None, KEY) is None


def test_a_write_key_missing_the_sort_key_names_no_item() -> None:
    assert write_key(PK_SK, KEY) is None


def test_a_write_with_a_key_of_other_attributes_drops_its_whole_table() -> None:
    plan = planned("delete_item", {"TableName": "t", "Key": {"id": {"S": "a"}}})
    assert plan.rows == (WriteRow("t", None, None),)
    assert plan.unkeyed_tables == {"t"}
    assert plan.refs == ()


# ------------------------------------------------------------------- put, delete


def test_a_put_stores_the_item_with_its_top_level_numbers_as_dynamodb_returns_them() -> None:
    plan = planned("put_item", {"TableName": "t", "Item": ITEM})
    assert plan.send == {"TableName": "t", "Item": ITEM}
    assert plan.refs == (("t", KEY_A),)
    outcome = plan.outcomes({})[("t", KEY_A)]
    assert outcome == {"pk": {"S": "a"}, "n": {"N": "1.5"}}
    assert plan.unkeyed_tables == frozenset()


def test_a_put_s_image_is_the_cache_s_own_not_the_caller_s() -> None:
    item: dict[str, Any] = {"pk": {"S": "a"}, "l": {"L": [{"S": "x"}]}}
    plan = planned("put_item", {"TableName": "t", "Item": item})
    item["l"]["L"].append({"S": "y"})
    outcome = plan.outcomes({})[("t", KEY_A)]
    assert outcome is not INVALIDATE and outcome is not None
    assert outcome["l"] == {"L": [{"S": "x"}]}


def test_a_put_to_a_table_of_unknown_schema_is_unkeyed() -> None:
    plan = planned("put_item", {"TableName": "x", "Item": ITEM})
    assert plan.unkeyed_tables == {"x"}
    assert plan.outcomes({}) == {}


def test_a_put_of_an_item_without_its_key_attributes_is_unkeyed() -> None:
    plan = planned("put_item", {"TableName": "u", "Item": ITEM})
    assert plan.unkeyed_tables == {"u"}


def test_a_delete_leaves_its_item_missing() -> None:
    plan = planned("delete_item", {"TableName": "t", "Key": KEY})
    assert plan.outcomes({"Attributes": {"pk": {"S": "a"}}}) == {("t", KEY_A): None}


# --------------------------------------------------------------------- update


def test_an_update_asking_for_no_return_values_sends_all_new_and_hides_it() -> None:
    request = {"TableName": "t", "Key": KEY, "UpdateExpression": "SET n = :n"}
    plan = planned("update_item", request)
    assert plan.send["ReturnValues"] == "ALL_NEW"
    assert "ReturnValues" not in request
    assert plan.strip_attributes and plan.image_in_answer
    new = {"pk": {"S": "a"}, "n": {"N": "2"}}
    assert plan.outcomes({"Attributes": new}) == {("t", KEY_A): new}
    assert plan.answer_for_caller({"Attributes": new, "ResponseMetadata": {}}) == {
        "ResponseMetadata": {}
    }


def test_an_update_asking_for_none_explicitly_is_the_same_as_asking_nothing() -> None:
    plan = planned("update_item", {"TableName": "t", "Key": KEY, "ReturnValues": "NONE"})
    assert plan.send["ReturnValues"] == "ALL_NEW"
    assert plan.strip_attributes


def test_an_update_asking_for_all_new_learns_the_image_and_shows_it() -> None:
    plan = planned("update_item", {"TableName": "t", "Key": KEY, "ReturnValues": "ALL_NEW"})
    assert plan.send["ReturnValues"] == "ALL_NEW"
    assert plan.image_in_answer and not plan.strip_attributes
    new = {"pk": {"S": "a"}, "n": {"N": "2"}}
    assert plan.outcomes({"Attributes": new}) == {("t", KEY_A): new}
    assert plan.answer_for_caller({"Attributes": new}) == {"Attributes": new}


@pytest.mark.parametrize("asked", ["UPDATED_NEW", "ALL_OLD", "UPDATED_OLD"])
def test_an_update_returning_part_or_old_images_invalidates_its_item(asked: str) -> None:
    plan = planned("update_item", {"TableName": "t", "Key": KEY, "ReturnValues": asked})
    assert plan.send["ReturnValues"] == asked
    assert not plan.image_in_answer and not plan.strip_attributes
    assert plan.outcomes({"Attributes": {"n": {"N": "2"}}}) == {("t", KEY_A): INVALIDATE}
    assert plan.answer_for_caller({"Attributes": {"n": {"N": "2"}}}) == {
        "Attributes": {"n": {"N": "2"}}
    }


def test_an_unkeyed_update_learns_no_image_but_still_hides_the_one_it_asked_for() -> None:
    plan = planned("update_item", {"TableName": "t", "Key": {"id": {"S": "a"}}})
    assert not plan.image_in_answer
    assert plan.unkeyed_tables == {"t"}
    assert plan.outcomes({"Attributes": {"id": {"S": "a"}}}) == {}
    assert plan.answer_for_caller({"Attributes": {"id": {"S": "a"}}}) == {}


# ---------------------------------------------------------------- batch write


def test_a_batch_write_puts_and_deletes_each_of_its_items() -> None:
    other = {"pk": {"S": "b"}, "sk": {"N": "1"}}
    request = {
        "RequestItems": {
            "t": [{"PutRequest": {"Item": ITEM}}],
            "u": [{"DeleteRequest": {"Key": other}}],
        }
    }
    plan = planned("batch_write_item", request)
    assert plan.outcomes({"UnprocessedItems": {}}) == {
        ("t", KEY_A): {"pk": {"S": "a"}, "n": {"N": "1.5"}},
        ("u", ("pk", "S", "b", "sk", "N", "1")): None,
    }


def test_unprocessed_items_of_a_batch_write_are_left_out_of_its_outcomes() -> None:
    kept = {"pk": {"S": "b"}}
    request = {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": ITEM}},
                {"DeleteRequest": {"Key": kept}},
            ]
        }
    }
    plan = planned("batch_write_item", request)
    answer = {"UnprocessedItems": {"t": [{"PutRequest": {"Item": ITEM}}]}}
    assert plan.outcomes(answer) == {("t", ("pk", "S", "b")): None}
    answer = {"UnprocessedItems": {"t": [{"DeleteRequest": {"Key": kept}}]}}
    assert set(plan.outcomes(answer)) == {("t", KEY_A)}


def test_a_malformed_entry_of_a_batch_write_makes_its_table_unkeyed() -> None:
    request = {"RequestItems": {"t": [{"PutRequest": {"Item": ITEM}}, {"Nothing": {}}]}}
    plan = planned("batch_write_item", request)
    assert plan.unkeyed_tables == {"t"}
    assert plan.refs == (("t", KEY_A),)


# ---------------------------------------------------------------- transactions


def test_a_transaction_puts_invalidates_updates_deletes_and_skips_condition_checks() -> None:
    request = {
        "TransactItems": [
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
            {"Put": {"TableName": "t", "Item": ITEM}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "u"}}}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "d"}}}},
        ]
    }
    plan = planned("transact_write_items", request)
    assert plan.send == request
    assert plan.outcomes({}) == {
        ("t", KEY_A): {"pk": {"S": "a"}, "n": {"N": "1.5"}},
        ("t", ("pk", "S", "u")): INVALIDATE,
        ("t", ("pk", "S", "d")): None,
    }
    assert plan.unkeyed_tables == frozenset()


def test_a_transaction_with_a_client_request_token_stores_nothing_it_names() -> None:
    # DynamoDB answers a replayed token with success without applying the
    # transaction: the answer does not say that its Put and Delete happened.
    request = {
        "TransactItems": [
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
            {"Put": {"TableName": "t", "Item": ITEM}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "u"}}}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "d"}}}},
            {"Put": {"TableName": "t"}},
        ],
        "ClientRequestToken": "token",
    }
    plan = planned("transact_write_items", request)
    assert plan.send == request
    assert plan.outcomes({}) == {
        ("t", KEY_A): INVALIDATE,
        ("t", ("pk", "S", "u")): INVALIDATE,
        ("t", ("pk", "S", "d")): INVALIDATE,
    }
    assert plan.unkeyed_tables == frozenset({"t"})
    assert plan.outcomes({"ResponseMetadata": {"HTTPStatusCode": 200}}) == plan.outcomes({})


def test_a_transaction_put_without_an_item_makes_its_table_unkeyed() -> None:
    plan = planned("transact_write_items", {"TransactItems": [{"Put": {"TableName": "t"}}]})
    assert plan.rows == (WriteRow("t", None, INVALIDATE),)


# --------------------------------------------------------------------- PartiQL


@pytest.mark.parametrize(
    ("operation", "request_"),
    [
        ("execute_statement", {"Statement": "SELECT * FROM t WHERE pk = 'a'"}),
        ("execute_statement", {"Statement": "  select * from t"}),
        ("batch_execute_statement", {"Statements": [{"Statement": "SELECT * FROM t"}]}),
        (
            "execute_transaction",
            {"TransactStatements": [{"Statement": "EXISTS(SELECT * FROM t)"}]},
        ),
    ],
    ids=repr,
)
def test_a_partiql_read_has_no_write_plan(operation: str, request_: dict[str, Any]) -> None:
    assert plan_write(operation, request_, {}) is None


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("UPDATE t SET a = 1 WHERE pk = 'a'", "t"),
        ('update "my-table.v2" set a = 1', "my-table.v2"),
        ("INSERT INTO t VALUE {'pk': 'a'}", "t"),
        ("  insert   into  t value {'pk': 'a'}", "t"),
        ("DELETE FROM t WHERE pk = 'a'", "t"),
        ("Delete From \"t\" Where pk = 'a'", "t"),
    ],
)
def test_a_partiql_write_drops_the_table_it_names(statement: str, table: str) -> None:
    plan = planned("execute_statement", {"Statement": statement}, {})
    assert plan.rows == (WriteRow(table, None, INVALIDATE),)
    assert plan.unkeyed_tables == {table}
    assert not plan.everything


def test_a_partiql_batch_drops_every_table_it_writes_and_none_it_only_reads() -> None:
    statements = [
        {"Statement": "SELECT * FROM r"},
        {"Statement": "UPDATE b SET x = 1"},
        {"Statement": "DELETE FROM a WHERE pk = 'x'"},
        {"Statement": "UPDATE b SET y = 1"},
    ]
    plan = planned("batch_execute_statement", {"Statements": statements}, {})
    assert plan.unkeyed_tables == {"a", "b"}
    assert [row.table for row in plan.rows] == ["a", "b"]
    assert not plan.everything


@pytest.mark.parametrize(
    ("operation", "request_"),
    [
        ("execute_statement", {"Statement": "-- a comment\nUPDATE t SET a = 1"}),
        ("execute_statement", {"Statement": "UPSERT t"}),
        ("execute_statement", {}),
        ("execute_statement", {"Statement": 5}),
        ("batch_execute_statement", {"Statements": "UPDATE t SET a = 1"}),
        ("batch_execute_statement", {"Statements": [{"Statement": "SELECT 1"}, "UPDATE t"]}),
        (
            "execute_transaction",
            {"TransactStatements": [{"Statement": "UPDATE t SET a = 1"}, {"Stmt": "x"}]},
        ),
    ],
    ids=repr,
)
def test_a_partiql_statement_aiodax_cannot_read_drops_everything(
    operation: str, request_: dict[str, Any]
) -> None:
    plan = planned(operation, request_, {})
    assert plan.everything
    assert plan.rows == ()
    assert plan.send == request_

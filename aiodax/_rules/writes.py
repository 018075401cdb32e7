"""What each write does to the cache: its write plan, decided before it is sent.

A write plan lists the items a write touches, each as a row ``(table, key,
outcome)``: the key is ``None`` when aiodax cannot tell which item (a malformed
key, a key of other attributes, PartiQL), which makes the write drop its whole
table; the outcome is the item's new image, ``None`` for a deletion, or
``INVALIDATE`` when the new image is unknown.  After DynamoDB answered,
``WritePlan.outcomes`` says per key what the cache learns from the answer (an
``UpdateItem`` returns its new image, a ``BatchWriteItem`` the items it did not
write).  A write whose success does not say that it applied (a transaction with
a ``ClientRequestToken``, which DynamoDB may answer as a replay) learns nothing:
every item it names is invalidated.

The plans need key schemas (``KeySchema``) for the tables a write names, which
``tables_named`` lists so that they can be fetched first.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from .partiql import written_tables
from .schema import KeySchema
from .wire import Image, ItemKey, canonical_key, freeze


class _Invalidate(enum.Enum):
    INVALIDATE = "invalidate"

    def __repr__(self) -> str:
        return "INVALIDATE"


#: A write's outcome for an item whose new image is unknown: drop what is cached.
INVALIDATE: Final = _Invalidate.INVALIDATE
#: An item's new image (``None``: deleted), or ``INVALIDATE``.
Outcome: TypeAlias = Image | Literal[_Invalidate.INVALIDATE]
#: (table, canonical key): one item, for the write bookkeeping.
ItemRef: TypeAlias = tuple[str, ItemKey]
Schemas: TypeAlias = Mapping[str, KeySchema | None]

_PARTIQL_STATEMENTS: Final = {
    "execute_statement": None,
    "batch_execute_statement": "Statements",
    "execute_transaction": "TransactStatements",
}
#: PartiQL's operations: a statement that writes nothing (a ``SELECT``) is a read.
PARTIQL_OPERATIONS: Final = frozenset(_PARTIQL_STATEMENTS)


@dataclass(frozen=True, slots=True)
class WriteRow:
    table: str
    key: ItemKey | None
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class WritePlan:
    """A write as the cache sees it: what to send, the items it touches."""

    operation: str
    send: dict[str, Any]
    rows: tuple[WriteRow, ...]
    #: the write may have changed any table (PartiQL aiodax does not understand)
    everything: bool = False
    #: the caller asked ``UpdateItem`` for no ``ReturnValues``; aiodax asked ``ALL_NEW``
    strip_attributes: bool = False
    #: ``UpdateItem``: the answer's ``Attributes`` are the item's whole new image
    image_in_answer: bool = False
    schemas: Schemas | None = None

    @property
    def unkeyed_tables(self) -> frozenset[str]:
        """Tables whose written items aiodax cannot name: dropped whole."""
        return frozenset(row.table for row in self.rows if row.key is None)

    @property
    def refs(self) -> tuple[ItemRef, ...]:
        return tuple((row.table, row.key) for row in self.rows if row.key is not None)

    def outcomes(self, answer: Mapping[str, Any]) -> dict[ItemRef, Outcome]:
        """What DynamoDB's ``answer`` tells of each keyed item; a key left out is invalidated."""
        if self.image_in_answer:
            image = freeze(answer.get("Attributes"))
            return {ref: image for ref in self.refs}
        found = {(row.table, row.key): row.outcome for row in self.rows if row.key is not None}
        for table, writes in (answer.get("UnprocessedItems") or {}).items():
            schema = None if self.schemas is None else self.schemas.get(table)
            for request in writes:
                row = _batch_write_row(table, schema, request)
                if row.key is not None:
                    found.pop((table, row.key), None)
        return found

    def answer_for_caller(self, answer: dict[str, Any]) -> dict[str, Any]:
        if self.strip_attributes:
            answer.pop("Attributes", None)
        return answer


def tables_named(operation: str, request: Mapping[str, Any]) -> list[str] | None:
    """The tables a write request names, whose schemas its plan needs.

    ``None``: the request is malformed in a way DynamoDB will refuse; it is sent
    as it is, uncached.
    """
    if operation in _PARTIQL_STATEMENTS:
        return []
    if operation in ("put_item", "update_item", "delete_item"):
        table = request.get("TableName")
        if type(table) is not str:
            return None
        if operation == "put_item" and not isinstance(request.get("Item"), dict):
            return None
        return [table]
    if operation == "batch_write_item":
        items = request.get("RequestItems")
        if not isinstance(items, dict):
            return None
        if not all(type(t) is str and isinstance(w, list) for t, w in items.items()):
            return None
        return list(items)
    if operation == "transact_write_items":
        return _transact_tables(request.get("TransactItems"))
    raise ValueError(f"not a write: {operation}")


def _transact_tables(actions: object) -> list[str] | None:
    if not isinstance(actions, list):
        return None
    tables = []
    for action in actions:
        if not isinstance(action, dict) or len(action) != 1:
            return None
        ((kind, spec),) = action.items()
        table = spec.get("TableName") if isinstance(spec, dict) else None
        if type(table) is not str:
            return None
        if kind != "ConditionCheck":  # it writes nothing: no schema needed
            tables.append(table)
    return tables


def plan_write(operation: str, request: Mapping[str, Any], schemas: Schemas) -> WritePlan | None:
    """The plan of a write whose tables' schemas (``tables_named``) are at hand.

    ``None``: the write touches nothing cached (a PartiQL read); send it as it is.
    """
    send = dict(request)
    if operation == "put_item":
        table, item = request["TableName"], request["Item"]
        schema = schemas.get(table)
        key = None if schema is None else schema.key_of(item)
        return WritePlan(operation, send, (WriteRow(table, key, freeze(item, written=True)),))
    if operation == "update_item":
        return _plan_update(request, schemas)
    if operation == "delete_item":
        table = request["TableName"]
        key = write_key(schemas.get(table), request.get("Key"))
        return WritePlan(operation, send, (WriteRow(table, key, None),))
    if operation == "batch_write_item":
        rows = tuple(
            _batch_write_row(table, schemas.get(table), write)
            for table, writes in request["RequestItems"].items()
            for write in writes
        )
        return WritePlan(operation, send, rows, schemas=schemas)
    if operation == "transact_write_items":
        rows = _transact_rows(request["TransactItems"], schemas)
        if "ClientRequestToken" in request:
            rows = _unconfirmed(rows)
        return WritePlan(operation, send, rows)
    return _plan_partiql(operation, request)


def _unconfirmed(rows: tuple[WriteRow, ...]) -> tuple[WriteRow, ...]:
    """``rows`` of a write whose success does not say that it applied: all invalidated.

    DynamoDB answers a transaction whose ``ClientRequestToken`` was used in the
    last 10 minutes with success, applying nothing (a retry after an ambiguous
    failure): its images may be older than what other writes did since.
    """
    return tuple(WriteRow(row.table, row.key, INVALIDATE) for row in rows)


def _plan_update(request: Mapping[str, Any], schemas: Schemas) -> WritePlan:
    table = request["TableName"]
    key = write_key(schemas.get(table), request.get("Key"))
    asked = request.get("ReturnValues", "NONE")
    send = dict(request)
    if asked == "NONE":
        # The new image costs DynamoDB no capacity and spares the next read a miss.
        send["ReturnValues"] = "ALL_NEW"
    return WritePlan(
        "update_item",
        send,
        (WriteRow(table, key, INVALIDATE),),
        strip_attributes=asked == "NONE",
        image_in_answer=asked in ("NONE", "ALL_NEW") and key is not None,
    )


def write_key(schema: KeySchema | None, raw_key: Any) -> ItemKey | None:
    """The canonical key a write names, or ``None`` when aiodax cannot tell which item.

    A key that is malformed, or whose attributes are not the table's key schema
    (DynamoDB refuses it; a laxer server may apply it to some item), makes the
    write *unkeyed*: if it succeeds, the whole table's entries are dropped.
    """
    key = canonical_key(raw_key)
    if key is None or schema is None or not schema.names_key(key):
        return None
    return key


def _batch_write_row(table: str, schema: KeySchema | None, request: Any) -> WriteRow:
    if isinstance(request, dict):
        put = request.get("PutRequest")
        if isinstance(put, dict) and isinstance(put.get("Item"), dict):
            item = put["Item"]
            key = schema.key_of(item) if schema is not None else None
            return WriteRow(table, key, freeze(item, written=True))
        delete = request.get("DeleteRequest")
        if isinstance(delete, dict):
            return WriteRow(table, write_key(schema, delete.get("Key")), None)
    return WriteRow(table, None, INVALIDATE)


def _transact_rows(actions: list[dict[str, Any]], schemas: Schemas) -> tuple[WriteRow, ...]:
    rows = []
    for action in actions:
        ((kind, spec),) = action.items()
        if kind == "ConditionCheck":
            continue
        table = spec["TableName"]
        schema = schemas.get(table)
        if kind == "Put":
            item = spec.get("Item")
            if isinstance(item, dict):
                key = schema.key_of(item) if schema is not None else None
                rows.append(WriteRow(table, key, freeze(item, written=True)))
            else:
                rows.append(WriteRow(table, None, INVALIDATE))
        else:
            # An Update's new image is not returned by a transaction: invalidate.
            outcome: Outcome = None if kind == "Delete" else INVALIDATE
            rows.append(WriteRow(table, write_key(schema, spec.get("Key")), outcome))
    return tuple(rows)


def _plan_partiql(operation: str, request: Mapping[str, Any]) -> WritePlan | None:
    """PartiQL, never cached; a write drops every table it names.

    PartiQL does not name the items it writes in a form aiodax reads (that is its
    ``WHERE`` clause), so a written table is dropped whole; a statement whose
    table aiodax cannot read off it drops everything.
    """
    field = _PARTIQL_STATEMENTS[operation]
    statements = (request.get("Statement"),) if field is None else _statements(request.get(field))
    tables = written_tables(statements)
    if tables is not None and not tables:
        return None
    rows = tuple(WriteRow(table, None, INVALIDATE) for table in sorted(tables or ()))
    return WritePlan(operation, dict(request), rows, everything=tables is None)


def _statements(entries: object) -> list[object]:
    """The PartiQL texts of ``Statements`` or ``TransactStatements`` (``None`` where unreadable)."""
    if not isinstance(entries, list):
        return [None]
    return [entry.get("Statement") if isinstance(entry, dict) else None for entry in entries]

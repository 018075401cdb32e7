"""What a :class:`~aiodax.testing.LaggingReplica` does with each request, decided
from the operation and the request alone: where it goes, what the replica replays,
whether the replica's answer shows it applied it, and how a split BatchGetItem's two
answers are joined.  Pure: no I/O.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from aiodax.testing._proxy import parsed_json

Route: TypeAlias = Literal["consistent", "eventual", "write", "control"]
"""How the proxy routed a request, the second half of a :attr:`LaggingReplica.counts` key.

``"consistent"``: a read answered by the primary; ``"eventual"``: a read answered by the
replica; ``"write"``: a write, sent to the primary and replayed on the replica after the
lag; ``"control"``: anything else (the control plane), sent to the primary and, when it
changes something, to the replica at once.
"""

_SELECT: Final = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_READS: Final = frozenset({"GetItem", "Query", "Scan"})
_WRITES: Final = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


@dataclass(frozen=True, slots=True)
class Plan:
    route: Route
    #: sent to the replica too once the primary succeeded: after the lag for a write,
    #: at once for the control plane
    replayed: bool = False
    #: a BatchGetItem naming tables read both ways: (consistent part, eventual part)
    split: tuple[dict[str, Any], dict[str, Any]] | None = None


def plan(operation: str | None, body: object) -> Plan:
    """Where a request goes.

    A malformed request is routed as its operation's well-formed kind would be: the
    server it reaches judges it as the other would (both run the same software).
    """
    if operation is None:
        return Plan("control")
    request = body if isinstance(body, dict) else {}
    if operation in _READS:
        return _read(request.get("ConsistentRead") is True)
    if operation == "BatchGetItem":
        return _batch_get(request)
    if operation == "TransactGetItems":
        return _read(consistent=True)
    if operation in _WRITES:
        return Plan("write", replayed=True)
    if operation == "ExecuteStatement":
        if _is_select(request.get("Statement")):
            return _read(request.get("ConsistentRead") is True)
        return Plan("write", replayed=True)
    if operation == "BatchExecuteStatement":
        statements = _dicts(request.get("Statements"))
        if statements and all(_is_select(s.get("Statement")) for s in statements):
            # A batch is one request to one server: one consistent statement makes it
            # consistent (a consistent answer is always a correct eventual one).
            return _read(any(s.get("ConsistentRead") is True for s in statements))
        return Plan("write", replayed=True)
    if operation == "ExecuteTransaction":
        statements = _dicts(request.get("TransactStatements"))
        if statements and all(_is_select(s.get("Statement")) for s in statements):
            return _read(consistent=True)
        return Plan("write", replayed=True)
    if operation.startswith(("Describe", "List", "Get")):
        return Plan("control")
    return Plan("control", replayed=True)


def _read(consistent: bool) -> Plan:
    return Plan("consistent" if consistent else "eventual")


def _batch_get(request: dict[str, Any]) -> Plan:
    tables = request.get("RequestItems")
    if not isinstance(tables, dict):
        return _read(consistent=False)
    consistent = {
        name: keys
        for name, keys in tables.items()
        if isinstance(keys, dict) and keys.get("ConsistentRead") is True
    }
    if not consistent or len(consistent) == len(tables):
        return _read(bool(consistent))
    eventual = {name: keys for name, keys in tables.items() if name not in consistent}
    return Plan(
        "consistent",
        split=({**request, "RequestItems": consistent}, {**request, "RequestItems": eventual}),
    )


def _is_select(statement: object) -> bool:
    # Anything not plainly a SELECT (a comment first, say) counts as a write: the
    # primary answers it, and replaying a read on the replica changes nothing.
    return isinstance(statement, str) and _SELECT.match(statement) is not None


def _dicts(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v if isinstance(v, dict) else {} for v in value]


def _object(data: bytes) -> dict[str, Any]:
    parsed = parsed_json(data)
    return parsed if isinstance(parsed, dict) else {}


def replay_body(operation: str, request: bytes, answer: bytes) -> bytes | None:
    """What to send the replica for a request the primary answered with 200.

    The request itself, but without what the primary left undone (a BatchWriteItem's
    ``UnprocessedItems``, a BatchExecuteStatement's failed statements); ``None`` when
    the primary did nothing.
    """
    if operation == "BatchWriteItem":
        unprocessed = _object(answer).get("UnprocessedItems")
        if not unprocessed or not isinstance(unprocessed, dict):
            return request
        body = _object(request)
        remaining = _without(body.get("RequestItems"), unprocessed)
        return dumps({**body, "RequestItems": remaining}) if remaining else None
    if operation == "BatchExecuteStatement":
        responses = _object(answer).get("Responses")
        body = _object(request)
        statements = body.get("Statements")
        if not (
            isinstance(responses, list)
            and isinstance(statements, list)
            and len(responses) == len(statements)
        ):
            return request
        done = [
            statement
            for statement, response in zip(statements, responses, strict=True)
            if not (isinstance(response, dict) and "Error" in response)
        ]
        if len(done) == len(statements):
            return request
        return dumps({**body, "Statements": done}) if done else None
    return request


def _without(tables: object, unprocessed: dict[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(tables, dict):
        return {}
    remaining: dict[str, list[Any]] = {}
    for name, requests in tables.items():
        left = list(requests) if isinstance(requests, list) else []
        for undone in unprocessed.get(name) or ():
            with contextlib.suppress(ValueError):
                left.remove(undone)
        if left:
            remaining[name] = left
    return remaining


def replay_failure(operation: str, status: int, answer: bytes) -> str | None:
    """Why the replica's answer to a replay shows it did not apply all of it, if it did not."""
    if status != 200:
        text = answer[:500].decode(errors="replace")
        return f"{operation}: the replica answered {status}: {text}"
    if operation == "BatchWriteItem" and _object(answer).get("UnprocessedItems"):
        return f"{operation}: the replica left items unprocessed"
    if operation == "BatchExecuteStatement":
        responses = _object(answer).get("Responses")
        if isinstance(responses, list) and any(
            isinstance(r, dict) and "Error" in r for r in responses
        ):
            return f"{operation}: a statement failed on the replica"
    return None


def merged(consistent: bytes, eventual: bytes) -> bytes:
    """One BatchGetItem answer from the answers to its two parts (disjoint tables)."""
    first, second = _object(consistent), _object(eventual)
    merged = {**second, **first}
    for key in ("Responses", "UnprocessedKeys"):
        if key in first or key in second:
            merged[key] = {**(second.get(key) or {}), **(first.get(key) or {})}
    if "ConsumedCapacity" in first or "ConsumedCapacity" in second:
        merged["ConsumedCapacity"] = [
            *(first.get("ConsumedCapacity") or ()),
            *(second.get("ConsumedCapacity") or ()),
        ]
    return dumps(merged)


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()

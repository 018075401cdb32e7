"""The backend seam: anything with the aiobotocore DynamoDB client's coroutine methods.

aiodax calls a backend in exactly one way, ``await backend.<operation>(**request)``,
and reads exactly one thing from its failures: whether DynamoDB may have applied
a write that raised.  What ``Cache.wrap`` is handed (a client, a resource, one of
its tables, a resource's own client) is told apart here too, and only here.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Final

from botocore.endpoint import DEFAULT_TIMEOUT
from botocore.exceptions import ClientError, HTTPClientError, ParamValidationError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

    Backend = DynamoDBClient
else:
    Backend = Any

#: Errors after which the cached item may be wrong although DynamoDB answered 4xx:
#: the condition failed because the item is not what the writer believed it to be.
_SUSPECT_CODES: Final = frozenset(
    {"ConditionalCheckFailedException", "TransactionCanceledException"}
)

#: DynamoDB's answers that say "not now" rather than "not so": the request may succeed later.
_THROTTLING_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)


#: What boto3's ``DynamoDBHighLevelResource`` registers on its client to speak
#: Python: (event, unique id).  The engine's client must not run them.
_PYTHON_HANDLERS: Final = (
    ("provide-client-params.dynamodb", "dynamodb-create-params-copy"),
    ("before-parameter-build.dynamodb", "dynamodb-condition-expression"),
    ("before-parameter-build.dynamodb", "dynamodb-attr-value-input"),
    ("after-call.dynamodb", "dynamodb-attr-value-output"),
)


def is_dynamodb_backend(candidate: object) -> bool:
    """Whether ``candidate`` is a DynamoDB client (or has its ``meta`` and methods)."""
    meta = getattr(candidate, "meta", None)
    service_model = getattr(meta, "service_model", None)
    return getattr(service_model, "service_name", None) == "dynamodb" and callable(
        getattr(candidate, "get_item", None)
    )


def write_surely_not_applied(error: BaseException) -> bool:
    """True when a failed write certainly left DynamoDB and the cached item as they were.

    Everything else (timeouts, lost connections, 5xx, cancellation while the request
    was out, a failed condition) leaves the cached item suspect: it is invalidated.
    """
    if isinstance(error, ParamValidationError):
        return True  # botocore refused the request before sending it
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        return _answered_4xx(error) and code not in _SUSPECT_CODES
    return False


def read_failed_transiently(error: BaseException) -> bool:
    """True when a read failed for DynamoDB's reasons, not the request's: throttling,
    a 5xx, a timeout or a lost connection (what stale-if-error may stand in for).

    Cancellation is none of them: a cancelled caller hears its cancellation.
    """
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _THROTTLING_CODES or status >= 500
    # HTTPClientError covers botocore's read timeouts and closed connections.
    return isinstance(
        error, TimeoutError | ConnectionError | BotocoreConnectionError | HTTPClientError
    )


def write_may_still_apply(error: BaseException) -> bool:
    """True when DynamoDB may apply a failed write after its caller heard of the failure.

    Only DynamoDB's own 4xx answer (or botocore refusing to send) settles a write:
    after a timeout, a lost connection, a cancellation while the request was out
    or a 5xx, an attempt DynamoDB received may still be applied later.
    """
    if isinstance(error, ParamValidationError):
        return False
    return not (isinstance(error, ClientError) and _answered_4xx(error))


def _answered_4xx(error: ClientError) -> bool:
    return 400 <= error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500


def ambiguous_write_window(client: Backend) -> float:
    """Seconds after a failure during which a write that may still apply may land.

    One attempt's time by the client's own timeouts, ``connect_timeout +
    read_timeout``: see docs/semantics.md ("A write that may still land").  A
    timeout the client leaves unset (``None``: wait forever), or a backend without
    botocore's ``meta.config``, counts as botocore's default.
    """
    config = getattr(getattr(client, "meta", None), "config", None)
    return sum(
        _timeout(getattr(config, name, None)) for name in ("connect_timeout", "read_timeout")
    )


def _timeout(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    return float(DEFAULT_TIMEOUT)


def speaks_python(client: Backend) -> bool:
    """Whether ``client`` is a resource's client, converting Python ⇄ wire itself.

    Such a client (``resource.meta.client``) takes and returns Python values, while
    a ``CachedClient`` reads and caches wire format: wrapping it would cache
    nothing right.
    """
    events = client.meta.events
    emitter = getattr(events, "_emitter", events)
    handlers = getattr(emitter, "_unique_id_handlers", {})
    return any(unique_id in handlers for _, unique_id in _PYTHON_HANDLERS)


def wire_client(client: Backend) -> Backend:
    """A twin of a resource's client that speaks wire format.

    It shares everything with ``client`` (HTTP session, signer, retry quota) except
    its event emitter, a copy without boto3's Python transformation, so it lives
    and dies with ``client``.  Building a second client instead would cost a
    connection pool and settings (endpoint, credentials) a resource does not expose.
    """
    events = copy.copy(client.meta.events)
    for event, unique_id in _PYTHON_HANDLERS:
        events.unregister(event, unique_id=unique_id)
    meta = copy.copy(client.meta)
    meta.events = events
    twin: Any = object.__new__(type(client))
    twin.__dict__.update(vars(client))
    twin.meta = meta
    return twin  # type: ignore[no-any-return]


def is_dynamodb_resource(candidate: object) -> bool:
    """Whether ``candidate`` is a DynamoDB service resource (not one of its tables)."""
    return _resource_name(candidate) == "dynamodb" and is_dynamodb_backend(
        getattr(getattr(candidate, "meta", None), "client", None)
    )


def is_dynamodb_table(candidate: object) -> bool:
    return _resource_name(candidate) == "Table"


def _resource_name(candidate: object) -> object:
    """The boto3 resource model's name (``"dynamodb"``, ``"Table"``) of a DynamoDB resource."""
    meta = getattr(candidate, "meta", None)
    if getattr(meta, "service_name", None) != "dynamodb":
        return None
    return getattr(getattr(meta, "resource_model", None), "name", None)

"""The backend seam: anything with the aiobotocore DynamoDB client's coroutine methods.

aiodax calls a backend in exactly one way, ``await backend.<operation>(**request)``,
and reads exactly one thing from its failures: whether DynamoDB may have applied
a write that raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError, ParamValidationError

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


def is_dynamodb_backend(candidate: object) -> bool:
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
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return 400 <= status < 500 and code not in _SUSPECT_CODES
    return False

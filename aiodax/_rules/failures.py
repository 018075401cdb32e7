"""Whose failure is it: when a caller who joined another caller's load may get its error.

Concurrent misses share one request (``_flight``), which is right for its answer
but not always for its failure.  A failure says something about DynamoDB, the
network or the moment (throttling, a 5xx, a timeout, a lost connection): every
caller of that moment would have met it, so all of them get it.  Or it says
something about the request that was sent: a ``ValidationException`` for its
spelling, a ``ResourceNotFoundException`` for another table the same
BatchGetItem named, an ``AccessDeniedException`` or expired token for the
credentials of the client that sent it.  A caller whose own request differs
would not have met that one; it sends its own instead.  A caller whose request
is the same as the one sent would have, and shares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from .projection import fingerprint

#: Error codes DynamoDB answers with 400 that say "not now", not "not this request":
#: botocore's standard retry mode's throttling and transient codes.
SHARED_CODES: Final = frozenset(
    {
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
        "Throttling",
        "ThrottledException",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)

#: One request as sent: the operation (``"get_item"``…) and its parameters.
Sent: TypeAlias = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed request tells about whose failure it is.

    ``code`` and ``status``: DynamoDB's error code and HTTP status, when DynamoDB
    answered (``None``: it did not, as after a timeout or a lost connection).
    ``refused``: the SDK refused the request before sending it (botocore's
    parameter validation, missing credentials).
    """

    code: str | None = None
    status: int | None = None
    refused: bool = False

    @property
    def of_the_request(self) -> bool:
        """Whether another request, sent at the same moment, may well have succeeded."""
        if self.refused:
            return True
        if self.code is None or self.status is None:
            return False
        return 400 <= self.status < 500 and self.code not in SHARED_CODES


def failure_is_shared(failure: Failure, sent: Sent, own: Sent) -> bool:
    """Whether a caller whose request is ``own`` would have met ``failure`` of ``sent``.

    Yes unless the failure is the request's own and ``own`` is another request
    than ``sent`` (compared type-exact, map order aside: ``fingerprint``).
    """
    if not failure.of_the_request:
        return True
    return sent[0] == own[0] and fingerprint(sent[1]) == fingerprint(own[1])

"""What the invalidator's units share: the readers' counters and options, the end of
a stream, and a botocore error's action.  No Redis here, so that
``StreamsInvalidator`` imports without the extra."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .._rules.streams import Action, error_action


class Outcome(enum.Enum):
    """How a shard's reader ended."""

    FINISHED = "finished"
    LOST = "lost"


class StreamGone(Exception):
    """The stream or its table no longer exists (ResourceNotFoundException), or the
    stream was disabled and read to its end."""


@dataclass
class Counters:
    """What the readers of one invalidator did, for ``StreamsInvalidator.stats``."""

    records: int = 0
    batches: int = 0
    polls: int = 0
    trims: int = 0
    expired_iterators: int = 0
    throttles: int = 0
    redis_failures: int = 0
    redis_commands: int = 0
    lost_leases: int = 0
    shards_finished: int = 0


@dataclass(frozen=True)
class ReadOptions:
    """How a reader polls: ``poll_interval`` between two reads of an idle shard;
    ``lease_time`` the lease it holds (it tries again every third of it)."""

    poll_interval: float
    lease_time: float


def action_of(error: ClientError) -> Action:
    """What a reader does about ``error`` (``_rules.streams.error_action``)."""
    details = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_action(str(details.get("Code", "")), status if isinstance(status, int) else None)

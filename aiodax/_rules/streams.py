"""What a DynamoDB Streams answer means for the caches: pure rules, no I/O, no clock.

- ``record_key``: the key of the item a stream record changed.  Only the record's
  ``Keys`` are read (every ``StreamViewType`` carries them, ``KEYS_ONLY``
  included): an image is never looked at, let alone cached, since a record may be
  older than a write-through the caches hold.
- ``stream_table``: the table a stream ARN names (a Lambda event's records say
  which stream they come from, not which table).
- ``readable_shards``: which shards of ``DescribeStream``'s list may be read now.
  DynamoDB keeps an item's changes in order across a split only if a child shard is
  read after its parent is finished (read to its end) or trimmed (gone from the list).
- ``error_action``: what a reader does about a DynamoDB Streams error code.
- ``backoff``: the delay before a throttled request is tried again (full jitter).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Final

from .wire import ItemKey, canonical_key


def record_key(record: Mapping[str, Any]) -> ItemKey | None:
    """The canonical key of the item a stream record changed; ``None`` if it has none
    this version can read (the caller then drops the whole table: dropping too much
    costs misses, dropping too little serves stale values).

    INSERT, MODIFY and REMOVE alike: each drops the item's key, and by the
    receivers' own rule the Query pages a write to it makes stale.
    """
    body = record.get("dynamodb")
    keys = body.get("Keys") if isinstance(body, Mapping) else None
    return canonical_key(dict(keys)) if isinstance(keys, Mapping) else None


def stream_table(arn: object) -> str | None:
    """The table a stream's (or a Lambda event record's ``eventSourceARN``) ARN names:
    ``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``."""
    if not isinstance(arn, str):
        return None
    _, _, resource = arn.partition(":table/")
    name, slash, rest = resource.partition("/stream/")
    return name if name and slash and rest and "/" not in name else None


def sequence_number(record: Mapping[str, Any]) -> str | None:
    """A record's ``SequenceNumber`` (where a checkpoint after it resumes)."""
    body = record.get("dynamodb")
    number = body.get("SequenceNumber") if isinstance(body, Mapping) else None
    return number if isinstance(number, str) and number else None


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard of ``DescribeStream``'s list: its id, its parent's, and whether it
    is closed (it has an ``EndingSequenceNumber``: no record will be added)."""

    shard_id: str
    parent: str | None = None
    closed: bool = False

    @classmethod
    def of(cls, description: Mapping[str, Any]) -> Shard:
        numbers = description.get("SequenceNumberRange") or {}
        return cls(
            shard_id=description["ShardId"],
            parent=description.get("ParentShardId") or None,
            closed=bool(numbers.get("EndingSequenceNumber")),
        )


def readable_shards(shards: Iterable[Shard], finished: Set[str]) -> list[str]:
    """The shards that may be read now, in list order: not ``finished`` (read to
    their end), and whose parent is finished or no longer listed (trimmed)."""
    listed = list(shards)
    present = {shard.shard_id for shard in listed}
    return [
        shard.shard_id
        for shard in listed
        if shard.shard_id not in finished
        and (shard.parent is None or shard.parent in finished or shard.parent not in present)
    ]


class Action(enum.Enum):
    """What a shard's reader does about an error."""

    #: the iterator is too old (15 min): a fresh one from the checkpoint
    REFRESH = "refresh"
    #: records past the checkpoint were trimmed (24 h): drop the whole table (what
    #: was lost is unknown), then read on from the trim horizon
    TRIMMED = "trimmed"
    #: too many requests, or the service failed: the same request after a backoff
    BACKOFF = "backoff"
    #: the stream or the table is gone: drop the whole table, stop reading it
    GONE = "gone"
    #: anything else: not a condition of the stream, let it through
    RAISE = "raise"


_ACTIONS: Final[Mapping[str, Action]] = {
    "ExpiredIteratorException": Action.REFRESH,
    "TrimmedDataAccessException": Action.TRIMMED,
    "LimitExceededException": Action.BACKOFF,
    "ProvisionedThroughputExceededException": Action.BACKOFF,
    "ThrottlingException": Action.BACKOFF,
    "RequestLimitExceeded": Action.BACKOFF,
    "InternalServerError": Action.BACKOFF,
    "InternalFailure": Action.BACKOFF,
    "ServiceUnavailable": Action.BACKOFF,
    "ResourceNotFoundException": Action.GONE,
}


def error_action(code: str, status: int | None = None) -> Action:
    """The action for a DynamoDB Streams error ``code`` (HTTP ``status``: a 5xx of
    any code is the service's failure, tried again)."""
    action = _ACTIONS.get(code)
    if action is not None:
        return action
    return Action.BACKOFF if status is not None and status >= 500 else Action.RAISE


#: Throttled retries wait between these (s): AWS's advice for a stream reader.
BACKOFF_RANGE: Final = (0.05, 5.0)


def backoff(attempt: int, rand: Callable[[], float]) -> float:
    """Seconds to wait before the ``attempt``-th retry (1, 2, ...): full jitter
    under a doubling ceiling, ``rand()`` in [0, 1)."""
    low, high = BACKOFF_RANGE
    ceiling = min(high, low * 2 ** max(attempt - 1, 0))
    return float(low + (ceiling - low) * rand())

"""``FakeStreams``: a scripted ``dynamodbstreams`` client for one table's stream.

Neither moto nor DynamoDB Local ever splits or trims a shard, expires an iterator
or throttles; this fake does each on demand, deterministically, so that a
``StreamsInvalidator`` (``client=FakeStreams(...)``) can be tested on them::

    streams = FakeStreams("orders")
    streams.write({"pk": {"S": "a"}})          # a MODIFY record on the open shard
    left, right = streams.split()              # the shard closes; two children open
    streams.trim(streams.shard_ids[0], 1)      # its first record is gone
    streams.expire_iterators()                 # every iterator handed out expires
    streams.fail("get_records", "LimitExceededException", times=2)

It answers ``list_streams``, ``describe_stream`` (``page_size`` shards a page, with
``LastEvaluatedShardId``), ``get_shard_iterator`` (``TRIM_HORIZON``, ``LATEST``,
``AT_``/``AFTER_SEQUENCE_NUMBER``) and ``get_records`` as DynamoDB Streams does,
raising botocore ``ClientError`` with its codes.  ``calls`` counts requests.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

__all__ = ["FakeStreams"]


def _error(code: str, operation: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} (aiodax.testing.FakeStreams)"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
    }
    return ClientError(response, operation)


@dataclass
class _Shard:
    shard_id: str
    parent: str | None
    records: list[dict[str, Any]] = field(default_factory=list)
    #: records before this index were trimmed away
    trimmed: int = 0
    closed: bool = False
    #: trimmed entirely: no longer listed
    gone: bool = False


class FakeStreams:
    """A ``dynamodbstreams`` client of one table's scripted stream; see the module."""

    def __init__(
        self,
        table: str = "fake-table",
        *,
        view_type: str = "KEYS_ONLY",
        page_size: int = 100,
        shards: int = 1,
    ) -> None:
        self.table = table
        self.view_type = view_type
        self.page_size = page_size
        self.arn = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/fake"
        self.status = "ENABLED"
        self.deleted = False
        self.calls: Counter[str] = Counter()
        self._shards: dict[str, _Shard] = {}
        self._numbers = itertools.count(1)
        self._shard_numbers = itertools.count(1)
        self._iterators: dict[str, tuple[str, int, int]] = {}
        self._epoch = 0
        self._failures: deque[tuple[str, str]] = deque()
        for _ in range(shards):
            self.add_shard()

    # ------------------------------------------------------------- scripting

    @property
    def shard_ids(self) -> list[str]:
        """Every shard ever made, oldest first (trimmed ones too)."""
        return list(self._shards)

    def open_shards(self) -> list[str]:
        return [s.shard_id for s in self._shards.values() if not s.closed and not s.gone]

    def add_shard(self, parent: str | None = None) -> str:
        shard_id = f"shardId-{next(self._shard_numbers):08d}"
        self._shards[shard_id] = _Shard(shard_id, parent)
        return shard_id

    def write(
        self,
        keys: dict[str, Any],
        event: str = "MODIFY",
        *,
        shard: str | None = None,
        **images: Any,
    ) -> str:
        """Append a record of ``keys`` to ``shard`` (default: the first open one);
        ``images`` (``NewImage=...``) go into it as the view type would carry.
        Returns its sequence number."""
        target = self._shards[shard or self.open_shards()[0]]
        if target.closed:
            raise ValueError(f"{target.shard_id} is closed")
        number = f"{next(self._numbers):021d}"
        body: dict[str, Any] = {
            "Keys": keys,
            "SequenceNumber": number,
            "SizeBytes": 10,
            "StreamViewType": self.view_type,
            **images,
        }
        target.records.append(
            {
                "eventID": number,
                "eventName": event,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": body,
            }
        )
        return number

    def split(self, shard: str | None = None) -> tuple[str, str]:
        """Close ``shard`` (default: the first open one) and open two children of it."""
        parent = self._shards[shard or self.open_shards()[0]]
        parent.closed = True
        return self.add_shard(parent.shard_id), self.add_shard(parent.shard_id)

    def trim(self, shard: str, count: int | None = None) -> None:
        """Trim ``shard``'s ``count`` oldest records (``None``: the shard itself,
        which then is no longer listed, as after 24 hours)."""
        target = self._shards[shard]
        if count is None:
            target.gone = True
            target.trimmed = len(target.records)
        else:
            target.trimmed = min(len(target.records), target.trimmed + count)

    def expire_iterators(self) -> None:
        """Every iterator handed out so far is expired (as after 15 minutes)."""
        self._epoch += 1

    def fail(self, operation: str, code: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``operation`` raise ``code``."""
        self._failures.extend((operation, code) for _ in range(times))

    def disable(self) -> None:
        """The stream is turned off: every shard closes, records stay readable."""
        self.status = "DISABLED"
        for shard in self._shards.values():
            shard.closed = True

    def delete(self) -> None:
        """The table (and its stream) is deleted: every call is ResourceNotFound."""
        self.deleted = True

    # -------------------------------------------------------------- the API

    def _enter(self, operation: str) -> None:
        self.calls[operation] += 1
        for at, (failing, code) in enumerate(self._failures):
            if failing == operation:
                del self._failures[at]
                status = 500 if code in ("InternalServerError", "InternalFailure") else 400
                raise _error(code, operation, status)
        if self.deleted:
            raise _error("ResourceNotFoundException", operation)

    async def list_streams(self, **request: Any) -> dict[str, Any]:
        self.calls["list_streams"] += 1
        if self.deleted or request.get("TableName", self.table) != self.table:
            return {"Streams": []}
        return {
            "Streams": [{"StreamArn": self.arn, "TableName": self.table, "StreamLabel": "fake"}]
        }

    async def describe_stream(self, **request: Any) -> dict[str, Any]:
        self._enter("describe_stream")
        self._check_arn(request, "DescribeStream")
        listed = [s for s in self._shards.values() if not s.gone]
        start = request.get("ExclusiveStartShardId")
        if start is not None:
            ids = [s.shard_id for s in listed]
            listed = listed[ids.index(start) + 1 :] if start in ids else []
        limit = min(self.page_size, int(request.get("Limit", self.page_size)))
        page, rest = listed[:limit], listed[limit:]
        description: dict[str, Any] = {
            "StreamArn": self.arn,
            "StreamStatus": self.status,
            "StreamViewType": self.view_type,
            "TableName": self.table,
            "Shards": [self._describe(shard) for shard in page],
        }
        if rest:
            description["LastEvaluatedShardId"] = page[-1].shard_id
        return {"StreamDescription": description}

    def _describe(self, shard: _Shard) -> dict[str, Any]:
        numbers: dict[str, str] = {"StartingSequenceNumber": "0" * 21}
        if shard.records:
            numbers["StartingSequenceNumber"] = shard.records[0]["dynamodb"]["SequenceNumber"]
        if shard.closed:
            last = shard.records[-1]["dynamodb"]["SequenceNumber"] if shard.records else "0" * 21
            numbers["EndingSequenceNumber"] = last
        described: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": numbers}
        if shard.parent is not None:
            described["ParentShardId"] = shard.parent
        return described

    async def get_shard_iterator(self, **request: Any) -> dict[str, Any]:
        self._enter("get_shard_iterator")
        self._check_arn(request, "GetShardIterator")
        shard = self._shards.get(request["ShardId"])
        if shard is None or shard.gone:
            raise _error("ResourceNotFoundException", "GetShardIterator")
        kind = request["ShardIteratorType"]
        numbers = [r["dynamodb"]["SequenceNumber"] for r in shard.records]
        if kind == "TRIM_HORIZON":
            position = shard.trimmed
        elif kind == "LATEST":
            position = len(shard.records)
        else:
            after = request["SequenceNumber"]
            position = sum(
                1 for n in numbers if n < after or (kind == "AFTER_SEQUENCE_NUMBER" and n == after)
            )
            if position < shard.trimmed:
                raise _error("TrimmedDataAccessException", "GetShardIterator")
        return {"ShardIterator": self._iterator(shard.shard_id, position)}

    async def get_records(self, **request: Any) -> dict[str, Any]:
        self._enter("get_records")
        found = self._iterators.get(request["ShardIterator"])
        if found is None:
            raise _error("ValidationException", "GetRecords")
        shard_id, position, epoch = found
        if epoch != self._epoch:
            raise _error("ExpiredIteratorException", "GetRecords")
        shard = self._shards[shard_id]
        if position < shard.trimmed:
            raise _error("TrimmedDataAccessException", "GetRecords")
        limit = int(request.get("Limit", 1000))
        records = shard.records[position : position + limit]
        position += len(records)
        answer: dict[str, Any] = {"Records": [dict(record) for record in records]}
        if not (shard.closed and position >= len(shard.records)):
            answer["NextShardIterator"] = self._iterator(shard_id, position)
        return answer

    def _iterator(self, shard_id: str, position: int) -> str:
        token = f"fake-iterator-{len(self._iterators) + 1}"
        self._iterators[token] = (shard_id, position, self._epoch)
        return token

    def _check_arn(self, request: dict[str, Any], operation: str) -> None:
        if request.get("StreamArn") != self.arn:
            raise _error("ResourceNotFoundException", operation)

"""``ShardReader``: one shard of one table's stream, read under its lease.

Contract: ``read()`` takes the shard's lease (waiting while another invalidator
holds it), resumes after the shard's checkpoint (or at the trim horizon when it
has none), and for every batch of records publishes their invalidations, then
writes the checkpoint and the watermark and renews the lease in one step.  It
returns ``FINISHED`` once the shard is read to its end (closed, no next
iterator) and ``LOST`` if the lease went to another invalidator; it raises
``StreamGone`` when the stream or the table is gone.  Redis failures are waited
out (nothing is checkpointed that was not published); DynamoDB Streams errors
are handled as ``_rules.streams.error_action`` says.  It never reads or writes a
cache entry: a record's image is not looked at.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from botocore.exceptions import ClientError

from .._rules.streams import Action, backoff, record_key, sequence_number
from .._tiers import Invalidation
from .._tiers.redis.bus import REDIS_FAILURES as _REDIS_FAILURES
from ._common import Counters, Outcome, ReadOptions, StreamGone, action_of

if TYPE_CHECKING:
    from ._redis import StreamsRedis

T = TypeVar("T")
P = ParamSpec("P")

_LOG: Final = logging.getLogger("aiodax.streams")

#: Records one GetRecords brings at most (DynamoDB's own limit).
RECORDS_LIMIT: Final = 1000


class ShardReader:
    """Reads one shard; see the module docstring."""

    def __init__(
        self,
        *,
        client: Any,
        redis: StreamsRedis,
        table: str,
        stream_arn: str,
        shard_id: str,
        options: ReadOptions,
        counters: Counters,
        rand: Callable[[], float] = random.random,
        latest: bool = False,
    ) -> None:
        self._client = client
        self._redis = redis
        self._table = table
        self._arn = stream_arn
        self.shard_id = shard_id
        self._options = options
        self._counters = counters
        self._rand = rand
        #: without a checkpoint, start at the shard's tip, after one drop of the table
        self._latest = latest

    async def read(self) -> Outcome:
        redis, table, shard = self._redis, self._table, self.shard_id
        # Another invalidator's lease: nothing to wake on but its expiry.
        while not await self._redis_step(redis.claim, table, shard):  # noqa: ASYNC110
            await asyncio.sleep(self._options.lease_time / 3)
        checkpoints = await self._redis_step(redis.checkpoints, table)
        sequence = checkpoints.get(shard)
        if sequence == "END":
            return Outcome.FINISHED  # another invalidator finished it meanwhile
        return await self._follow(sequence)

    async def _follow(self, sequence: str | None) -> Outcome:
        redis, table, shard = self._redis, self._table, self.shard_id
        iterator: str | None = None
        throttled = 0
        while True:
            try:
                if iterator is None:
                    iterator = await self._iterator(sequence)
                asked = time.monotonic()
                self._counters.polls += 1
                answer = await self._client.get_records(ShardIterator=iterator, Limit=RECORDS_LIMIT)
            except ClientError as error:
                action = action_of(error)
                if action is Action.REFRESH:
                    self._counters.expired_iterators += 1
                    iterator = None
                elif action is Action.TRIMMED:
                    # Records past the checkpoint are gone: what they changed is
                    # unknown, so the whole table is dropped once.
                    self._counters.trims += 1
                    _LOG.warning("aiodax: %s %s: records trimmed, dropping the table", table, shard)
                    await self._publish([Invalidation(table)])
                    sequence, iterator = None, None
                elif action is Action.BACKOFF:
                    self._counters.throttles += 1
                    throttled += 1
                    await asyncio.sleep(backoff(throttled, self._rand))
                    # Throttled for longer than the lease lasts: keep it.
                    if not await self._redis_step(redis.claim, table, shard):
                        self._counters.lost_leases += 1
                        return Outcome.LOST
                elif action is Action.GONE:
                    raise StreamGone(str(error)) from error
                else:
                    raise
                continue
            throttled = 0
            records = answer.get("Records") or []
            iterator = answer.get("NextShardIterator") or None
            if records:
                await self._publish([Invalidation(table, record_key(record)) for record in records])
                sequence = sequence_number(records[-1]) or sequence
                self._counters.records += len(records)
                self._counters.batches += 1
            caught_up = len(records) < RECORDS_LIMIT
            advanced = await self._redis_step(
                redis.advance,
                table,
                shard,
                sequence=sequence if records else None,
                watermark_age_ms=int((time.monotonic() - asked) * 1000) if caught_up else None,
                finished=iterator is None,
            )
            if not advanced:
                self._counters.lost_leases += 1
                return Outcome.LOST
            if iterator is None:
                self._counters.shards_finished += 1
                return Outcome.FINISHED
            if not records:
                await asyncio.sleep(self._options.poll_interval)

    async def _iterator(self, sequence: str | None) -> str:
        """An iterator after ``sequence``, or at the trim horizon (at the tip, after
        a drop of the table, for a ``latest`` reader's first); trimmed records past
        ``sequence`` drop the table and start at the horizon."""
        request: dict[str, Any] = {"StreamArn": self._arn, "ShardId": self.shard_id}
        if sequence is None and self._latest:
            self._latest = False
            answer = await self._client.get_shard_iterator(**request, ShardIteratorType="LATEST")
            # After the iterator: every change before it is covered by this drop.
            await self._publish([Invalidation(self._table)])
            return str(answer["ShardIterator"])
        if sequence is not None:
            try:
                answer = await self._client.get_shard_iterator(
                    **request, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=sequence
                )
                return str(answer["ShardIterator"])
            except ClientError as error:
                if action_of(error) is not Action.TRIMMED:
                    raise
                self._counters.trims += 1
                await self._publish([Invalidation(self._table)])
        answer = await self._client.get_shard_iterator(**request, ShardIteratorType="TRIM_HORIZON")
        return str(answer["ShardIterator"])

    async def _publish(self, invalidations: list[Invalidation]) -> None:
        await self._redis_step(self._redis.publish, invalidations)

    async def _redis_step(
        self, step: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await redis_step(self._counters, self._rand, step, *args, **kwargs)


async def redis_step(
    counters: Counters,
    rand: Callable[[], float],
    step: Callable[P, Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``await step(...)``, tried again (with backoff) until Redis answers: a shard
    waits where it stands rather than skip what it could not send."""
    attempt = 0
    task = asyncio.current_task()
    while True:
        try:
            answer = await step(*args, **kwargs)
        except _REDIS_FAILURES as error:
            if task is not None and task.cancelling():
                # A cancellation that met the client's own read timeout may come
                # out as a timeout: it is still a cancellation, never retried.
                raise asyncio.CancelledError from error
            attempt += 1
            counters.redis_failures += 1
            if attempt == 1:
                _LOG.warning("aiodax: streams: Redis failed (%s), retrying", error)
            await asyncio.sleep(backoff(attempt, rand))
        else:
            if task is not None and task.cancelling():
                # A cancellation redis-py's connection handling swallowed (seen while
                # Redis restarts): the reader was told to stop, so it stops.
                raise asyncio.CancelledError
            return answer

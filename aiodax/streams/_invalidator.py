"""``StreamsInvalidator``: follows tables' DynamoDB Streams and drops what changed in
every cache of a Redis namespace.

Contract: entering it (``async with``) finds each table's enabled stream (else
``StreamNotEnabledError``, nothing started) and starts following them; ``run()``
does the same and returns when every table's stream is gone (or is cancelled).
Per table it lists the shards (``DescribeStream``, every page) at start, every
``describe_interval`` and whenever a shard is finished, and starts one
``ShardReader`` per readable shard (``_rules.streams.readable_shards``).  A
stream that is disabled is read to its end; a stream or table that is gone drops
the whole table in every cache and ends that table.  Closing stops the readers
and lets their leases go, so another invalidator takes the shards at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from botocore.exceptions import ClientError

from .._errors import ConfigurationError, MissingExtraError, StreamNotEnabledError
from .._rules.streams import Action, Shard, backoff, readable_shards
from .._tiers import Invalidation
from .._tiers.redis.config import RedisTier
from ._common import Counters, ReadOptions, StreamGone, action_of

if TYPE_CHECKING:
    from ._reader import ShardReader
    from ._redis import StreamsRedis

_LOG: Final = logging.getLogger("aiodax.streams")
_LIVE: Final = frozenset({"ENABLED", "ENABLING"})
#: How long closing waits for the shards' readers to stop (s).
SHUTDOWN_TIMEOUT: Final = 10.0


class StreamsInvalidator:
    """Follows the DynamoDB Streams of ``tables`` and invalidates every record's item
    (and the Query pages it makes stale) in every ``Cache(redis=...)`` of the
    namespace, through the Redis tier's bus.  See ``docs/operations.md``.

    :param tables: the tables' names (each needs a stream, any ``StreamViewType``).
    :param client: an aiobotocore ``dynamodbstreams`` client (or
        ``aiodax.testing.FakeStreams``); the caller opens and closes it.
    :param redis: the caches' Redis: a URL or a ``RedisTier`` (its ``namespace``).
    :param namespace: the caches' namespace when ``redis`` is a URL.
    :param poll_interval: seconds between two reads of an idle shard (a shard that
        returned records is read again at once).
    :param lease_time: seconds a shard's lease lasts unless renewed: how long a
        killed invalidator's shards wait before another takes them.
    :param describe_interval: seconds between two listings of a stream's shards
        (new shards after a split are found by then, or at once when a parent ends).
    :param start: where a shard without a checkpoint that is listed at start is
        read from: ``"trim_horizon"`` (its oldest record: up to 24 hours of changes
        dropped again) or ``"latest"`` (its tip, after one drop of the whole table,
        which covers everything before).  Shards that appear later (a split) are
        always read from their trim horizon.
    """

    def __init__(
        self,
        tables: Sequence[str],
        *,
        client: Any,
        redis: str | RedisTier,
        namespace: str = "default",
        poll_interval: float = 0.25,
        lease_time: float = 10.0,
        describe_interval: float = 10.0,
        start: str = "trim_horizon",
    ) -> None:
        if (
            isinstance(tables, str)
            or not tables
            or not all(isinstance(t, str) and t for t in tables)
        ):
            raise ConfigurationError("tables must be a non-empty sequence of table names")
        for name, value in (
            ("poll_interval", poll_interval),
            ("lease_time", lease_time),
            ("describe_interval", describe_interval),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < 3600
            ):
                raise ConfigurationError(f"{name} must be a number of seconds in (0, 3600)")
        if start not in ("trim_horizon", "latest"):
            raise ConfigurationError(f"start must be 'trim_horizon' or 'latest', got {start!r}")
        self._start_latest = start == "latest"
        self.tables = tuple(dict.fromkeys(tables))
        self.tier = redis if isinstance(redis, RedisTier) else RedisTier(redis, namespace=namespace)
        self._client = client
        self._poll_interval = float(poll_interval)
        self._lease_time = float(lease_time)
        self._describe_interval = float(describe_interval)
        self._redis: StreamsRedis | None = None
        self._counters: Counters | None = None
        self._streams: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._readers: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.tables_gone: list[str] = []

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self._open()
        self._task = asyncio.create_task(self._follow_all(), name="aiodax streams")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def run(self) -> None:
        """Follow the streams until every one is gone (or this task is cancelled)."""
        await self._open()
        try:
            await self._follow_all()
        finally:
            await self._shutdown()

    async def wait(self) -> None:
        """Until the streams are all gone (``async with`` form)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._shutdown()

    async def _open(self) -> None:
        try:
            from ._redis import StreamsRedis
        except ImportError as error:
            raise MissingExtraError(
                "StreamsInvalidator needs the Redis client: pip install 'aiodax[redis]'"
            ) from error
        streams = {table: await self._stream_of(table) for table in self.tables}
        self._streams = streams
        self._counters = Counters()
        self._redis = StreamsRedis(self.tier, lease_time=self._lease_time, counters=self._counters)

    async def _stream_of(self, table: str) -> str:
        """The ARN of ``table``'s enabled stream, or ``StreamNotEnabledError``."""
        streams = (await self._client.list_streams(TableName=table)).get("Streams") or []
        # Newest first: a table whose stream was turned off and on again has both.
        for stream in sorted(streams, key=lambda s: str(s.get("StreamLabel", "")), reverse=True):
            if stream.get("TableName", table) != table:
                continue
            answer = await self._client.describe_stream(StreamArn=stream["StreamArn"], Limit=1)
            if answer["StreamDescription"].get("StreamStatus") in _LIVE:
                return str(stream["StreamArn"])
        raise StreamNotEnabledError(
            f"table {table!r} has no enabled DynamoDB Stream (or does not exist): enable one "
            "with StreamSpecification={'StreamEnabled': True, 'StreamViewType': 'KEYS_ONLY'}"
        )

    async def _shutdown(self) -> None:
        readers, self._readers = self._readers, {}
        for task in readers.values():
            task.cancel()
        if readers:
            # Bounded: a reader stuck in a call that ignores cancellation must not
            # keep the invalidator from closing (its lease then expires).
            _, pending = await asyncio.wait(readers.values(), timeout=SHUTDOWN_TIMEOUT)
            if pending:
                _LOG.error("aiodax: %d shard reader(s) did not stop when told to", len(pending))
        redis, self._redis = self._redis, None
        if redis is None:
            return
        # Let the leases go at once, so that another invalidator need not wait
        # them out; a Redis that does not answer lets them expire instead.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for table, shard in readers:
                    await redis.release(table, shard)
        await redis.aclose()

    # ------------------------------------------------------------- following

    async def _follow_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for table, arn in self._streams.items():
                group.create_task(self._follow(table, arn), name=f"aiodax streams {table}")

    async def _follow(self, table: str, arn: str) -> None:
        from ._reader import ShardReader, redis_step

        redis, counters = self._redis, self._counters
        assert redis is not None and counters is not None
        options = ReadOptions(self._poll_interval, self._lease_time)
        changed = asyncio.Event()
        #: the shards without a checkpoint at the first listing (``start="latest"``)
        initial: set[str] | None = None
        try:
            while True:
                status, shards = await self._describe(arn)
                checkpoints = await redis_step(counters, random.random, redis.checkpoints, table)
                finished = {shard for shard, number in checkpoints.items() if number == "END"}
                readable = readable_shards(shards, finished)
                if initial is None:
                    initial = set()
                    if self._start_latest:
                        initial = {s.shard_id for s in shards if s.shard_id not in checkpoints}
                await redis_step(counters, random.random, redis.forget_watermarks, table, readable)
                running = {
                    s for (t, s), task in self._readers.items() if t == table and not task.done()
                }
                for shard in readable:
                    if shard not in running:
                        reader = ShardReader(
                            client=self._client,
                            redis=redis,
                            table=table,
                            stream_arn=arn,
                            shard_id=shard,
                            options=options,
                            counters=counters,
                            latest=shard in initial,
                        )
                        self._start(table, reader, changed)
                if status not in _LIVE and not readable:
                    raise StreamGone(f"the stream of {table!r} is {status} and read to its end")
                self._raise_failures(table)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._describe_interval):
                        await changed.wait()
                changed.clear()
        except StreamGone as gone:
            _LOG.warning("aiodax: %s: %s: dropping the table, no longer following it", table, gone)
            self.tables_gone.append(table)
            await self._stop_table(table)
            await redis_step(counters, random.random, redis.publish, [Invalidation(table)])
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._stop_table(table)
            raise

    def _start(self, table: str, reader: ShardReader, changed: asyncio.Event) -> None:
        task = asyncio.create_task(reader.read(), name=f"aiodax streams {table} {reader.shard_id}")
        self._readers[(table, reader.shard_id)] = task
        task.add_done_callback(lambda _: changed.set())

    def _raise_failures(self, table: str) -> None:
        """A reader's unexpected error ends the table (with it).  A lost lease, a
        finished shard, or one the service no longer knows (trimmed between the
        listing and the read, or the stream gone: the listing tells which) is the
        next listing's to act on."""
        for (name, shard), task in list(self._readers.items()):
            if name != table or not task.done():
                continue
            del self._readers[(name, shard)]
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, StreamGone):
                raise error

    async def _stop_table(self, table: str) -> None:
        tasks = [task for (name, _), task in self._readers.items() if name == table]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for key in [key for key in self._readers if key[0] == table]:
            del self._readers[key]

    async def _describe(self, arn: str) -> tuple[str, list[Shard]]:
        """The stream's status and every shard, following ``LastEvaluatedShardId``;
        throttling is waited out."""
        shards: list[Shard] = []
        request: dict[str, Any] = {"StreamArn": arn}
        throttled = 0
        while True:
            try:
                answer = await self._client.describe_stream(**request)
            except ClientError as error:
                action = action_of(error)
                if action is Action.GONE:
                    raise StreamGone(str(error)) from error
                if action is not Action.BACKOFF:
                    raise
                # DescribeStream's own limit (10 a second per account) is easily met.
                assert self._counters is not None
                self._counters.throttles += 1
                throttled += 1
                await asyncio.sleep(backoff(throttled, random.random))
                continue
            description = answer["StreamDescription"]
            shards.extend(Shard.of(shard) for shard in description.get("Shards") or ())
            last = description.get("LastEvaluatedShardId")
            if not last:
                return str(description.get("StreamStatus", "")), shards
            request["ExclusiveStartShardId"] = last

    # ------------------------------------------------------------- reporting

    def stats(self) -> dict[str, Any]:
        """What the invalidator did so far: records, batches, polls, trims, expired
        iterators, throttles, Redis failures and commands, shards read now."""
        counters = self._counters
        reading = sum(1 for task in self._readers.values() if not task.done())
        base: dict[str, Any] = {"ShardsReading": reading, "TablesGone": list(self.tables_gone)}
        if counters is None:
            return base
        return {
            **base,
            "Records": counters.records,
            "Batches": counters.batches,
            "Polls": counters.polls,
            "Trims": counters.trims,
            "ExpiredIterators": counters.expired_iterators,
            "Throttles": counters.throttles,
            "RedisFailures": counters.redis_failures,
            "LostLeases": counters.lost_leases,
            "ShardsFinished": counters.shards_finished,
            "RedisCommands": counters.redis_commands,
        }

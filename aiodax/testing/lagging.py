"""A lagging replica: DynamoDB's eventually consistent reads, on loopback servers.

DynamoDB answers a read without ``ConsistentRead`` from any of three replicas, one of
which may not have applied the latest write yet (consistent "usually within one
second or less"; a global secondary index "within a fraction of a second"). moto and
DynamoDB Local are strongly consistent, so a test on them never meets an eventually
consistent read that returns the value from before a write.

:class:`LaggingReplica` is an HTTP proxy on 127.0.0.1 in front of two instances of the
same server, a *primary* and a *replica*:

- writes, strongly consistent reads (``ConsistentRead: true`` in GetItem, Query,
  Scan, PartiQL; per table in BatchGetItem; TransactGetItems and read-only PartiQL
  transactions always) and the control plane go to the primary;
- every request that changed the primary is sent to the replica ``lag`` seconds after
  the primary acknowledged it, in the order the primary applied them; a control-plane
  change (CreateTable, DeleteTable, UpdateTable…) at once, after every write before it;
- eventually consistent reads are answered by the replica, so for ``lag`` seconds
  after a write they return the state from before it.

Point any client at :attr:`LaggingReplica.url`::

    async with (
        LaggingReplica(primary_url, replica_url, lag=0.5) as proxy,
        session.client("dynamodb", **client_kwargs(proxy.url)) as dynamodb,
    ):
        await dynamodb.put_item(TableName="t", Item=new)
        old = await dynamodb.get_item(TableName="t", Key=key)          # from the replica
        new = await dynamodb.get_item(TableName="t", Key=key, ConsistentRead=True)
        await proxy.settled()                                           # replica caught up
        assert proxy.counts["GetItem", "eventual"] == 1

The two servers must not share their tables: two moto servers of one process do (moto
keeps its tables per process), so run the replica's moto in another process, or use two
DynamoDB Local instances.  Requests and answers pass through unchanged (headers, body,
signature); only a BatchGetItem that names tables read both ways is split in two and its
answers merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from aiodax.testing import _replication as rules
from aiodax.testing._proxy import (
    Answer,
    count_option,
    forwarded,
    loopback_upstream,
    operation_of,
    parsed_json,
    response,
    seconds_option,
    serve,
)
from aiodax.testing._replication import Route

__all__ = ["LaggingReplica", "ReplicaDiverged", "Route"]

#: What a request without a DynamoDB ``X-Amz-Target`` is counted as.
_UNKNOWN: Final = "(unknown)"
_FAILURES_KEPT: Final = 100


class ReplicaDiverged(RuntimeError):
    """The replica no longer replays the primary's history exactly.

    Raised by :meth:`LaggingReplica.settled` once a replay failed on the replica after
    succeeding on the primary, or a write's answer from the primary was lost (it may
    have been applied there and never will be on the replica).  ``failures`` says what
    happened, oldest first (the last 100).
    """

    def __init__(self, failures: tuple[str, ...]) -> None:
        super().__init__("the replica diverged from the primary:\n" + "\n".join(failures))
        self.failures = failures


# The proxy ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    """A request as a server gets it: the client's, less its connection's headers."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes

    def with_body(self, body: bytes) -> _Request:
        return _Request(self.method, self.path, self.headers, body)


@dataclass(slots=True)
class _Replay:
    operation: str
    request: _Request
    #: when the primary acknowledged it (``time.monotonic``)
    acknowledged: float
    #: a control-plane change: the replica gets it, and every write before it, at once
    urgent: bool
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _UpstreamError(Exception):
    """A server gave no (usable) answer: refused, timed out, or answered too much."""


async def _exchange(
    session: aiohttp.ClientSession, upstream: str, request: _Request, max_body: int
) -> Answer:
    """``request`` sent to ``upstream``, and its answer, of at most ``max_body`` bytes."""
    try:
        async with session.request(
            request.method,
            upstream + request.path,
            data=request.body,
            headers=request.headers,
            allow_redirects=False,
        ) as answer:
            chunks: list[bytes] = []
            size = 0
            async for chunk in answer.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_body:
                    raise _UpstreamError(f"answer larger than max_body={max_body} bytes")
                chunks.append(chunk)
            return Answer(answer.status, forwarded(answer.headers), b"".join(chunks))
    except (aiohttp.ClientError, TimeoutError) as error:
        raise _UpstreamError(f"{upstream}: {error!r}") from error


class LaggingReplica:
    """An HTTP proxy on 127.0.0.1 whose eventually consistent reads lag behind writes.

    ``primary`` and ``replica`` are the URLs of two instances of the same
    DynamoDB-compatible server, on loopback and not sharing their tables.  Writes,
    strongly consistent reads and the control plane are answered by the primary;
    eventually consistent reads by the replica, which gets every change of the primary
    ``lag`` seconds after the primary acknowledged it, in the primary's order.
    Writes (and control-plane changes) are sent to the primary one at a time so that
    this order is known; reads are not held back.

    Use it as an async context manager; :attr:`url` is its endpoint while inside.
    Leaving the block stops it: replays not yet applied are dropped.

    ``lag`` (seconds, ``>= 0``) may be changed at any time, and applies to the replays
    already waiting as well: setting it to 0 releases them all.  With ``lag=0`` a write
    is answered only once the replica applied it, so the proxy behaves like the server.

    Bounds: ``timeout`` seconds per request to a server, ``max_body`` bytes per request
    and per answer, ``max_connections`` to the servers, ``max_pending`` replays waiting
    (a write beyond waits for room before it is sent).
    """

    def __init__(
        self,
        primary: str,
        replica: str,
        *,
        lag: float = 0.5,
        timeout: float = 30.0,
        max_pending: int = 10_000,
        max_body: int = 32 * 1024 * 1024,
        max_connections: int = 32,
        port: int = 0,
    ) -> None:
        self._primary = loopback_upstream(primary, "primary")
        self._replica = loopback_upstream(replica, "replica")
        if self._primary == self._replica:
            raise ValueError(f"the primary and the replica are one server: {primary!r}")
        self._lag = seconds_option(lag, "lag", positive=False)
        self._timeout = seconds_option(timeout, "timeout", positive=True)
        self._max_pending = count_option(max_pending, "max_pending")
        self._max_body = count_option(max_body, "max_body")
        self._max_connections = count_option(max_connections, "max_connections")
        self._port = count_option(port, "port", low=0, high=65535)

        #: requests received, by (operation, :data:`Route`); a BatchGetItem naming
        #: tables of both kinds counts once as each
        self.counts: Counter[tuple[str, Route]] = Counter()
        #: requests the replica applied after the primary, by operation
        self.replayed: Counter[str] = Counter()

        self._failures: deque[str] = deque(maxlen=_FAILURES_KEPT)
        self._pending: deque[_Replay] = deque()
        self._urgent = 0
        self._writing = 0
        self._write_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self._url: str | None = None
        self._started = False
        self._closing = False

    # Public surface ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the endpoint URL to give clients."""
        return self._running_url()

    @property
    def lag(self) -> float:
        """Seconds between the primary's acknowledgement of a change and the replica's copy."""
        return self._lag

    @lag.setter
    def lag(self, seconds: float) -> None:
        self._lag = seconds_option(seconds, "lag", positive=False)
        self._notify()

    @property
    def pending(self) -> int:
        """Changes the primary acknowledged that the replica has not applied yet."""
        return len(self._pending)

    @property
    def failures(self) -> tuple[str, ...]:
        """Why the replica diverged, if it did (the last 100 reasons, oldest first)."""
        return tuple(self._failures)

    async def settled(self, within: float = 30.0) -> None:
        """Wait until the replica has caught up with the primary.

        Returns once no write is on its way to the primary and the replica has applied
        every change the primary acknowledged; that takes up to ``lag`` seconds after
        the last write (set :attr:`lag` to 0 first to catch up at once).  Raises
        ``TimeoutError`` after ``within`` seconds (writes keep coming, or the lag is
        longer), and :class:`ReplicaDiverged` if the replica did not replay the
        primary's history exactly.
        """
        self._running_url()
        seconds = seconds_option(within, "within", positive=True)
        async with asyncio.timeout(seconds):
            while self._writing or self._pending:
                await self._changed.wait()
                self._running_url()
        if self._failures:
            raise ReplicaDiverged(tuple(self._failures))

    async def __aenter__(self) -> Self:
        if self._started:
            raise RuntimeError("a LaggingReplica runs once; make a new one")
        self._started = True
        serving = await serve(
            self._handle,
            port=self._port,
            max_body=self._max_body,
            max_connections=self._max_connections,
            timeout=self._timeout,
        )
        self._session, self._runner, self._url = serving.session, serving.runner, serving.url
        self._worker = asyncio.create_task(self._replay_forever(), name="aiodax-lagging-replica")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._worker is not None:
            self._worker.cancel()
            # wait(), not await: the worker's cancellation is not this task's.
            await asyncio.wait([self._worker])
        for replay in self._pending:
            replay.done.set()
        self._pending.clear()
        self._urgent = 0
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # Requests ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        operation = operation_of(request.headers.get("X-Amz-Target"))
        name = operation or _UNKNOWN
        plan = rules.plan(operation, parsed_json(body))
        sent = _Request(request.method, request.raw_path, forwarded(request.headers), body)
        try:
            if plan.split is not None:
                self.counts[name, "consistent"] += 1
                self.counts[name, "eventual"] += 1
                return response(await self._split(sent, plan.split))
            self.counts[name, plan.route] += 1
            if plan.replayed:
                return response(await self._change(name, sent, plan.route))
            upstream = self._replica if plan.route == "eventual" else self._primary
            return response(await self._send(upstream, sent))
        except _UpstreamError as error:
            return web.json_response(
                {"__type": "LaggingReplicaUpstreamError", "message": str(error)},
                status=502,
                content_type="application/x-amz-json-1.0",
            )

    async def _change(self, operation: str, request: _Request, route: Route) -> Answer:
        """Send a change to the primary; once it succeeded, queue it for the replica."""
        replay: _Replay | None = None
        self._writing += 1
        try:
            # One at a time: the replica must apply the changes in the order the primary
            # did, and concurrent answers may come back in another order.
            async with self._write_lock:
                while len(self._pending) >= self._max_pending and not self._closing:
                    await self._changed.wait()
                try:
                    answer = await self._send(self._primary, request)
                except _UpstreamError as error:
                    self._fail(
                        f"{operation}: no answer from the primary ({error}); it may have "
                        "applied the change, which the replica will never see"
                    )
                    raise
                if answer.status == 200:
                    replayed = rules.replay_body(operation, request.body, answer.body)
                    if replayed is not None:
                        replay = self._enqueue(
                            operation, request.with_body(replayed), urgent=route == "control"
                        )
        finally:
            self._writing -= 1
            self._notify()
        if replay is not None and (replay.urgent or self._lag == 0):
            # Answered even if the replica is slower than this: the primary applied it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await replay.done.wait()
        return answer

    async def _split(
        self, request: _Request, parts: tuple[dict[str, Any], dict[str, Any]]
    ) -> Answer:
        headers = request.headers.copy()
        # The two answers are merged, so they must come back uncompressed.
        headers["Accept-Encoding"] = "identity"
        consistent = await self._send(
            self._primary, _Request(request.method, request.path, headers, rules.dumps(parts[0]))
        )
        if consistent.status != 200:
            return consistent
        eventual = await self._send(
            self._replica, _Request(request.method, request.path, headers, rules.dumps(parts[1]))
        )
        if eventual.status != 200:
            return eventual
        body = rules.merged(consistent.body, eventual.body)
        merged = consistent.headers.copy()
        merged.popall("Content-Encoding", None)
        merged["x-amz-crc32"] = str(zlib.crc32(body))
        return Answer(200, merged, body)

    async def _send(self, upstream: str, request: _Request) -> Answer:
        assert self._session is not None  # only called while running
        return await _exchange(self._session, upstream, request, self._max_body)

    # Replays -----------------------------------------------------------------------

    def _enqueue(self, operation: str, request: _Request, *, urgent: bool) -> _Replay:
        replay = _Replay(operation, request, time.monotonic(), urgent)
        if self._closing:
            replay.done.set()
            return replay
        self._pending.append(replay)
        self._urgent += urgent
        self._notify()
        return replay

    async def _replay_forever(self) -> None:
        while True:
            replay = await self._next_due()
            try:
                answer = await self._send(self._replica, replay.request)
            except _UpstreamError as error:
                failure: str | None = f"{replay.operation}: no answer from the replica ({error})"
            except Exception as error:
                # Recorded, and raised by settled(): a dead replay task would only
                # show as settled() timing out.
                failure = f"{replay.operation}: replay failed: {error!r}"
            else:
                failure = rules.replay_failure(replay.operation, answer.status, answer.body)
            if failure is None:
                self.replayed[replay.operation] += 1
            else:
                self._fail(failure)
            self._pending.popleft()
            self._urgent -= replay.urgent
            replay.done.set()
            self._notify()

    async def _next_due(self) -> _Replay:
        while True:
            wait: float | None = None
            if self._pending:
                head = self._pending[0]
                if self._urgent:
                    return head
                wait = head.acknowledged + self._lag - time.monotonic()
                if wait <= 0:
                    return head
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await changed.wait()

    # Bookkeeping -------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake everything waiting for a change of state (queue, lag, closing)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _fail(self, failure: str) -> None:
        self._failures.append(failure)

    def _running_url(self) -> str:
        if self._url is None or self._closing:
            raise RuntimeError("the LaggingReplica is not running: use it with `async with`")
        return self._url

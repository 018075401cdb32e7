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
import json
import math
import re
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeAlias

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from aiodax.testing._proxy import (
    Answer,
    forwarded,
    loopback_upstream,
    operation_of,
    parsed_json,
    response,
    serve,
)

__all__ = ["LaggingReplica", "ReplicaDiverged", "Route"]

Route: TypeAlias = Literal["consistent", "eventual", "write", "control"]
"""How the proxy routed a request, the second half of a :attr:`LaggingReplica.counts` key.

``"consistent"``: a read answered by the primary; ``"eventual"``: a read answered by the
replica; ``"write"``: a write, sent to the primary and replayed on the replica after the
lag; ``"control"``: anything else (the control plane), sent to the primary and, when it
changes something, to the replica at once.
"""

#: What a request without a DynamoDB ``X-Amz-Target`` is counted as.
_UNKNOWN: Final = "(unknown)"
_SELECT: Final = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_READS: Final = frozenset({"GetItem", "Query", "Scan"})
_WRITES: Final = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
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


# Routing: decided from the operation and the request alone ------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    route: Route
    #: sent to the replica too once the primary succeeded: after the lag for a write,
    #: at once for the control plane
    replayed: bool = False
    #: a BatchGetItem naming tables read both ways: (consistent part, eventual part)
    split: tuple[dict[str, Any], dict[str, Any]] | None = None


def _plan(operation: str | None, body: object) -> _Plan:
    """Where a request goes.

    A malformed request is routed as its operation's well-formed kind would be: the
    server it reaches judges it as the other would (both run the same software).
    """
    if operation is None:
        return _Plan("control")
    request = body if isinstance(body, dict) else {}
    if operation in _READS:
        return _read(request.get("ConsistentRead") is True)
    if operation == "BatchGetItem":
        return _batch_get(request)
    if operation == "TransactGetItems":
        return _read(consistent=True)
    if operation in _WRITES:
        return _Plan("write", replayed=True)
    if operation == "ExecuteStatement":
        if _is_select(request.get("Statement")):
            return _read(request.get("ConsistentRead") is True)
        return _Plan("write", replayed=True)
    if operation == "BatchExecuteStatement":
        statements = _dicts(request.get("Statements"))
        if statements and all(_is_select(s.get("Statement")) for s in statements):
            # A batch is one request to one server: one consistent statement makes it
            # consistent (a consistent answer is always a correct eventual one).
            return _read(any(s.get("ConsistentRead") is True for s in statements))
        return _Plan("write", replayed=True)
    if operation == "ExecuteTransaction":
        statements = _dicts(request.get("TransactStatements"))
        if statements and all(_is_select(s.get("Statement")) for s in statements):
            return _read(consistent=True)
        return _Plan("write", replayed=True)
    if operation.startswith(("Describe", "List", "Get")):
        return _Plan("control")
    return _Plan("control", replayed=True)


def _read(consistent: bool) -> _Plan:
    return _Plan("consistent" if consistent else "eventual")


def _batch_get(request: dict[str, Any]) -> _Plan:
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
    return _Plan(
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


def _replay_body(operation: str, request: bytes, answer: bytes) -> bytes | None:
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
        return _dumps({**body, "RequestItems": remaining}) if remaining else None
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
        return _dumps({**body, "Statements": done}) if done else None
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


def _replay_failure(operation: str, status: int, answer: bytes) -> str | None:
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


def _merged(consistent: bytes, eventual: bytes) -> bytes:
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
    return _dumps(merged)


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# Validation ---------------------------------------------------------------------


def _seconds(value: float, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def _count(value: int, name: str, *, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high if high is not None else '∞'}]")
    return value


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
        self._lag = _seconds(lag, "lag", positive=False)
        self._timeout = _seconds(timeout, "timeout", positive=True)
        self._max_pending = _count(max_pending, "max_pending")
        self._max_body = _count(max_body, "max_body")
        self._max_connections = _count(max_connections, "max_connections")
        self._port = _count(port, "port", low=0, high=65535)

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
        self._lag = _seconds(seconds, "lag", positive=False)
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
        seconds = _seconds(within, "within", positive=True)
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
        plan = _plan(operation, parsed_json(body))
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
                    replayed = _replay_body(operation, request.body, answer.body)
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
            self._primary, _Request(request.method, request.path, headers, _dumps(parts[0]))
        )
        if consistent.status != 200:
            return consistent
        eventual = await self._send(
            self._replica, _Request(request.method, request.path, headers, _dumps(parts[1]))
        )
        if eventual.status != 200:
            return eventual
        body = _merged(consistent.body, eventual.body)
        merged = consistent.headers.copy()
        merged.popall("Content-Encoding", None)
        merged["x-amz-crc32"] = str(zlib.crc32(body))
        return Answer(200, merged, body)

    async def _send(self, upstream: str, request: _Request) -> Answer:
        assert self._session is not None  # only called while running
        try:
            async with self._session.request(
                request.method,
                upstream + request.path,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
            ) as response:
                data = await self._read(response)
                return Answer(response.status, forwarded(response.headers), data)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _UpstreamError(f"{upstream}: {error!r}") from error

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body:
                raise _UpstreamError(f"answer larger than max_body={self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

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
                failure = _replay_failure(replay.operation, answer.status, answer.body)
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

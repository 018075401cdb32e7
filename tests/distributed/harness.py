"""Several OS processes, each with its own event loop, client and ``aiodax.Cache``.

The tests of the Redis tier need what a deployment has: separate processes sharing a
namespace on one Redis.  A :class:`Fleet` starts workers with ``multiprocessing``'s
*spawn* (never fork: the test process runs an event loop and threads) and drives
them over a small control socket on 127.0.0.1, one JSON line per command and per
answer.  Each command runs in a task of its own in the worker, so a test can start a
stampede in one worker, kill another, and keep talking to a third.

A worker builds, from its :class:`WorkerConfig`:

- an aiobotocore DynamoDB client of ``config.dynamodb`` (a ``CountingProxy`` in
  front of moto, so that the test counts what reached DynamoDB from every process),
  wrapped in an ``aiodax.testing.InstrumentedClient`` (for :meth:`Worker.hold`);
- ``aiodax.Cache(redis=..., namespace=..., **config.cache)`` around it, or a cache
  without a tier when ``config.redis`` is ``None`` (the baseline a test compares with).

Answers carry ``time.monotonic()`` stamps of the command's start and end in the
worker; ``CLOCK_MONOTONIC`` is system-wide on Linux, so they compare with the test's.
Items travel in DynamoDB's wire format (JSON: the tests use no Binary values).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import signal
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias, TypeVar, cast

import aioboto3
from botocore.exceptions import ClientError

import aiodax
from aiodax.testing import InstrumentedClient
from aiodax.testing.servers import HOST, client_kwargs

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from aiodax.testing import When

__all__ = [
    "Background",
    "Fleet",
    "Item",
    "Reply",
    "Worker",
    "WorkerConfig",
    "WorkerError",
    "WorkerGone",
    "eventually",
    "tier_reaches",
]

T = TypeVar("T")

Item: TypeAlias = dict[str, Any]
"""An item (or a key) in DynamoDB's wire format: ``{"pk": {"S": "a"}}``."""

#: How long a worker may take to start (spawned interpreters import aioboto3 and
#: aiodax; on a loaded 2-core machine that takes seconds).
STARTUP_TIMEOUT = 90.0
#: How long any one command may take unless the call says otherwise.
COMMAND_TIMEOUT = 30.0
#: How long a worker may take to exit when told to, before it is SIGKILLed.
EXIT_TIMEOUT = 10.0
#: The longest control line (a page of items, the stats): asyncio's default is 64 KiB.
LINE_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process runs: its DynamoDB endpoint, its Redis, its cache.

    ``redis`` is the tier's URL (``None``: a cache of its own, no tier);
    ``tier`` options, when given, make it ``Cache(redis=aiodax.RedisTier(redis,
    namespace=namespace, **tier))``, else ``Cache(redis=redis, namespace=namespace)``;
    ``cache`` are the other ``Cache`` options (``item_ttl``…).
    """

    dynamodb: str
    redis: str | None
    namespace: str = "aiodax-distributed"
    tier: Mapping[str, Any] = field(default_factory=dict)
    cache: Mapping[str, Any] = field(default_factory=dict)

    def but(self, **changes: Any) -> WorkerConfig:
        """This configuration with some fields changed (``config.but(redis=None)``)."""
        fields = {
            "dynamodb": self.dynamodb,
            "redis": self.redis,
            "namespace": self.namespace,
            "tier": self.tier,
            "cache": self.cache,
        }
        return WorkerConfig(**{**fields, **changes})


class WorkerError(Exception):
    """A command failed in the worker: ``kind`` is the exception's class name.

    ``code`` is DynamoDB's error code for a ``ClientError``, else ``None``.
    """

    def __init__(self, worker: str, kind: str, message: str, code: str | None) -> None:
        super().__init__(f"{worker}: {kind}: {message}")
        self.worker = worker
        self.kind = kind
        self.code = code


class WorkerGone(Exception):
    """The worker died (was killed, or crashed) before it answered."""


@dataclass(frozen=True)
class Reply:
    """A command's result and when it ran in the worker (``time.monotonic()``)."""

    value: Any
    started: float
    finished: float


# The test's side ---------------------------------------------------------------------


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    within: float = 10.0,
    what: str = "the condition",
) -> T:
    """Ask ``probe()`` until ``check`` holds for its answer; that answer.

    Raises ``AssertionError`` naming ``what`` and the last answer after ``within``
    seconds: a bound for what must happen, never a measure of how fast it did.
    """
    last: T | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await probe()
                if check(last):
                    return last
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} did not hold within {within} s; last: {last!r}") from None


class Background:
    """Tasks a test starts and awaits later; on leaving, those still running are
    cancelled, and every one is awaited, so that none outlives a failed test nor
    leaves an exception nobody retrieved."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coroutine)
        self._tasks.append(task)
        return task

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for task in self._tasks:
            if not task.cancelled():
                task.exception()  # retrieved: the test's own outcome is what counts


async def tier_reaches(
    worker: Worker, check: Callable[[dict[str, Any]], bool], *, within: float = 10.0, what: str
) -> dict[str, Any]:
    """Wait until ``check(worker.tier())`` holds (``cache.stats()["Tier"]``)."""
    return await eventually(worker.tier, check, within=within, what=f"{worker.name}: {what}")


class Worker:
    """One worker process, as the test drives it.

    Every command is a coroutine that returns the worker's answer or raises
    :class:`WorkerError` (the command failed there) or :class:`WorkerGone`.
    """

    def __init__(self, name: str, process: BaseProcess) -> None:
        self.name = name
        self.process = process
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._ids = 0
        self._gone = asyncio.Event()
        self._connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"<Worker {self.name} pid {self.process.pid}>"

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None
        return pid

    @property
    def alive(self) -> bool:
        return not self._gone.is_set()

    # Commands ---------------------------------------------------------------------

    async def request(
        self, op: str, *, reply_within: float = COMMAND_TIMEOUT, **args: Any
    ) -> Reply:
        """Run command ``op`` with ``args`` in the worker; its :class:`Reply`.

        Raises ``TimeoutError`` when the answer takes more than ``reply_within`` seconds.
        """
        if self._writer is None or not self.alive:
            raise WorkerGone(f"{self.name} is not running")
        self._ids += 1
        ident = self._ids
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            line = json.dumps({"id": ident, "op": op, "args": args}).encode() + b"\n"
            self._writer.write(line)
            async with asyncio.timeout(reply_within):
                return await future
        finally:
            self._pending.pop(ident, None)

    async def call(self, operation: str, **request: Any) -> dict[str, Any]:
        """``await client.<operation>(**request)`` through the worker's cache.

        The answer without its ``ResponseMetadata``, except ``CacheStatus`` (``"hit"``,
        ``"miss"``, ``"coalesced"``) when aiodax set one.
        """
        value: dict[str, Any] = (
            await self.request("call", operation=operation, request=request)
        ).value
        return value

    async def get(self, table: str, key: Item, **request: Any) -> Item | None:
        """The item GetItem answers through the worker's cache, or ``None``."""
        item: Item | None = (await self.call("get_item", TableName=table, Key=key, **request)).get(
            "Item"
        )
        return item

    async def put(self, table: str, item: Item) -> Reply:
        return await self.request(
            "call", operation="put_item", request={"TableName": table, "Item": item}
        )

    async def invalidate(self, table: str, key: Item) -> None:
        await self.request("invalidate", table=table, key=key)

    async def invalidate_table(self, table: str) -> None:
        await self.request("invalidate_table", table=table)

    async def clear(self) -> None:
        await self.request("clear")

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self.request("stats")).value
        return stats

    async def tier(self) -> dict[str, Any]:
        """``cache.stats()["Tier"]``: the Redis tier's state and counters."""
        stats = await self.stats()
        tier = stats.get("Tier")
        if not isinstance(tier, dict):
            raise AssertionError(f"{self.name}: cache.stats() has no 'Tier' section: {stats!r}")
        return tier

    async def stampede(self, table: str, key: Item, n: int) -> dict[str, Any]:
        """``n`` concurrent GetItems of ``key``: how many were served, the distinct
        items (``None`` for absent) and the errors, as ``{"served", "items", "errors"}``."""
        result: dict[str, Any] = (await self.request("stampede", table=table, key=key, n=n)).value
        return result

    async def watch(
        self,
        operation: str,
        request: Mapping[str, Any],
        until: Any,
        *,
        field: str = "Item",
        within: float = 10.0,
        confirm: int = 20,
    ) -> dict[str, Any]:
        """Poll ``operation`` in the worker until the answer's ``field`` equals ``until``.

        ``until=None`` waits for the field to be absent.  After the first such answer it
        asks ``confirm`` more times; ``{"polls", "seen_at", "reverted"}`` says how many
        polls it took, when (``time.monotonic()``) the awaited answer came, and how many
        of the confirming answers differed from it (0 unless the cache went back to an
        older value).  Raises :class:`WorkerError` (``kind="TimeoutError"``, with the last
        answer) after ``within`` seconds.
        """
        result: dict[str, Any] = (
            await self.request(
                "watch",
                operation=operation,
                request=dict(request),
                until=until,
                field=field,
                within=within,
                confirm=confirm,
                reply_within=within + COMMAND_TIMEOUT,
            )
        ).value
        return result

    async def hold(self, operation: str, *, when: str = "after", times: int = 1) -> None:
        """Hold this worker's next ``times`` calls of ``operation`` (``"get_item"``…).

        ``when="after"``: the request reaches DynamoDB (and is counted), its answer is
        held; ``"before"``: the request waits before it is sent.  :meth:`release` lets
        them go; a worker killed meanwhile never gets the answer.
        """
        await self.request("hold", operation=operation, when=when, times=times)

    async def release(self, operation: str) -> None:
        await self.request("release", operation=operation)

    async def backend_calls(self) -> dict[str, dict[str, int]]:
        """What this worker's cache asked of DynamoDB, by operation (``"get_item"``…):
        ``{"sent": {...}, "answered": {...}}``, its ``InstrumentedClient``'s ``calls``
        and ``answered`` (a call held ``when="after"`` is answered: DynamoDB did it)."""
        calls: dict[str, dict[str, int]] = (await self.request("backend_calls")).value
        return calls

    async def start_load(
        self,
        table: str,
        *,
        reads: list[Item],
        writes: Sequence[Item] = (),
        write_every: int = 10,
        concurrency: int = 2,
        pause: float = 0.005,
        history: bool = False,
    ) -> None:
        """Read ``reads`` keys at random, and every ``write_every``-th operation put one of
        ``writes`` (keys this worker alone writes) with the next ``v`` of this worker,
        ``"<worker>-<n>"``, in ``concurrency`` loops pausing ``pause`` s between
        operations, until :meth:`stop_load`.  Writes of one key are never concurrent,
        so DynamoDB applies them in the order of their ``n``.  With ``history``, the
        report lists every operation (see :meth:`stop_load`)."""
        await self.request(
            "start_load",
            table=table,
            reads=reads,
            writes=list(writes),
            write_every=write_every,
            concurrency=concurrency,
            pause=pause,
            history=history,
        )

    async def load_progress(self) -> dict[str, Any]:
        """What :meth:`stop_load` would answer, without stopping the load."""
        result: dict[str, Any] = (await self.request("load_progress")).value
        return result

    async def stop_load(self) -> dict[str, Any]:
        """Stop the load; ``{"reads", "writes", "failures", "errors", "written"}``:
        operations done, how many failed (and the first few errors), and the last
        acknowledged ``v`` of each written key (by the key's ``pk``).  With ``history``
        also ``"history"``: ``[kind, pk, v, started, finished]`` per operation that
        succeeded, ``kind`` ``"r"`` or ``"w"``, ``v`` the value read (``None``:
        absent) or written, the stamps ``time.monotonic()``."""
        result: dict[str, Any] = (await self.request("stop_load")).value
        return result

    async def exit(self) -> None:
        """Tell the worker to close its cache and client and exit; wait until it has."""
        if not self.alive:
            return
        with contextlib.suppress(WorkerGone, TimeoutError):
            await self.request("exit", reply_within=EXIT_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_TIMEOUT):
                await self.gone()
        if self.alive:
            self.kill()
            await self.gone()

    def kill(self) -> None:
        """SIGKILL the worker (as ``kill -9``): no cleanup, no goodbye to Redis."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    async def gone(self) -> None:
        """Wait until the worker's process has ended."""
        await self._gone.wait()

    # Plumbing ---------------------------------------------------------------------

    def _attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader), name=f"harness-{self.name}")
        if not self._connected.done():
            self._connected.set_result(None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while line := await reader.readline():
                message = json.loads(line)
                future = self._pending.get(message.get("id", -1))
                if future is None or future.done():
                    continue
                if "error" in message:
                    error = message["error"]
                    future.set_exception(
                        WorkerError(self.name, error["kind"], error["message"], error.get("code"))
                    )
                else:
                    future.set_result(
                        Reply(message["value"], message["started"], message["finished"])
                    )
        self._lost()

    def _lost(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerGone(f"{self.name} died before it answered"))

    def _ended(self) -> None:
        self._gone.set()
        self._lost()
        if not self._connected.done():
            self._connected.set_exception(WorkerGone(f"{self.name} exited during startup"))

    async def _close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        if self._reader_task is not None:
            await asyncio.wait([self._reader_task])


class Fleet:
    """Worker processes sharing one configuration; ends them all when it closes.

    Use it as an async context manager; :meth:`spawn` starts workers (concurrently).
    Leaving the block tells every live worker to exit, SIGKILLs any that does not
    within :data:`EXIT_TIMEOUT`, and reaps them all, whatever the test did.
    """

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.workers: list[Worker] = []
        self._server: asyncio.Server | None = None
        self._by_name: dict[str, Worker] = {}
        self._context = multiprocessing.get_context("spawn")

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, HOST, 0, limit=LINE_LIMIT)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await asyncio.gather(*(worker.exit() for worker in self.workers))
        finally:
            for worker in self.workers:
                if worker.alive:
                    worker.kill()
            for worker in self.workers:
                await worker.gone()
                await worker._close()
                worker.process.join()
                worker.process.close()
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

    async def spawn(self, count: int = 1, config: WorkerConfig | None = None) -> list[Worker]:
        """Start ``count`` workers (of ``config``, default the fleet's); wait until each
        is ready to take commands.  Raises ``RuntimeError`` with the worker's traceback
        when one fails to start (an ``aiodax.Cache`` option it does not know, say)."""
        assert self._server is not None, "use the Fleet with `async with`"
        address = self._server.sockets[0].getsockname()[:2]
        started = [self._start(address, config or self.config) for _ in range(count)]
        async with asyncio.timeout(STARTUP_TIMEOUT):
            await asyncio.gather(*(_ready(worker) for worker in started))
        return started

    def _start(self, address: tuple[str, int], config: WorkerConfig) -> Worker:
        name = f"w{len(self.workers)}"
        process = self._context.Process(
            target=worker_main, args=(address, name, config), name=f"aiodax-{name}", daemon=True
        )
        process.start()
        worker = Worker(name, process)
        self.workers.append(worker)
        self._by_name[name] = worker
        loop = asyncio.get_running_loop()

        def ended() -> None:
            loop.remove_reader(process.sentinel)
            worker._ended()

        # The sentinel becomes readable when the process ends, however it ends.
        loop.add_reader(process.sentinel, ended)
        return worker

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        hello = json.loads(line) if line else {}
        worker = self._by_name.get(hello.get("worker", ""))
        if worker is None:
            writer.transport.abort()
            return
        if "failed" in hello:
            writer.transport.abort()
            if not worker._connected.done():
                worker._connected.set_exception(
                    RuntimeError(f"{worker.name} failed to start:\n{hello['failed']}")
                )
            return
        worker._attach(reader, writer)


async def _ready(worker: Worker) -> None:
    await worker._connected


# The worker's side -----------------------------------------------------------------------


def worker_main(address: tuple[str, int], name: str, config: WorkerConfig) -> None:
    """A worker process's entry point (spawned: it imports this module afresh)."""
    # As the test suite runs: a warning is a failure, here too.
    warnings.simplefilter("error")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    asyncio.run(_Worker(name, config).run(address))


Handler: TypeAlias = Callable[..., Awaitable[Any]]


class _Worker:
    def __init__(self, name: str, config: WorkerConfig) -> None:
        self.name = name
        self.config = config
        self.cache: aiodax.Cache | None = None
        self.client: Any = None
        self.instrumented: InstrumentedClient | None = None
        self.holds: dict[str, list[asyncio.Event]] = {}
        self.load: _Load | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.stop = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, address: tuple[str, int]) -> None:
        reader, self.writer = await asyncio.open_connection(*address, limit=LINE_LIMIT)
        ready = False
        try:
            async with self._resources():
                self._send({"worker": self.name, "pid": os.getpid()})
                ready = True
                await self._serve(reader)
        except Exception:
            if not ready:
                self._send({"worker": self.name, "failed": traceback.format_exc()})
            raise
        finally:
            with contextlib.suppress(OSError):
                await self.writer.drain()
            self.writer.close()

    @contextlib.asynccontextmanager
    async def _resources(self) -> AsyncIterator[None]:
        config = self.config
        session = aioboto3.Session()
        kwargs = client_kwargs(config.dynamodb, max_pool_connections=64)
        async with (
            session.client("dynamodb", **kwargs) as raw,
            _cache(config) as cache,
        ):
            self.cache = cache
            self.instrumented = InstrumentedClient(raw)
            self.client = cache.wrap(cast("DynamoDBClient", self.instrumented))
            try:
                yield
            finally:
                if self.load is not None:
                    await self.load.stop()
                for task in list(self.tasks):
                    task.cancel()
                if self.tasks:
                    await asyncio.wait(list(self.tasks))

    async def _serve(self, reader: asyncio.StreamReader) -> None:
        lines = asyncio.create_task(reader.readline())
        stopping = asyncio.create_task(self.stop.wait())
        try:
            while True:
                await asyncio.wait([lines, stopping], return_when=asyncio.FIRST_COMPLETED)
                if stopping.done() or not lines.result():
                    return
                message = json.loads(lines.result())
                task = asyncio.create_task(self._run(message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                lines = asyncio.create_task(reader.readline())
        finally:
            lines.cancel()
            stopping.cancel()
            await asyncio.wait([lines, stopping])

    async def _run(self, message: dict[str, Any]) -> None:
        handler: Handler = getattr(self, f"op_{message['op']}")
        started = time.monotonic()
        try:
            value = await handler(**message["args"])
        except Exception as error:
            code = error.response["Error"]["Code"] if isinstance(error, ClientError) else None
            self._send(
                {
                    "id": message["id"],
                    "error": {"kind": type(error).__name__, "message": str(error), "code": code},
                }
            )
            return
        self._send(
            {"id": message["id"], "value": value, "started": started, "finished": time.monotonic()}
        )

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write(json.dumps(message).encode() + b"\n")

    # Commands ---------------------------------------------------------------------

    async def op_call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        response = await getattr(self.client, operation)(**request)
        return _plain(response)

    async def op_invalidate(self, table: str, key: Item) -> None:
        assert self.cache is not None
        self.cache.invalidate(table, key)

    async def op_invalidate_table(self, table: str) -> None:
        assert self.cache is not None
        self.cache.invalidate_table(table)

    async def op_clear(self) -> None:
        assert self.cache is not None
        self.cache.clear()

    async def op_stats(self) -> dict[str, Any]:
        assert self.cache is not None
        stats: dict[str, Any] = json.loads(json.dumps(self.cache.stats(), default=str))
        return stats

    async def op_stampede(self, table: str, key: Item, n: int) -> dict[str, Any]:
        async def one() -> Item | None:
            response = await self.client.get_item(TableName=table, Key=key)
            item: Item | None = response.get("Item")
            return item

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        items: list[Item | None] = []
        for result in results:
            if not isinstance(result, BaseException) and result not in items:
                items.append(result)
        return {"served": n - len(errors), "items": items, "errors": errors[:20]}

    async def op_watch(
        self,
        operation: str,
        request: dict[str, Any],
        until: Any,
        field: str,
        within: float,
        confirm: int,
    ) -> dict[str, Any]:
        polls = 0
        last: Any = None
        try:
            async with asyncio.timeout(within):
                while True:
                    polls += 1
                    response = await getattr(self.client, operation)(**request)
                    last = _plain(response).get(field)
                    if last == until:
                        break
                    await asyncio.sleep(0.002)
        except TimeoutError:
            raise TimeoutError(
                f"after {polls} polls in {within} s, {field} is still {last!r}, not {until!r}"
            ) from None
        seen_at = time.monotonic()
        reverted = 0
        for _ in range(confirm):
            response = await getattr(self.client, operation)(**request)
            reverted += _plain(response).get(field) != until
            await asyncio.sleep(0.001)
        return {"polls": polls, "seen_at": seen_at, "reverted": reverted}

    async def op_hold(self, operation: str, when: str, times: int) -> None:
        assert self.instrumented is not None
        event = self.instrumented.hold(operation, times=times, when=cast("When", when))
        self.holds.setdefault(operation, []).append(event)

    async def op_backend_calls(self) -> dict[str, dict[str, int]]:
        assert self.instrumented is not None
        return {"sent": dict(self.instrumented.calls), "answered": dict(self.instrumented.answered)}

    async def op_release(self, operation: str) -> None:
        for event in self.holds.pop(operation, []):
            event.set()

    async def op_start_load(self, **options: Any) -> None:
        if self.load is not None:
            raise RuntimeError("a load is already running")
        self.load = _Load(self.name, self.client, **options)
        self.load.start()

    async def op_load_progress(self) -> dict[str, Any]:
        if self.load is None:
            raise RuntimeError("no load is running")
        return self.load.report()

    async def op_stop_load(self) -> dict[str, Any]:
        if self.load is None:
            raise RuntimeError("no load is running")
        load, self.load = self.load, None
        await load.stop()
        return load.report()

    async def op_exit(self) -> None:
        self.stop.set()


@contextlib.asynccontextmanager
async def _cache(config: WorkerConfig) -> AsyncIterator[aiodax.Cache]:
    options: dict[str, Any] = dict(config.cache)
    if config.redis is not None:
        if config.tier:
            options["redis"] = aiodax.RedisTier(
                config.redis, namespace=config.namespace, **config.tier
            )
        else:
            options["redis"] = config.redis
            options["namespace"] = config.namespace
    async with aiodax.Cache(**options) as cache:
        yield cache


def _plain(response: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as JSON carries it: no ``ResponseMetadata`` but its ``CacheStatus``."""
    plain = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    status = response.get("ResponseMetadata", {}).get("CacheStatus")
    if status is not None:
        plain["CacheStatus"] = status
    result: dict[str, Any] = json.loads(json.dumps(plain))
    return result


class _Load:
    """Reads and writes in a few loops until stopped, counting what failed."""

    def __init__(
        self,
        name: str,
        client: Any,
        *,
        table: str,
        reads: list[Item],
        writes: list[Item],
        write_every: int,
        concurrency: int,
        pause: float,
        history: bool,
    ) -> None:
        self.name = name
        self.client = client
        self.table = table
        self.reads = reads
        self.writes = writes
        self.write_every = write_every
        self.concurrency = concurrency
        self.pause = pause
        self.random = random.Random(name)
        self.counts = {"reads": 0, "writes": 0, "failures": 0}
        self.errors: list[str] = []
        self.written: dict[str, str] = {}
        self.sequence = 0
        self.history: list[tuple[str, str, str | None, float, float]] | None = (
            [] if history else None
        )
        self.writing: dict[str, asyncio.Lock] = {}
        self.stopping = asyncio.Event()
        self.loops: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.loops = [asyncio.create_task(self._loop()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        # Each loop ends after the operation it is in: a write is never cut in two.
        self.stopping.set()
        if self.loops:
            await asyncio.wait(self.loops)

    def report(self) -> dict[str, Any]:
        report = {**self.counts, "errors": self.errors[:20], "written": dict(self.written)}
        if self.history is not None:
            report["history"] = list(self.history)
        return report

    async def _loop(self) -> None:
        operations = 0
        while not self.stopping.is_set():
            operations += 1
            try:
                if self.writes and operations % self.write_every == 0:
                    await self._write()
                else:
                    await self._read()
            except Exception as error:
                self.counts["failures"] += 1
                self.errors.append(f"{type(error).__name__}: {error}")
            # Also what lets the worker's other tasks run: a hit never yields.
            await asyncio.sleep(self.pause)

    async def _read(self) -> None:
        key = self.random.choice(self.reads)
        started = time.monotonic()
        response = await self.client.get_item(TableName=self.table, Key=key)
        finished = time.monotonic()
        self.counts["reads"] += 1
        if self.history is not None:
            value = response.get("Item", {}).get("v", {}).get("S")
            self.history.append(("r", key["pk"]["S"], value, started, finished))

    async def _write(self) -> None:
        key = self.random.choice(self.writes)
        pk = key["pk"]["S"]
        async with self.writing.setdefault(pk, asyncio.Lock()):
            self.sequence += 1
            value = f"{self.name}-{self.sequence}"
            started = time.monotonic()
            await self.client.put_item(TableName=self.table, Item={**key, "v": {"S": value}})
            finished = time.monotonic()
            self.counts["writes"] += 1
            self.written[pk] = value
        if self.history is not None:
            self.history.append(("w", pk, value, started, finished))

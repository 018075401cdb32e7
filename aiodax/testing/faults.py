"""A TCP proxy on 127.0.0.1 that breaks the network on demand: network faults for tests.

:class:`TcpFaultProxy` forwards every connection it accepts to one upstream
``host:port`` (a ``redis-server``, say) and can be switched at any moment, without
restarting anything, to the faults a real network has:

- :meth:`~TcpFaultProxy.pass_through`: forward everything (the initial mode);
- :meth:`~TcpFaultProxy.blackhole`: forward nothing, in one direction or both, and
  keep every socket open, as a silent partition does.  Nothing is lost: the bytes
  wait (in the proxy and the kernel's buffers, bounded, so senders end up blocked)
  and flow again, in order, after :meth:`~TcpFaultProxy.pass_through`, as TCP's
  retransmissions would deliver them once the partition heals.  A client sees no
  error, only silence: the case a client's own error handling never meets;
- :meth:`~TcpFaultProxy.delay`: forward each chunk ``ms`` milliseconds after it
  arrived (latency, not a bandwidth limit: chunks in flight overlap);
- :meth:`~TcpFaultProxy.refuse`: reset every new connection as soon as it is
  accepted (the client's connect succeeds, its first read or write fails with a
  reset; an ECONNREFUSED would need the port closed, which another process could
  then take);
- :meth:`~TcpFaultProxy.reset_all`: an action, not a mode: RST every open connection
  now (``SO_LINGER`` 0), as a middlebox or a restarted NAT does.

Use it as an async context manager, in the event loop of the code under test or of
the test::

    async with TcpFaultProxy(redis.host, redis.port) as proxy:
        cache = aiodax.Cache(redis=proxy.url("redis"), namespace="test")
        ...
        proxy.blackhole()
        ...
        proxy.pass_through()

Leaving the block closes the listening socket and every connection, and waits for
the proxy's tasks: none is left behind.  Only loopback upstreams are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self, TypeAlias

from aiodax.testing.servers import HOST

__all__ = ["Direction", "FaultMode", "TcpFaultProxy"]

FaultMode: TypeAlias = Literal["pass", "blackhole", "delay", "refuse"]
"""What :class:`TcpFaultProxy` does with the bytes and connections it gets."""

Direction: TypeAlias = Literal["both", "upstream", "downstream"]
"""Which way a blackhole stops bytes: ``"upstream"`` is client → server."""

_CHUNK: Final = 64 * 1024
#: chunks read ahead of the writer per direction: bounds what the proxy holds
_QUEUED_CHUNKS: Final = 16


@dataclass(eq=False, slots=True)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self, *, reset: bool) -> None:
        for writer in (self.client, self.upstream):
            if reset:
                _linger_zero(writer)
            writer.transport.abort()


class TcpFaultProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream_host:upstream_port``; faults on demand.

    ``port=0`` (default) listens on a free port.  ``connect_timeout`` bounds the
    connection to the upstream (a connection it refuses or that times out is closed
    on the client's side).  See the module's docstring for the modes.

    Counters (read at any time): :attr:`accepted` connections, :attr:`open`
    connections now, :attr:`refused` connections reset by :meth:`refuse` mode,
    :attr:`resets` connections reset by :meth:`reset_all`.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        port: int = 0,
        connect_timeout: float = 5.0,
    ) -> None:
        if not _is_loopback(upstream_host):
            raise ValueError(f"the upstream must be on loopback, got {upstream_host!r}")
        for name, value in (("upstream_port", upstream_port), ("port", port)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
                raise ValueError(f"{name} must be an int in [0, 65535], got {value!r}")
        if upstream_port == 0:
            raise ValueError("upstream_port must name the upstream's port, not 0")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        self._upstream = (upstream_host, upstream_port)
        self._port = port
        self._connect_timeout = connect_timeout
        self._mode: FaultMode = "pass"
        self._delay = 0.0
        # Set while bytes may flow that way; a blackhole clears one or both.
        self._flowing = {"upstream": asyncio.Event(), "downstream": asyncio.Event()}
        for event in self._flowing.values():
            event.set()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._serving: set[asyncio.Task[None]] = set()
        self._closing = False
        self.accepted = 0
        self.refused = 0
        self.resets = 0

    # Public surface ----------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1``: where the proxy listens."""
        return HOST

    @property
    def port(self) -> int:
        """The port the proxy listens on (while running)."""
        self._running()
        return self._port

    def url(self, scheme: str, path: str = "/0") -> str:
        """``<scheme>://127.0.0.1:<port><path>``: ``proxy.url("redis")`` for a Redis client."""
        return f"{scheme}://{HOST}:{self.port}{path}"

    @property
    def mode(self) -> FaultMode:
        return self._mode

    @property
    def open(self) -> int:
        """Connections forwarded (or held) now."""
        return len(self._connections)

    def pass_through(self) -> None:
        """Forward everything, at once; bytes held by a blackhole flow again."""
        self._set("pass")

    def blackhole(self, direction: Direction = "both") -> None:
        """Stop forwarding ``direction`` (new connections too); sockets stay open."""
        if direction not in ("both", "upstream", "downstream"):
            raise ValueError(f"direction must be 'both', 'upstream' or 'downstream': {direction!r}")
        self._set("blackhole")
        for way, event in self._flowing.items():
            if direction in ("both", way):
                event.clear()

    def delay(self, ms: float) -> None:
        """Forward each chunk ``ms`` milliseconds after it arrived, both ways."""
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms < 3_600_000:
            raise ValueError(f"ms must be a number of milliseconds >= 0, got {ms!r}")
        self._set("delay")
        self._delay = ms / 1000

    def refuse(self) -> None:
        """Reset every new connection at once; open ones keep working."""
        self._set("refuse")

    def reset_all(self) -> int:
        """RST every open connection now; returns how many.  The mode is unchanged."""
        connections = list(self._connections)
        for connection in connections:
            connection.abort(reset=True)
        self.resets += len(connections)
        return len(connections)

    async def __aenter__(self) -> Self:
        if self._server is not None or self._closing:
            raise RuntimeError("a TcpFaultProxy runs once; make a new one")
        self._server = await asyncio.start_server(self._accept, HOST, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort(reset=False)
        serving = list(self._serving)
        for task in serving:
            task.cancel()
        # wait(), not gather(): their cancellation is not this task's.
        if serving:
            await asyncio.wait(serving)
        if self._handlers:
            await asyncio.wait(list(self._handlers))
        if self._server is not None:
            await self._server.wait_closed()

    def __repr__(self) -> str:
        return (
            f"<TcpFaultProxy {HOST}:{self._port} -> {self._upstream[0]}:{self._upstream[1]} "
            f"{self._mode}, {self.open} open>"
        )

    # Connections -------------------------------------------------------------------

    def _set(self, mode: FaultMode) -> None:
        self._mode = mode
        self._delay = 0.0
        for event in self._flowing.values():
            event.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The connection is served in a task of its own, which closing cancels: this
        # callback's task must end normally (asyncio reads its exception() when it
        # ends, which a cancelled task raises).
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        serving = asyncio.create_task(self._serve(reader, writer))
        self._serving.add(serving)
        try:
            await asyncio.wait([serving])
        finally:
            self._serving.discard(serving)
            self._handlers.discard(handler)
        if not serving.cancelled():
            serving.result()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._mode == "refuse" or self._closing:
            self.refused += 1
            _linger_zero(writer)
            writer.transport.abort()
            return
        try:
            async with asyncio.timeout(self._connect_timeout):
                upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        connection = _Connection(writer, upstream_writer)
        self._connections.add(connection)
        try:
            connection.tasks = [
                asyncio.create_task(self._pump(reader, upstream_writer, "upstream")),
                asyncio.create_task(self._pump(upstream_reader, writer, "downstream")),
            ]
            # One side closing (or failing) ends the connection: close both.
            await asyncio.wait(connection.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._connections.discard(connection)
            for task in connection.tasks:
                task.cancel()
            connection.abort(reset=False)
            if connection.tasks:
                await asyncio.wait(connection.tasks)
            for task in connection.tasks:
                if not task.cancelled():
                    task.result()  # a pump's own failure is a bug: let it show

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str
    ) -> None:
        # A reader and a writer per direction, so that a delay is latency, not a
        # bandwidth cap: chunks read meanwhile queue (boundedly) behind the first.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUED_CHUNKS)
        sender = asyncio.create_task(self._send(queue, writer, way))
        try:
            while True:
                await self._flowing[way].wait()
                try:
                    data = await reader.read(_CHUNK)
                except OSError:
                    data = b""
                await _racing(queue.put((time.monotonic(), data)), sender)
                if not data or sender.done():
                    break
            await asyncio.wait([sender])
        finally:
            sender.cancel()
            await asyncio.wait([sender])
        if not sender.cancelled():
            sender.result()

    async def _send(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, way: str
    ) -> None:
        while True:
            arrived, data = await queue.get()
            due = arrived + self._delay
            while (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
                due = arrived + self._delay  # the delay may have changed meanwhile
            await self._flowing[way].wait()
            if not data:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return

    def _running(self) -> None:
        if self._server is None or self._closing:
            raise RuntimeError("the TcpFaultProxy is not running: use it with `async with`")


async def _racing(step: Awaitable[None], sender: asyncio.Task[None]) -> None:
    """``await step`` unless ``sender`` ends first (its peer is gone: nothing to wait for)."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait([task, sender], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait([task])


def _linger_zero(writer: asyncio.StreamWriter) -> None:
    """Make the socket's close send RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

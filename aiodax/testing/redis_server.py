"""A private ``redis-server`` on a free 127.0.0.1 port, for tests of the Redis tier.

:class:`RedisServer` starts the ``redis-server`` binary found on ``PATH`` with
nothing kept on disk (``--save '' --appendonly no``, its own temporary directory),
listening on 127.0.0.1 only.  It is a context manager, plain or async::

    with RedisServer() as redis:
        cache = aiodax.Cache(redis=redis.url, namespace="test")
        ...
        redis.kill()       # SIGKILL: what a crash or an OOM kill does
        redis.restart()    # the same port, empty: a restart without persistence

Every method is synchronous and returns once the server is up (or gone); each takes
at most a few tens of milliseconds on loopback.  From a running event loop call the
ones that wait for the server in a thread, so the loop keeps serving meanwhile:
``await asyncio.to_thread(redis.restart)``; ``async with RedisServer()`` does that for
the start and the stop.

Another Redis on the machine (the shared one on 6379, say) is never touched: the port
is one the kernel hands out free, and the server's files live in its own temporary
directory, removed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from aiodax.testing.servers import HOST, ServerUnavailable

__all__ = ["RedisServer"]

#: How many free ports :meth:`RedisServer.start` tries when another process takes
#: the port it picked between picking it and the server binding it.
_PORT_ATTEMPTS = 5
_LOG_TAIL = 4000


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1, empty, with nothing on disk.

    ``port=0`` (default) takes a free port; it is kept across :meth:`restart`.
    ``args`` are more command-line options for the server (``["--maxmemory",
    "10mb"]``, ``["--enable-debug-command", "local"]`` for ``DEBUG SLEEP``…);
    ``binary`` is the executable, found on ``PATH`` unless it is a path.
    ``startup_timeout`` is how many seconds the server may take to answer ``PING``.

    :meth:`start` raises :class:`~aiodax.testing.servers.ServerUnavailable` when the
    binary is absent (a test can turn that into a skip) and ``RuntimeError``, with the
    end of the server's log, when it exits or stays silent during startup.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        args: Sequence[str] = (),
        binary: str = "redis-server",
        startup_timeout: float = 10.0,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in [0, 65535], got {port!r}")
        if isinstance(args, str) or not all(isinstance(arg, str) for arg in args):
            raise TypeError(f"args must be a sequence of strings, got {args!r}")
        if not startup_timeout > 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        self._requested_port = port
        self._port = port
        self._args = tuple(args)
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None
        #: how many times the server was started (1 after :meth:`start`, +1 per restart)
        self.starts = 0

    # Public surface ----------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1``: the only address the server listens on."""
        return HOST

    @property
    def port(self) -> int:
        """The server's port (kept across restarts); 0 before the first start."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``, to hand to a client or to ``aiodax.Cache``."""
        if self._port == 0:
            raise RuntimeError("the RedisServer has not been started yet")
        return f"redis://{HOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """The running server's process id, or ``None`` when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive (it may still be starting)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it answers ``PING``; returns ``self``."""
        if self.running:
            raise RuntimeError("the RedisServer is already running")
        binary = shutil.which(self._binary)
        if binary is None:
            raise ServerUnavailable(
                f"`{self._binary}` not found on PATH: install Redis (7 or later) to run this"
            )
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="aiodax-redis-")
        # A port picked free may be taken before the server binds it; only a port the
        # caller did not fix can be picked again.
        attempts = _PORT_ATTEMPTS if self._requested_port == 0 and self.starts == 0 else 1
        for attempt in range(attempts):
            if self._port == 0 or attempt > 0:
                self._port = _free_port()
            try:
                self._launch(binary)
                break
            except _PortTaken:
                if attempt + 1 == attempts:
                    raise RuntimeError(
                        f"redis-server could not bind port {self._port}:\n{self._tail()}"
                    ) from None
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone; its data is lost.

        Clients' connections are closed by the kernel (a FIN, as after a crash).
        Nothing happens if the server is not running.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart(self) -> None:
        """Stop the server (SIGKILL if it still runs) and start it empty on the same port.

        A Redis restart without persistence: new ``run_id``, no keys, no streams.
        """
        self.kill()
        self._close_log()
        self.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout`` s) and remove its files."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        self._close_log()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<RedisServer {HOST}:{self._port} {state}>"

    # Starting ----------------------------------------------------------------------

    def _launch(self, binary: str) -> None:
        assert self._workdir is not None
        workdir = Path(self._workdir.name)
        self._close_log()
        self._log = open(workdir / "server.log", "w+b")  # noqa: SIM115 (kept open while it runs)
        command = [
            binary,
            "--bind",
            HOST,
            "--port",
            str(self._port),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
            *self._args,
        ]
        self._process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._process.poll() is not None:
                log = self._tail()
                self._process = None
                if "Address already in use" in log:
                    raise _PortTaken
                raise RuntimeError(f"redis-server exited during startup:\n{log}")
            if _answers_ping(self._port):
                return
            if time.monotonic() > deadline:
                self.kill()
                self._process = None
                raise RuntimeError(
                    f"redis-server did not answer PING on port {self._port} within "
                    f"{self._startup_timeout:g} s:\n{self._tail()}"
                )
            time.sleep(0.01)

    def _tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        size = self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, size - _LOG_TAIL))
        return self._log.read().decode(errors="replace")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class _PortTaken(Exception):
    """Another process bound the port between its choice and the server's start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    # A raw RESP PING: this module must not need redis-py (an optional extra).
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")
    return False

"""DynamoDB-compatible servers on loopback, for tests, demos and benchmarks.

Each server is a plain (synchronous) context manager that starts it on a free port
of 127.0.0.1 and yields its endpoint URL; leaving the ``with`` block stops it::

    import asyncio

    import aioboto3

    import aiodax
    from aiodax.testing.servers import client_kwargs, moto_server, string_key_table


    async def main(url: str) -> None:
        async with aiodax.client(aioboto3.Session(), **client_kwargs(url)) as dynamodb:
            await dynamodb.create_table(**string_key_table("orders"))
            ...


    with moto_server() as url:
        asyncio.run(main(url))

- :func:`moto_server` runs moto's server in a thread of this process
  (``pip install 'aiodax[demo]'``).
- :func:`dynamodb_local` runs AWS's DynamoDB Local (Java) as a child process; the jar
  comes from ``scripts/fetch-dynamodb-local`` or ``$AIODAX_DYNAMODB_LOCAL_DIR``.
- :func:`client_kwargs` and :func:`string_key_table` are the client arguments and
  ``CreateTable`` request that suit either.

Neither server listens on another address than loopback (DynamoDB Local has no bind
option: only its port is chosen here, and clients use 127.0.0.1).  A server that
cannot start on this machine raises :class:`ServerUnavailable`, which a test can turn
into a skip.  ``moto.mock_aws`` cannot stand in for either: it does not intercept
aiobotocore, so every client needs an explicit ``endpoint_url``.

The ``aiodax stampede`` command, the pytest plugin (:mod:`aiodax.testing.plugin`),
the benchmarks and aiodax's own test suite all use these.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypedDict

from aiobotocore.config import AioConfig

__all__ = [
    # The servers
    "moto_server",
    "dynamodb_local",
    "dynamodb_local_dir",
    "ServerUnavailable",
    # Talking to them
    "client_kwargs",
    "ClientKwargs",
    "string_key_table",
    # Constants
    "HOST",
    "REGION",
    "DYNAMODB_LOCAL_DIR_ENV",
    "DYNAMODB_LOCAL_SUBDIR",
]

#: Where DynamoDB Local's ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib/`` are, if set.
DYNAMODB_LOCAL_DIR_ENV = "AIODAX_DYNAMODB_LOCAL_DIR"
#: Where ``scripts/fetch-dynamodb-local`` puts them, relative to the repository root.
DYNAMODB_LOCAL_SUBDIR = Path(".cache", "dynamodb-local", "package", "emulator")

#: The region :func:`client_kwargs` signs for unless told otherwise.
REGION = "us-east-1"
#: The only address the servers listen on and their URLs name.
HOST = "127.0.0.1"


class ServerUnavailable(Exception):
    """A server cannot be started on this machine (missing Java, jar or package).

    ``reason`` says what is missing and how to get it, fit to pass to
    ``pytest.skip``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClientKwargs(TypedDict):
    """Keyword arguments for ``aioboto3.Session().client("dynamodb", **kwargs)``.

    They suit ``session.resource("dynamodb", **kwargs)``, ``aiodax.client`` and
    ``aiodax.resource`` as well.
    """

    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str
    config: AioConfig


def client_kwargs(
    endpoint_url: str,
    *,
    region: str = REGION,
    max_attempts: int = 2,
    max_pool_connections: int = 10,
) -> ClientKwargs:
    """Client arguments for a local server: a fixed region and dummy credentials.

    ``max_attempts`` is botocore's ``total_max_attempts`` (2: one retry at most) and
    ``max_pool_connections`` the size of the client's connection pool.

    Explicit credentials keep botocore from looking for a real AWS identity, and
    empty proxy URLs keep an ``HTTP_PROXY`` of the environment from routing loopback
    traffic elsewhere (botocore only consults the environment when ``proxies`` is
    empty).
    """
    return ClientKwargs(
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(
            # One retry at most by default: a local server's 5xx (moto answers some
            # bad requests so) must not cost botocore's full backoff schedule.
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_pool_connections,
            proxies={"http": "", "https": ""},
        ),
    )


def string_key_table(table: str, hash_key: str = "pk", range_key: str | None = None) -> Any:
    """``CreateTable`` arguments for an on-demand table keyed by string attributes.

    Pass them as ``client.create_table(**string_key_table("orders"))``; the table
    has the partition key ``hash_key`` and, if given, the sort key ``range_key``.
    """
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    return {
        "TableName": table,
        "KeySchema": [{"AttributeName": name, "KeyType": role} for name, role in keys],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
        "BillingMode": "PAY_PER_REQUEST",
    }


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's server on a free loopback port in a thread; yield its URL.

    The URL is ``http://127.0.0.1:<port>``; the server stops, and its port closes,
    when the ``with`` block ends.  moto keeps its tables per process, not per
    server: every moto server this process starts serves the same tables.  Raises
    :class:`ServerUnavailable` when moto's server dependencies are missing.
    """
    try:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ServerUnavailable(
            f"moto's server is not installed ({exc}): pip install 'aiodax[demo]'"
        ) from exc

    class Handler(MotoRequestHandler):
        # Werkzeug always adds its own Server header and moto adds "server: amazon.com";
        # aiohttp's strict parser (used under -X dev or PYTHONASYNCIODEBUG=1) rejects the
        # duplicate (getmoto/moto#9930). Send the status line and Date only.
        def send_response(self, code: int, message: str | None = None) -> None:
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    # moto's request log goes to werkzeug's logger: one line per request otherwise.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server: Any = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    try:
        server._server.RequestHandlerClass = Handler  # read for each new request
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        # stop() ends the serve loop but leaves the listening socket open.
        if server._server is not None:
            server._server.server_close()


def dynamodb_local_dir(root: Path | None = None) -> Path:
    """The directory holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib/``.

    ``$AIODAX_DYNAMODB_LOCAL_DIR`` if set, else where ``scripts/fetch-dynamodb-local``
    puts it under ``root`` (default: the current directory).
    """
    configured = os.environ.get(DYNAMODB_LOCAL_DIR_ENV)
    if configured:
        return Path(configured)
    return (Path.cwd() if root is None else root) / DYNAMODB_LOCAL_SUBDIR


@contextlib.contextmanager
def dynamodb_local(
    emulator_dir: Path | None = None, *, startup_timeout: float = 120.0
) -> Iterator[str]:
    """Run DynamoDB Local (in memory) on a free port; yield its loopback URL.

    The server is started with ``-inMemory -sharedDb``: it keeps nothing on disk,
    and every access key and region sees the same tables.  ``emulator_dir``
    defaults to :func:`dynamodb_local_dir`; ``startup_timeout`` is how many seconds
    it may take to listen.  Raises
    :class:`ServerUnavailable` when Java or the jar is missing, and
    :class:`RuntimeError` (with the end of the server's log) when it fails to start.
    """
    # Absolute: the server runs in another working directory.
    emulator = (emulator_dir or dynamodb_local_dir()).resolve()
    jar = emulator / "DynamoDBLocal.jar"
    if not jar.is_file():
        raise ServerUnavailable(
            f"{jar} not found: run scripts/fetch-dynamodb-local or set {DYNAMODB_LOCAL_DIR_ENV}"
        )
    java = shutil.which("java")
    if java is None:
        raise ServerUnavailable("DynamoDB Local needs `java` on PATH")

    port = _free_port()
    command = [
        os.path.abspath(java),
        "-Xmx512m",
        f"-Djava.library.path={emulator / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    # A private working directory: it writes dynamodb-local-metadata.json into its cwd.
    with (
        tempfile.TemporaryDirectory(prefix="aiodax-dynamodb-local-") as workdir,
        open(Path(workdir) / "server.log", "w+b") as log,
    ):
        process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for_port(process, port, log, startup_timeout)
            yield f"http://{HOST}:{port}"
        finally:
            _stop(process)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(
    process: subprocess.Popen[bytes], port: int, log: IO[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"DynamoDB Local exited with status {process.returncode} during startup:\n"
                + _tail(log)
            )
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"DynamoDB Local did not listen on port {port} within {timeout:g} s:\n" + _tail(log)
            )
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.flush()
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - limit))
    return log.read().decode(errors="replace")

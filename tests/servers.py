"""Start DynamoDB-compatible servers on loopback for the test suite.

Plain context managers, usable outside pytest too (benchmarks, examples):

- :func:`moto_server` runs moto's server in a thread of this process.
- :func:`dynamodb_local` runs AWS's DynamoDB Local (Java) as a child process; fetch the
  jar with ``scripts/fetch-dynamodb-local``.

Both yield an ``http://127.0.0.1:<port>`` endpoint URL. ``moto.mock_aws`` cannot be used
instead: it does not intercept aiobotocore, so every client must get an explicit
``endpoint_url``.
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Literal, NoReturn, Protocol, TypeAlias, TypedDict

import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
DYNAMODB_LOCAL_DIR_ENV = "AIODAX_DYNAMODB_LOCAL_DIR"
DEFAULT_DYNAMODB_LOCAL_DIR = REPO_ROOT / ".cache" / "dynamodb-local" / "package" / "emulator"

REGION = "us-east-1"
_HOST = "127.0.0.1"


class ServerUnavailable(Exception):
    """A test server cannot be started on this machine (missing Java, jar or package)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClientKwargs(TypedDict):
    """Keyword arguments for ``aioboto3.Session().client("dynamodb", **kwargs)``."""

    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str
    config: Config


ScalarType: TypeAlias = Literal["S", "N", "B"]
Key: TypeAlias = tuple[str, ScalarType]
"""An attribute name and its scalar type, e.g. ``("pk", "S")``."""
Index: TypeAlias = tuple[str, Key, Key | None]
"""An index name, its hash key and optional range key."""


class MakeTable(Protocol):
    """The ``make_table`` fixture: create a table, return its name."""

    async def __call__(
        self,
        hash_key: Key = ("pk", "S"),
        range_key: Key | None = None,
        gsis: Sequence[Index] = (),
        lsis: Sequence[Index] = (),
    ) -> str: ...


def client_kwargs(endpoint_url: str) -> ClientKwargs:
    """Client arguments for a test server: fixed region and dummy credentials."""
    return ClientKwargs(
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # One retry at most: a server's 5xx (moto answers some bad requests so)
        # must not cost the suite botocore's full backoff schedule.
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}),
    )


def require(reason: str) -> NoReturn:
    """Skip the current test for a missing server; fail it instead when ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's server on a free loopback port in a thread; yield its URL."""
    try:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ServerUnavailable(f"moto server is not installed: {exc}") from exc

    class Handler(MotoRequestHandler):
        # Werkzeug always adds its own Server header and moto adds "server: amazon.com";
        # aiohttp's strict parser (used under -X dev or PYTHONASYNCIODEBUG=1) rejects the
        # duplicate (getmoto/moto#9930). Send the status line and Date only.
        def send_response(self, code: int, message: str | None = None) -> None:
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=_HOST, port=0, verbose=False)
    server.start()
    try:
        assert server._server is not None
        server._server.RequestHandlerClass = Handler  # a new handler per request
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        # stop() shuts the serve loop down but leaves the listening socket open.
        if server._server is not None:
            server._server.server_close()


def dynamodb_local_dir() -> Path:
    """The directory holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib/``."""
    configured = os.environ.get(DYNAMODB_LOCAL_DIR_ENV)
    return Path(configured) if configured else DEFAULT_DYNAMODB_LOCAL_DIR


@contextlib.contextmanager
def dynamodb_local(*, startup_timeout: float = 30.0) -> Iterator[str]:
    """Run DynamoDB Local (in memory) on a free port; yield its loopback URL.

    Raises :class:`ServerUnavailable` when Java or the jar is missing, and
    :class:`RuntimeError` (with the end of the server's log) when it fails to start.
    """
    emulator = dynamodb_local_dir().resolve()  # absolute: the server runs in another cwd
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
    # Run it in a private directory: it writes dynamodb-local-metadata.json into its cwd.
    with (
        tempfile.TemporaryDirectory(prefix="aiodax-dynamodb-local-") as workdir,
        open(Path(workdir) / "server.log", "w+b") as log,
    ):
        process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for_port(process, port, log, startup_timeout)
            yield f"http://{_HOST}:{port}"
        finally:
            _stop(process)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
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
            with socket.create_connection((_HOST, port), timeout=0.5):
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

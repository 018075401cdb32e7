"""The test suite's servers: aiodax's embedded ones, plus what only tests need.

The servers themselves (moto's server in a thread, AWS's DynamoDB Local as a child
process, both on 127.0.0.1) are aiodax's public ``aiodax.testing.servers``, shared
with the ``aiodax stampede`` command, the pytest plugin and the benchmarks.
``moto.mock_aws`` cannot stand in for them: it does not intercept aiobotocore, so
every client gets an explicit ``endpoint_url``.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, NoReturn, Protocol, TypeAlias

import pytest

import aiodax.testing.servers as aiodax_servers
from aiodax.testing.servers import (
    DYNAMODB_LOCAL_DIR_ENV,
    HOST,
    REGION,
    ClientKwargs,
    ServerUnavailable,
    client_kwargs,
    moto_server,
)

__all__ = [
    "DYNAMODB_LOCAL_DIR_ENV",
    "HOST",
    "REGION",
    "REPO_ROOT",
    "ClientKwargs",
    "Index",
    "Key",
    "MakeTable",
    "ScalarType",
    "ServerUnavailable",
    "client_kwargs",
    "dynamodb_local",
    "moto_in_child_process",
    "moto_server",
    "require",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

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


@contextlib.contextmanager
def dynamodb_local(*, startup_timeout: float = 120.0) -> Iterator[str]:
    """DynamoDB Local from ``$AIODAX_DYNAMODB_LOCAL_DIR`` or this checkout's ``.cache``."""
    with aiodax_servers.dynamodb_local(
        aiodax_servers.dynamodb_local_dir(REPO_ROOT), startup_timeout=startup_timeout
    ) as url:
        yield url


def require(reason: str) -> NoReturn:
    """Skip the current test for a missing server; fail it instead when ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason)


_MOTO_CHILD = """
import sys

from aiodax.testing.servers import moto_server

with moto_server() as url:
    print(url, flush=True)
    sys.stdin.read()  # until the parent closes it
"""


@contextlib.contextmanager
def moto_in_child_process(startup_timeout: float = 30.0) -> Iterator[str]:
    """``aiodax.testing.servers.moto_server`` in a child process: tables of its own."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _MOTO_CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            ready, _, _ = select.select([process.stdout], [], [], startup_timeout)
            url = process.stdout.readline().decode().strip() if ready else ""
            if not url.startswith(f"http://{HOST}:"):
                log.seek(0)
                raise RuntimeError(f"moto's child did not start:\n{log.read().decode()}")
            yield url
        finally:
            process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()

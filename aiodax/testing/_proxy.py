"""What aiodax's HTTP proxies in front of DynamoDB-compatible servers share
(``LaggingReplica``, ``CountingProxy``): reading a request's operation, checking an
upstream is on loopback, forwarding headers and answers byte for byte, and serving
on a 127.0.0.1 port with an aiohttp client session to the upstreams."""

from __future__ import annotations

import ipaddress
import json
import math
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from aiodax.testing.servers import HOST

_TARGET_PREFIX: Final = "DynamoDB_20120810."
_OPERATION: Final = re.compile(r"[A-Za-z]{1,64}")
#: Headers of one connection, not of the request (RFC 9110 §7.6.1), and those aiohttp
#: recomputes for the bytes it sends.
_NOT_FORWARDED: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    }
)


def operation_of(target: str | None) -> str | None:
    """The DynamoDB operation an ``X-Amz-Target`` header names, if it names one."""
    if target is None or not target.startswith(_TARGET_PREFIX):
        return None
    operation = target.removeprefix(_TARGET_PREFIX)
    return operation if _OPERATION.fullmatch(operation) else None


def parsed_json(data: bytes) -> object:
    """``data`` as JSON, or ``None`` if it is not JSON."""
    try:
        return json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        return None


def loopback_upstream(url: str, role: str) -> str:
    """``url`` as ``http://host:port`` if it names a server on loopback; else ``ValueError``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{role} must be a server's http://host:port URL, got {url!r}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        # Sending (and replaying) requests elsewhere than to a local test server would
        # be a mistake.
        raise ValueError(f"{role} must be a server on loopback (127.0.0.1), got {url!r}")
    if parts.port is None:
        raise ValueError(f"{role} must name its port, got {url!r}")
    return f"http://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class Answer:
    """An upstream's answer, as it is passed on."""

    status: int
    headers: CIMultiDict[str]
    body: bytes


def forwarded(headers: CIMultiDictProxy[str] | Mapping[str, str]) -> CIMultiDict[str]:
    """``headers`` less those of one connection."""
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _NOT_FORWARDED)


def response(answer: Answer) -> web.Response:
    return web.Response(status=answer.status, headers=answer.headers, body=answer.body)


@dataclass(frozen=True, slots=True)
class Serving:
    """A proxy serving: its client session to the upstreams, its runner, its URL."""

    session: aiohttp.ClientSession
    runner: web.AppRunner
    url: str


async def serve(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
    *,
    port: int,
    max_body: int,
    max_connections: int,
    timeout: float,  # noqa: ASYNC109 (the client session's, not this call's)
) -> Serving:
    """Serve every request with ``handle`` on 127.0.0.1:``port`` (0: a free one)."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections),
        timeout=aiohttp.ClientTimeout(total=timeout),
        # Answers pass byte for byte (their CRC32 header covers those bytes), and only
        # the client's own headers are sent.
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    app = web.Application(client_max_size=max_body)
    app.router.add_route("*", "/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        await session.close()
        raise
    return Serving(session, runner, f"http://{HOST}:{sock.getsockname()[1]}")


def seconds_option(value: float, name: str, *, positive: bool) -> float:
    """A proxy's option in seconds, checked: finite, ``>= 0`` (``> 0`` if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def count_option(value: int, name: str, *, low: int = 1, high: int | None = None) -> int:
    """A proxy's option that counts, checked: an ``int`` in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high if high is not None else '∞'}]")
    return value

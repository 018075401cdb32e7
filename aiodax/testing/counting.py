"""An HTTP proxy that counts the DynamoDB requests reaching a server, whoever sends them.

aiodax's own counters say what one cache believes it sent; a test of several
processes needs what the server got from all of them.  :class:`CountingProxy` sits on
127.0.0.1 in front of one DynamoDB-compatible server (moto's, DynamoDB Local),
passes every request and answer through unchanged (headers, body, signature), and
counts them by operation (the ``X-Amz-Target`` header) and by table::

    async with CountingProxy(moto_url) as proxy:
        # hand proxy.url to every process's client
        ...
        assert proxy.count("GetItem", table="orders") == 1

It runs in the event loop that enters it, so that loop must keep running while
clients talk to it (await, never block, between requests).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import aiohttp
from aiohttp import web

from aiodax.testing._proxy import (
    Answer,
    count_option,
    forwarded,
    loopback_upstream,
    operation_of,
    parsed_json,
    response,
    serve,
)

__all__ = ["CountedRequest", "CountingProxy"]

#: What a request without a DynamoDB ``X-Amz-Target`` is counted as.
UNKNOWN: Final = "(unknown)"


@dataclass(frozen=True, slots=True)
class CountedRequest:
    """One request the proxy passed on, as counted."""

    #: ``"GetItem"``…, or ``"(unknown)"`` without a DynamoDB ``X-Amz-Target``
    operation: str
    #: the tables it names (``TableName``, the keys of ``RequestItems``, the tables of
    #: ``TransactItems``; not those inside a PartiQL statement), sorted
    tables: tuple[str, ...]
    #: ``ConsistentRead: true`` in the request (for BatchGetItem: in any table's part)
    consistent: bool
    #: the HTTP status the server answered with (502: the server gave no answer)
    status: int
    #: the item keys it reads: 1 for a GetItem, a BatchGetItem's ``Keys`` of every
    #: table, a TransactGetItems' ``Get``s; 0 for anything else
    keys: int = 0


class CountingProxy:
    """A counting HTTP proxy on 127.0.0.1 in front of ``upstream`` (a loopback URL).

    :attr:`counts` holds requests by operation, :attr:`table_counts` by (operation,
    table); :attr:`log` the last ``log_size`` requests in order (:class:`CountedRequest`).
    A request is counted when it arrives, before the server answers it.
    ``timeout`` is seconds per request to the server, ``max_body`` bytes per request and
    per answer.  Use it as an async context manager; :attr:`url` is its endpoint inside.
    """

    def __init__(
        self,
        upstream: str,
        *,
        timeout: float = 30.0,
        max_body: int = 32 * 1024 * 1024,
        max_connections: int = 64,
        log_size: int = 10_000,
        port: int = 0,
    ) -> None:
        self._upstream = loopback_upstream(upstream, "upstream")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        count_option(max_body, "max_body")
        count_option(max_connections, "max_connections")
        count_option(log_size, "log_size", low=0)
        count_option(port, "port", low=0, high=65535)
        self._timeout = timeout
        self._max_body = max_body
        self._max_connections = max_connections
        self._port = port
        #: requests received, by operation
        self.counts: Counter[str] = Counter()
        #: requests received, by (operation, table); a request naming several tables
        #: counts once for each
        self.table_counts: Counter[tuple[str, str]] = Counter()
        #: the last requests, oldest first
        self.log: deque[CountedRequest] = deque(maxlen=log_size)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the endpoint URL to give clients."""
        if self._url is None or self._closing:
            raise RuntimeError("the CountingProxy is not running: use it with `async with`")
        return self._url

    def count(self, operation: str, *, table: str | None = None) -> int:
        """Requests of ``operation`` received so far (naming ``table``, if given)."""
        if table is None:
            return self.counts[operation]
        return self.table_counts[operation, table]

    def keys_read(self, *, table: str | None = None) -> int:
        """Item keys read so far by GetItem, BatchGetItem and TransactGetItems requests
        (of those still in :attr:`log`), naming ``table`` if given: one key a stampede
        coalesces well is read once, however many requests carried it."""
        return sum(r.keys for r in self.log if table is None or table in r.tables)

    def reset(self) -> None:
        """Forget every count and the log (between phases of a test)."""
        self.counts.clear()
        self.table_counts.clear()
        self.log.clear()

    async def __aenter__(self) -> Self:
        if self._session is not None or self._closing:
            raise RuntimeError("a CountingProxy runs once; make a new one")
        serving = await serve(
            self._handle,
            port=self._port,
            max_body=self._max_body,
            max_connections=self._max_connections,
            timeout=self._timeout,
        )
        self._session, self._runner, self._url = serving.session, serving.runner, serving.url
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        operation = operation_of(request.headers.get("X-Amz-Target")) or UNKNOWN
        tables, consistent, keys = _described(operation, parsed_json(body))
        self.counts[operation] += 1
        for table in tables:
            self.table_counts[operation, table] += 1
        status = 502
        try:
            response = await self._send(request, body)
            status = response.status
            return response
        finally:
            self.log.append(CountedRequest(operation, tables, consistent, status, keys))

    async def _send(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None  # only called while running
        try:
            async with self._session.request(
                request.method,
                self._upstream + request.raw_path,
                data=body,
                headers=forwarded(request.headers),
                allow_redirects=False,
            ) as answer:
                data = await answer.content.read(self._max_body + 1)
                if len(data) > self._max_body:
                    raise _TooLarge(f"answer larger than max_body={self._max_body} bytes")
                return response(Answer(answer.status, forwarded(answer.headers), data))
        except (aiohttp.ClientError, TimeoutError, _TooLarge) as error:
            return web.json_response(
                {"__type": "CountingProxyUpstreamError", "message": f"{self._upstream}: {error!r}"},
                status=502,
                content_type="application/x-amz-json-1.0",
            )


class _TooLarge(Exception):
    pass


def _described(operation: str, body: object) -> tuple[tuple[str, ...], bool, int]:
    """The tables a request names, whether it reads consistently, the keys it reads."""
    if not isinstance(body, dict):
        return (), False, 0
    tables: set[str] = set()
    consistent = body.get("ConsistentRead") is True
    keys = 1 if operation == "GetItem" else 0
    name = body.get("TableName")
    if isinstance(name, str):
        tables.add(name)
    requested = body.get("RequestItems")
    if isinstance(requested, dict):
        for table, part in requested.items():
            tables.add(str(table))
            if isinstance(part, dict) and part.get("ConsistentRead") is True:
                consistent = True
            if operation == "BatchGetItem" and isinstance(part, dict):
                read = part.get("Keys")
                keys += len(read) if isinstance(read, list) else 0
    transact = body.get("TransactItems")
    if isinstance(transact, list):
        for entry in transact:
            for kind, action in entry.items() if isinstance(entry, dict) else ():
                if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                    tables.add(action["TableName"])
                    if operation == "TransactGetItems" and kind == "Get":
                        keys += 1
    return tuple(sorted(tables)), consistent, keys

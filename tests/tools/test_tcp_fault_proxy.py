"""``aiodax.testing.TcpFaultProxy``: pass, blackhole, delay, refuse and reset on demand.

Most tests run the proxy in front of a small echo server of their own, which records
what reached it; one runs it in front of a real ``redis-server`` with redis-py.  A
"nothing arrives" check waits a short, fixed time for bytes that the mode withholds
for as long as it lasts, so it cannot pass by luck under load; nothing here asserts
how fast anything is.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aiodax.testing import RedisServer, TcpFaultProxy
from aiodax.testing.servers import ServerUnavailable
from tests import servers
from tests.support import until

#: How long a test waits for bytes that must not come (they are held, not late).
QUIET = 0.2


class Echo:
    """An echo server on 127.0.0.1 that records the bytes it received."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> Echo:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.received += data
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    async with Echo() as echo:
        yield echo


@pytest.fixture
async def proxy(echo: Echo) -> AsyncIterator[TcpFaultProxy]:
    async with TcpFaultProxy("127.0.0.1", echo.port) as proxy:
        yield proxy


@contextlib.asynccontextmanager
async def connection(
    proxy: TcpFaultProxy,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


async def read_exactly(reader: asyncio.StreamReader, size: int, within: float = 5.0) -> bytes:
    async with asyncio.timeout(within):
        return await reader.readexactly(size)


async def nothing_arrives(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(QUIET):
            await reader.read(1)
    except TimeoutError:
        return True
    return False


async def test_pass_forwards_both_ways(proxy: TcpFaultProxy, echo: Echo) -> None:
    async with connection(proxy) as (reader, writer):
        writer.write(b"hello")
        assert await read_exactly(reader, 5) == b"hello"
    assert proxy.mode == "pass"
    assert proxy.accepted == echo.connections == 1


async def test_blackhole_holds_bytes_on_an_open_socket_and_delivers_them_in_order_after(
    proxy: TcpFaultProxy, echo: Echo
) -> None:
    async with connection(proxy) as (reader, writer):
        writer.write(b"a")
        assert await read_exactly(reader, 1) == b"a"

        proxy.blackhole()
        writer.write(b"bc")
        writer.write(b"d")
        assert await nothing_arrives(reader)
        assert bytes(echo.received) == b"a"
        assert not reader.at_eof()
        assert proxy.open == 1

        proxy.pass_through()
        assert await read_exactly(reader, 3) == b"bcd"
        assert bytes(echo.received) == b"abcd"


async def test_blackhole_downstream_only_lets_requests_through_but_no_answers(
    proxy: TcpFaultProxy, echo: Echo
) -> None:
    async with connection(proxy) as (reader, writer):
        proxy.blackhole("downstream")
        writer.write(b"ping")
        await until(lambda: bytes(echo.received) == b"ping")
        assert await nothing_arrives(reader)

        proxy.pass_through()
        assert await read_exactly(reader, 4) == b"ping"


async def test_blackhole_holds_new_connections_silent_too(proxy: TcpFaultProxy, echo: Echo) -> None:
    proxy.blackhole()
    async with connection(proxy) as (reader, writer):
        writer.write(b"x")
        assert await nothing_arrives(reader)
        assert echo.received == b""
        proxy.pass_through()
        assert await read_exactly(reader, 1) == b"x"


async def test_delay_holds_each_chunk_at_least_that_long_and_keeps_the_order(
    proxy: TcpFaultProxy,
) -> None:
    async with connection(proxy) as (reader, writer):
        proxy.delay(150)
        sent = time.monotonic()
        for chunk in (b"1", b"2", b"3"):
            writer.write(chunk)
            await writer.drain()
        echoed = await read_exactly(reader, 3)
        # Through the proxy twice (there and back): a lower bound, which load only raises.
        assert time.monotonic() - sent >= 0.3
        assert echoed == b"123"

        proxy.pass_through()
        writer.write(b"4")
        assert await read_exactly(reader, 1) == b"4"


async def test_refuse_resets_new_connections_but_keeps_open_ones(
    proxy: TcpFaultProxy, echo: Echo
) -> None:
    async with connection(proxy) as (old_reader, old_writer):
        old_writer.write(b"a")
        assert await read_exactly(old_reader, 1) == b"a"

        proxy.refuse()
        async with connection(proxy) as (reader, writer):
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                writer.write(b"b")
                await writer.drain()
                await read_exactly(reader, 1)
        assert proxy.refused == 1
        assert echo.connections == 1

        old_writer.write(b"c")
        assert await read_exactly(old_reader, 1) == b"c"

        proxy.pass_through()
        async with connection(proxy) as (reader, writer):
            writer.write(b"d")
            assert await read_exactly(reader, 1) == b"d"


async def test_reset_all_sends_rst_to_every_open_connection(proxy: TcpFaultProxy) -> None:
    async with connection(proxy) as (first, first_writer), connection(proxy) as (second, _):
        first_writer.write(b"a")
        assert await read_exactly(first, 1) == b"a"
        await until(lambda: proxy.open == 2)

        assert proxy.reset_all() == 2

        for reader in (first, second):
            with pytest.raises(ConnectionResetError):
                await read_exactly(reader, 1)
        await until(lambda: proxy.open == 0)
        assert proxy.resets == 2
        assert proxy.mode == "pass"


async def test_leaving_closes_every_connection_even_a_blackholed_one(echo: Echo) -> None:
    async with TcpFaultProxy("127.0.0.1", echo.port) as proxy:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        proxy.blackhole()
        writer.write(b"held")
        await until(lambda: proxy.open == 1)
    # The autouse no_leaked_tasks fixture checks that no proxy task survived.
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = proxy.port


async def test_an_upstream_that_refuses_closes_the_client() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    async with TcpFaultProxy("127.0.0.1", port) as proxy, connection(proxy) as (reader, _):
        async with asyncio.timeout(5):
            assert await reader.read() == b""


def test_only_loopback_upstreams_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        TcpFaultProxy("10.0.0.1", 6379)
    with pytest.raises(ValueError, match="upstream_port"):
        TcpFaultProxy("127.0.0.1", 0)


async def test_bad_modes_are_refused_and_change_nothing(proxy: TcpFaultProxy) -> None:
    with pytest.raises(ValueError, match="direction"):
        proxy.blackhole("sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="milliseconds"):
        proxy.delay(-1)
    assert proxy.mode == "pass"


# In front of a real Redis -------------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        with RedisServer() as server:
            yield server
    except ServerUnavailable as exc:
        servers.require(exc.reason)


async def test_a_blackholed_redis_times_out_a_client_that_then_recovers(
    redis_server: RedisServer,
) -> None:
    async with TcpFaultProxy(redis_server.host, redis_server.port) as proxy:
        client = aioredis.Redis.from_url(proxy.url("redis"), socket_timeout=QUIET)
        try:
            assert await client.set("k", "v")

            proxy.blackhole()
            with pytest.raises(RedisTimeoutError):
                await client.get("k")

            proxy.pass_through()
            assert await client.get("k") == b"v"

            proxy.reset_all()
            proxy.refuse()
            with pytest.raises(RedisConnectionError):
                await client.get("k")
        finally:
            await client.aclose()

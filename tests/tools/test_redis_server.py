"""``aiodax.testing.RedisServer``: a private, empty redis-server that tests can kill."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from aiodax.testing import RedisServer
from aiodax.testing.servers import ServerUnavailable
from tests import servers


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        with RedisServer() as server:
            yield server
    except ServerUnavailable as exc:
        servers.require(exc.reason)


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


async def test_it_serves_on_a_free_loopback_port_not_the_shared_one(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.port != 6379
    assert await client.set("k", "v")
    assert await client.get("k") == b"v"
    config = await client.config_get("bind")
    assert config["bind"] == "127.0.0.1"


async def test_it_keeps_nothing_on_disk(client: aioredis.Redis) -> None:
    config = await client.config_get("save")
    assert config["save"] == ""
    assert (await client.config_get("appendonly"))["appendonly"] == "no"


async def test_kill_is_a_sigkill_and_loses_the_data(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        await client.set("k", "v")
        pid = redis_server.pid
        assert pid is not None

        redis_server.kill()

        assert not redis_server.running
        assert redis_server.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        with pytest.raises(RedisConnectionError):
            await client.get("k")
    finally:
        await client.aclose()


async def test_restart_comes_back_empty_on_the_same_port_with_a_new_run_id(
    redis_server: RedisServer,
) -> None:
    port = redis_server.port
    before = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        await before.set("k", "v")
        run_id = (await before.info("server"))["run_id"]
    finally:
        await before.aclose()

    await asyncio.to_thread(redis_server.restart)

    after = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        assert redis_server.port == port
        assert redis_server.starts == 2
        assert await after.get("k") is None
        assert (await after.info("server"))["run_id"] != run_id
    finally:
        await after.aclose()


def test_stop_removes_its_directory() -> None:
    try:
        server = RedisServer().start()
    except ServerUnavailable as exc:
        servers.require(exc.reason)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"CONFIG GET dir\r\n")
        reply = sock.recv(4096).decode()
    directory = Path(reply.split("\r\n")[-2])
    assert directory.is_dir()

    server.stop()

    assert not directory.exists()
    assert not server.running


def test_extra_arguments_reach_the_server() -> None:
    try:
        server = RedisServer(args=["--maxmemory", "12mb"]).start()
    except ServerUnavailable as exc:
        servers.require(exc.reason)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"CONFIG GET maxmemory\r\n")
            assert str(12 * 1024 * 1024) in sock.recv(4096).decode()
    finally:
        server.stop()


async def test_async_context_manager_starts_and_stops_off_the_loop() -> None:
    try:
        async with RedisServer() as server:
            client = aioredis.Redis.from_url(server.url, socket_timeout=5)
            try:
                assert await client.ping()
            finally:
                await client.aclose()
            process_running = server.running
    except ServerUnavailable as exc:
        servers.require(exc.reason)
    assert process_running
    assert not server.running


def test_a_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(ServerUnavailable, match="not-a-redis-server` not found on PATH"):
        RedisServer(binary="not-a-redis-server").start()


def test_a_taken_fixed_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = RedisServer(port=port)
        try:
            with pytest.raises(RuntimeError, match=f"could not bind port {port}"):
                server.start()
        except ServerUnavailable as exc:
            servers.require(exc.reason)
        finally:
            server.stop()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        RedisServer(port=70000)
    with pytest.raises(TypeError, match="args"):
        RedisServer(args="--maxmemory 1mb")
    with pytest.raises(RuntimeError, match="not been started"):
        _ = RedisServer().url

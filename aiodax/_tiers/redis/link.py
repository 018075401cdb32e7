"""The tier's connections to Redis, and whether Redis answers.

Two clients, so that the bus's blocking read never waits behind a command: one
connection that only listens (``listening``) and a bounded pool for everything
else (``commands``).  Neither retries on its own: a failed command is the tier's
to handle (the read goes to DynamoDB, the invalidation stays queued), and a
retry would only make a partitioned Redis slower to notice.  ``available`` is
the bus's verdict: the shared cache asks Redis only while it holds.

On a Redis Cluster (``RedisTier.cluster``) both are redis-py's cluster clients,
which route each command to the master of its keys' slot and find the new master
after a failover; every key of a namespace is in one slot (``keys``).
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any, Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .config import RedisTier
from .keys import Keys

#: Connections the command pool opens at most; past it a command waits for one
#: (``BlockingConnectionPool``: the default pool raises instead).
MAX_CONNECTIONS: Final = 32
#: What closing a connection to a Redis that is gone may raise.
CLOSE_FAILURES: Final = (RedisError, OSError)


class RedisLink:
    """One process's connections to the tier's Redis; see the module docstring."""

    __slots__ = ("_commands", "_listening", "available", "keys", "origin", "tier")

    def __init__(self, tier: RedisTier) -> None:
        self.tier = tier
        self.keys = Keys(tier.namespace)
        #: this process's name on the bus: its own messages are not applied again
        self.origin = secrets.token_hex(8)
        self.available = False
        self._commands: Any = None
        self._listening: Any = None

    @property
    def commands(self) -> Any:
        """A ``Redis`` (or ``RedisCluster``) client for everything but listening."""
        if self._commands is None:
            tier = self.tier
            if tier.cluster:
                self._commands = _cluster_client(tier, MAX_CONNECTIONS)
                return self._commands
            pool = BlockingConnectionPool.from_url(
                tier.url,
                max_connections=MAX_CONNECTIONS,
                timeout=tier.liveness,
                socket_timeout=tier.liveness,
                socket_connect_timeout=tier.liveness,
                retry=Retry(NoBackoff(), 0),
            )
            self._commands = Redis.from_pool(pool)  # owns it: closed with the client
        return self._commands

    @property
    def listening(self) -> Any:
        """The bus's own client: one connection, blocking reads."""
        if self._listening is None:
            tier = self.tier
            if tier.cluster:
                self._listening = _cluster_client(tier, 1)
                return self._listening
            # The bus's blocking read answers within its block time on a live link:
            # no answer within ``liveness`` is a dead or silent one.
            self._listening = Redis.from_url(
                tier.url,
                socket_timeout=tier.liveness,
                socket_connect_timeout=tier.liveness,
                retry=Retry(NoBackoff(), 0),
                single_connection_client=True,
            )
        return self._listening

    async def drop_listening(self) -> None:
        """Close the listening connection (it failed): the next read opens another.

        A cluster client is kept: it reconnects and finds the slot's new master
        itself, and a new one per failure would leave redis-py's nodes unclosed."""
        if self.tier.cluster:
            return
        client, self._listening = self._listening, None
        if client is not None:
            with contextlib.suppress(*CLOSE_FAILURES):
                await client.aclose()

    async def aclose(self) -> None:
        self.available = False
        for client in (self._listening, self._commands):
            if client is not None:
                await client.aclose()
        self._commands = self._listening = None


def _cluster_client(tier: RedisTier, connections: int) -> RedisCluster:
    return RedisCluster.from_url(
        tier.url,
        max_connections=connections,
        socket_timeout=tier.liveness,
        socket_connect_timeout=tier.liveness,
    )

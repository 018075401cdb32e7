"""How a load waiting for another process's lease learns that it is done: the
holder's ``FILL`` or ``RELEASE`` publishes the lease's digest on the namespace's
``filled`` channel, and one pub/sub connection per process wakes the futures
waiting for it.  A wake-up lost (a reconnection) costs a waiter one poll
(``l2.POLL``), never an answer.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .bus import BACKOFF, REDIS_FAILURES
from .commands import text
from .link import CLOSE_FAILURES, RedisLink


class Wakeups:
    """The futures of the loads waiting for a lease's holder, by the lease's digest."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    def expect(self, digest: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(digest, set()).add(future)
        return future

    def forget(self, digest: str, future: asyncio.Future[None]) -> None:
        waiting = self._waiting.get(digest)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._waiting[digest]

    def wake(self, digest: str) -> None:
        for future in self._waiting.pop(digest, ()):
            if not future.done():
                future.set_result(None)


async def listen_for_fills(link: RedisLink, wakeups: Wakeups) -> None:
    """Wake the waiters of each lease its holder reports done, over one pub/sub
    connection; reconnects until cancelled.  On a cluster the channel reaches every
    node: any node's connection hears it."""
    tier = link.tier
    delay = BACKOFF[0]
    while True:
        client = Redis.from_url(
            tier.url,
            socket_timeout=tier.liveness,
            socket_connect_timeout=tier.liveness,
            retry=Retry(NoBackoff(), 0),
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(link.keys.filled)
            delay = BACKOFF[0]
            quiet = 0
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=tier.liveness
                )
                if message is None:
                    # A silent link may be a dead one: a ping must bring a reply.
                    quiet += 1
                    if quiet > 1:
                        break
                    await pubsub.ping()
                    continue
                quiet = 0
                if message["type"] == "message":
                    wakeups.wake(text(message["data"]))
        except REDIS_FAILURES:
            pass  # the waiters poll meanwhile
        finally:
            with contextlib.suppress(*CLOSE_FAILURES):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed since redis-py 8.2
            with contextlib.suppress(*CLOSE_FAILURES):
                await client.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF[1])

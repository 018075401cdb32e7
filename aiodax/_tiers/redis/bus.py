"""``StreamBus``: invalidations between the processes of a namespace, over a Redis Stream.

**Sending.**  A drop is queued in the *outbox* at once (``publish`` never waits or
fails) and a sender task appends it to the stream, with the generations that void
every shared copy of what it drops, in one script (``scripts.PUBLISH``).  A write
awaits ``flush`` before it is acknowledged, for at most ``timeout``: a write is
acknowledged when DynamoDB acknowledged it, whatever Redis does.  While Redis is
unreachable the outbox keeps what is queued (up to ``outbox_limit``, past which it
is merged into whole-table drops) and sends it on reconnect.

**Listening.**  One connection reads the stream (``XREAD BLOCK``); every reply,
empty or not, proves the link alive.  Each message carries the next number of the
namespace's ``seq``: a number that is not the last one plus one means messages were
lost (the stream was trimmed past this process, or Redis failed over and lost its
tail), and so does a namespace ``epoch`` other than the one this process first
met (Redis restarted empty).  Then this process drops its whole cache, fenced
like any drop; a short disconnect with nothing lost replays the messages and costs
nothing.  A process's own messages are skipped, so that they do not drop its own
write-through.

**Degraded.**  While Redis does not answer (refused, reset, or silent for
``liveness`` seconds) the process cannot hear the others' writes: it keeps each
entry at most ``degraded_ttl`` seconds more (``TierHost.degrade``) and keeps
serving, and the shared cache is not asked (``RedisLink.available``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from redis.exceptions import RedisError

from ..._log import LOG as _LOG
from ..._rules.wire import ItemKey
from .. import Invalidation, TierHost
from .codec import decode, encode
from .keys import key_digest
from .link import RedisLink
from .scripts import CONNECT, PUBLISH
from .watermarks import WatermarkWatch

#: How long one blocking read waits for a message (ms): the bus's idle heartbeat.
BLOCK_MS: Final = 100
#: Messages one read brings at most, and one script sends at most.
BATCH: Final = 256
#: Lifetime of the generations a drop moves (ms): longer than any shared copy lives
#: in practice; a copy outliving its generation key is a miss, never a wrong answer.
GENERATION_LIFETIME_MS: Final = 24 * 3600 * 1000
#: How many ``liveness`` periods one attempt to send the outbox may take.
SEND_ATTEMPTS: Final = 5
#: Reconnection backoff (s): doubling from the first to the last.
BACKOFF: Final = (0.05, 1.0)
#: What the network and the client raise when Redis is not there.
REDIS_FAILURES: Final = (RedisError, OSError, TimeoutError, EOFError)


CONNECTED: Final = "connected"
DEGRADED: Final = "degraded"
STARTING: Final = "starting"
CLOSED: Final = "closed"


class StreamBus:
    """The invalidation bus over Redis; see the module docstring."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._host: TierHost | None = None
        self.state = STARTING
        #: (number, invalidation) waiting to be sent, oldest first
        self._outbox: deque[tuple[int, Invalidation]] = deque()
        self._queued = 0  # numbers given to published invalidations
        self._sent = 0  # every invalidation numbered up to this has gone out
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: the stream bounds' watch (``RedisTier.stream_bounds``), if any
        self._watch = WatermarkWatch(link) if link.tier.stream_bounds else None
        self._watching: asyncio.Task[None] | None = None
        self._epoch: bytes | None = None
        self._last_id = b"0-0"
        self._last_seq = 0
        self.messages_in = 0
        self.messages_out = 0
        self.flushes = 0
        self.bad_messages = 0
        self.degraded_periods = 0
        self.merged = 0
        self.failed_sends = 0

    # ------------------------------------------------------------- sending

    def publish(self, invalidation: Invalidation) -> None:
        if self.state == CLOSED:
            return
        outbox = self._outbox
        if len(outbox) >= self._link.tier.outbox_limit:
            self._merge()
        self._queued += 1
        outbox.append((self._queued, invalidation))
        self._wake.set()

    def _merge(self) -> None:
        """Make room: what is queued becomes one drop per table (or of everything)."""
        outbox = self._outbox
        number = outbox[-1][0]
        tables = {invalidation.table for _, invalidation in outbox}
        self.merged += len(outbox)
        outbox.clear()
        if None in tables or len(tables) >= self._link.tier.outbox_limit // 2:
            outbox.append((number, Invalidation(None)))
        else:
            named = sorted(table for table in tables if table is not None)
            outbox.extend((number, Invalidation(table)) for table in named)

    @property
    def unsent(self) -> int:
        """Invalidations published here that Redis has not taken yet: until it has,
        the shared copies of what they drop look valid (``l2``)."""
        return self._queued - self._sent

    async def flush(self) -> None:
        target = self._queued
        if self._sent >= target or self.state != CONNECTED:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._link.tier.timeout):
                while self._sent < target:
                    await self._progress.wait()

    async def _send_forever(self) -> None:
        link = self._link
        keys, tier = link.keys, link.tier
        script = link.commands.register_script(PUBLISH)
        delay = BACKOFF[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch = [self._outbox[at] for at in range(min(BATCH, len(self._outbox)))]
                args: list[Any] = [keys.prefix, tier.stream_length, GENERATION_LIFETIME_MS]
                for _, invalidation in batch:
                    args.extend(_script_args(link.origin, invalidation))
                try:
                    # A slow Redis may need seconds for a new connection and the
                    # script's first load: an attempt cut shorter would throw its
                    # connection away and start over, and never get through.
                    async with asyncio.timeout(SEND_ATTEMPTS * tier.liveness):
                        await script(keys=[keys.bus, keys.seq, keys.everything], args=args)
                except REDIS_FAILURES as error:
                    # Kept for the next attempt; the listener notices an outage.
                    self.failed_sends += 1
                    _LOG.warning(
                        "aiodax: %d invalidation(s) not sent to Redis yet (%s): the other "
                        "processes serve what they name until they are",
                        len(self._outbox),
                        error or type(error).__name__,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF[1])
                    continue
                delay = BACKOFF[0]
                self.messages_out += len(batch)
                last = batch[-1][0]
                outbox = self._outbox
                while outbox and outbox[0][0] <= last:
                    outbox.popleft()
                self._sent = last
                self._progress.set()
                self._progress = asyncio.Event()

    # ----------------------------------------------------------- listening

    async def start(self, host: TierHost) -> None:
        self._host = host
        connected = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen_forever(connected), name="aiodax redis bus"),
            asyncio.create_task(self._send_forever(), name="aiodax redis outbox"),
        ]
        if self._watch is not None:
            self._watching = asyncio.create_task(
                self._watch.run(host), name="aiodax stream watermarks"
            )
        # The first answer (or its absence) settles the state the cache starts in.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._link.tier.liveness):
                await connected.wait()
        if self.state == STARTING:
            self._degrade("no answer within liveness")

    async def _listen_forever(self, connected: asyncio.Event) -> None:
        link = self._link
        keys = link.keys
        liveness = link.tier.liveness
        loop = asyncio.get_running_loop()
        delay = BACKOFF[0]
        #: when Redis stopped answering (``None``: it answers)
        outage_since: float | None = None
        while self.state != CLOSED:
            try:
                client = link.listening
                await self._connect(client)
                self._set_connected()
                connected.set()
                outage_since = None
                delay = BACKOFF[0]
                # Ends by itself within a block time of ``aclose``: cancelling a
                # read in progress could leave redis-py's connection mid-reply.
                while self.state != CLOSED:
                    asked = loop.time()
                    reply: Any = await client.xread(
                        {keys.bus: self._last_id}, count=BATCH, block=BLOCK_MS
                    )
                    if loop.time() - asked > liveness + BLOCK_MS / 1000:
                        # The client waited out a failover (or a Redis that slow):
                        # deaf for longer than the bound, as if it had been gone.
                        self._degrade("no answer within liveness")
                        self._set_connected()
                    for _, entries in reply or ():
                        self._receive(entries)
            except REDIS_FAILURES as error:
                if self.state == CLOSED:
                    return
                now = loop.time()
                if isinstance(error, TimeoutError):
                    # Silent for ``liveness`` already: gone since then.
                    outage_since = now - liveness
                elif outage_since is None:
                    outage_since = now
                # A reconnection within ``liveness`` replays what was missed and
                # costs nothing; past it, this process cannot vouch for its entries.
                if self.state == STARTING or now - outage_since >= liveness:
                    self._degrade(error)
                    connected.set()
                await link.drop_listening()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])

    async def _connect(self, client: Any) -> None:
        """Learn where the stream stands, and whether anything was lost meanwhile."""
        keys = self._link.keys
        epoch, last, seq, following = await client.eval(
            CONNECT, 3, keys.epoch, keys.bus, keys.seq, secrets.token_hex(8), self._last_id
        )
        if self._epoch is None:
            self._epoch = epoch
        elif epoch != self._epoch:
            # Redis lost its data (a restart, a failover to an empty replica):
            # whatever was sent while this process was away is gone.
            self._epoch = epoch
            self._missed("Redis lost its data (a new epoch)")
        elif int(seq or 0) > self._last_seq and following != self._last_seq + 1:
            # Messages were sent meanwhile, and the next one is no longer in the
            # stream (trimmed): what it said is lost.
            self._missed(f"message {self._last_seq + 1} was trimmed away")
        else:
            return  # the stream is where it was: read on from the last message
        self._last_id = last[0] if last else b"0-0"
        self._last_seq = int(seq or 0)

    def _receive(self, entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> None:
        host = self._host
        assert host is not None
        origin = self._link.origin
        for entry_id, fields in entries:
            self._last_id = entry_id
            try:
                seq = int(fields[b"s"])
            except (KeyError, ValueError):
                seq = -1
            if seq != self._last_seq + 1:
                self._missed(f"message {seq} after {self._last_seq}")
            self._last_seq = seq
            decoded = decode(fields.get(b"m"))
            if decoded is None:
                # What it would have dropped is unknown: drop everything.
                self.bad_messages += 1
                self._missed(f"message {entry_id!r} does not decode")
                continue
            sender, invalidation = decoded
            if sender == origin:
                continue
            self.messages_in += 1
            host.apply(invalidation)

    def _missed(self, why: str) -> None:
        assert self._host is not None
        _LOG.warning("aiodax: the Redis bus may have lost messages (%s): dropping the cache", why)
        self.flushes += 1
        self._host.apply(Invalidation(None))

    def _set_connected(self) -> None:
        if self.state != CONNECTED:
            if self.state == DEGRADED:
                _LOG.info("aiodax: the Redis tier is back: %s", self._link.tier)
            self.state = CONNECTED
            self._link.available = True
            assert self._host is not None
            self._host.degrade(None)
            self._wake.set()  # what the outbox kept goes out now

    def _degrade(self, why: object) -> None:
        if self.state in (DEGRADED, CLOSED):
            return
        _LOG.warning(
            "aiodax: the Redis tier is unreachable (%s): entries live at most %s s",
            why or type(why).__name__,
            self._link.tier.degraded_ttl,
        )
        self.state = DEGRADED
        self._link.available = False
        self.degraded_periods += 1
        assert self._host is not None
        self._host.degrade(self._link.tier.degraded_ttl)

    # ------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        if self.state == CONNECTED and self._outbox:
            await self.flush()
        self.state = CLOSED
        watching, self._watching = self._watching, None
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        if not self._tasks:
            await self._link.aclose()
            return
        listener, sender = self._tasks
        self._tasks = []
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        # The listener stops after its read; a silent Redis keeps that up to
        # ``liveness``, past which it is cut short.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._link.tier.liveness + BLOCK_MS / 1000):
                await asyncio.shield(listener)
        if not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await self._link.aclose()

    def stats(self) -> dict[str, Any]:
        watched = self._watch.stats() if self._watch is not None else {}
        return {
            **watched,
            "BusState": self.state,
            "BusMessagesIn": self.messages_in,
            "BusMessagesOut": self.messages_out,
            "BusFlushes": self.flushes,
            "BusBadMessages": self.bad_messages,
            "OutboxLength": len(self._outbox),
            "OutboxMerged": self.merged,
            "OutboxFailedSends": self.failed_sends,
            "DegradedPeriods": self.degraded_periods,
        }


def _script_args(origin: str, invalidation: Invalidation) -> tuple[str, str, bytes]:
    table, key = invalidation.table, invalidation.key
    return (table or "", _item_name(key), encode(origin, invalidation))


def _item_name(key: ItemKey | None) -> str:
    return "" if key is None else key_digest(key)

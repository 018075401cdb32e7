"""``RedisL2``: the miss path shared by the processes of a namespace, a shared copy of
each answer (the L2) and a lease per miss, so that one process reads DynamoDB.

**Copies.**  A GetItem's copy is a field of its item's hash ``i:<table>:<key>``,
one field per site and request (a projection is another request); a Query or
Scan page's is the string ``q:<table>:<request>`` (``keys``).  Each is an
``envelope``: versioned msgpack, at most ``max_value_bytes``, recording the load
it answers, the generations it was read under and when DynamoDB gave it (Redis's
clock).  A copy lives in Redis as long as this process keeps the answer
(``Load.ttl``), counted from DynamoDB's read, so that every process's entry of it
expires together.  Found, it is checked: the right shape and version, an answer
to exactly this load, its generations unchanged (a drop since moves them: only
the bus's ``PUBLISH`` script does, and deletes item hashes); anything else is a
miss, counted, never an answer.  Nothing but a lease's fill sets a copy: writes
only move generations.

**Leases** (memcache's).  One script, ``GET_OR_LEASE``, answers a miss with the
copy, or the lease (``l:<request>``, ``SET NX PX lease_time``, a random token), or
the time the holder has left.  The holder reads DynamoDB, renewing its lease every
``lease_time / 3`` while the read runs, and ``FILL`` stores the copy only if the
lease is still its own and the generations it was taken under have not moved: a
drop between the lease and the fill refuses the fill (the stale set; a fencing
token kept in the store).  The fill (or the holder's release, when its read
failed or was cancelled) wakes the waiters through the ``filled`` channel: one
pub/sub connection per process, the waiters' futures by digest, and a poll every
``min(pttl, 50 ms)`` for a wake-up lost.  A holder killed outright costs at most
``lease_time``: its lease expires and a waiter takes it.  An answer that is not
shared (bigger than ``max_value_bytes``, not kept here, not encodable) is stored
as a *refusal*: whoever finds it reads DynamoDB at once rather than queue for the
lease one after another.

**What a copy may answer.**  A fenced load (``Load.fenced``) takes only a copy read
with ``ConsistentRead`` under the current generations: its lease came after every
drop that reached Redis, so its read saw every write before them.  A refresh
(``Load.refresh``) takes only a copy read after it began.  While this process's
bus holds drops Redis has not taken yet, the copies in Redis do not know of them:
every load goes straight to DynamoDB.

**BatchGetItem** loads (``Load.table`` is ``None``) go straight to DynamoDB: a
batch's keys share neither copies nor leases (each key a GetItem would read is
shared; a batch costs one request for all its missing keys anyway).

**Redis fails, the read does not.**  Every Redis step has ``RedisTier.timeout``;
a Redis error or timeout sends the load to DynamoDB.  While the bus says Redis is
gone (``RedisLink.available``), and for ``BREAKER_OPEN`` seconds after
``BREAKER_TIMEOUTS`` timeouts in a row, Redis is not asked at all.  DynamoDB's
errors reach the caller unchanged and are never stored; a cancelled holder gives
its lease up in the background (bounded by the timeout) or lets it expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from .. import Load, Loaded, TierHost
from .bus import BACKOFF, REDIS_FAILURES, StreamBus
from .envelope import (
    FIELDS,
    Envelope,
    Generations,
    decode,
    encode,
    shared_answer,
    ttl_ms,
    with_metadata,
)
from .keys import key_digest, shared_request_digest
from .link import CLOSE_FAILURES, RedisLink
from .scripts import FILL, GET_OR_LEASE, RELEASE, RENEW

#: ``GET_OR_LEASE``'s answers.
COPY: Final = 1
LEASED: Final = 2
HELD: Final = 3
#: The longest a waiter sleeps before asking again (s), should its wake-up be lost.
POLL: Final = 0.05
#: Redis timeouts in a row that make the tier stop asking it, and for how long (s).
BREAKER_TIMEOUTS: Final = 5
BREAKER_OPEN: Final = 5.0


class _Unavailable(Exception):
    """A Redis step failed or timed out: the load goes to DynamoDB."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one load's copy, lease and generations are: ``GET_OR_LEASE``'s keys."""

    keys: list[str]  # the copy, the lease, g:all, g:t:<table>, g:i:... or g:q:<table>
    field: str  # the copy's field in an item's hash, "" for a page
    digest: str  # the request's name: the lease's, the wake-up's


@dataclass(slots=True)
class _Breaker:
    """Stops asking a Redis that keeps timing out (``BREAKER_*``)."""

    clock: Callable[[], float] = time.monotonic
    timeouts: int = 0
    open_until: float = 0.0

    def allows(self) -> bool:
        return self.clock() >= self.open_until

    def timed_out(self) -> None:
        self.timeouts += 1
        if self.timeouts >= BREAKER_TIMEOUTS:
            self.timeouts = 0
            self.open_until = self.clock() + BREAKER_OPEN

    def answered(self) -> None:
        self.timeouts = 0


class _Wakeups:
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


class RedisL2:
    """The shared miss path over Redis (a ``SharedTier``); see the module docstring."""

    def __init__(self, link: RedisLink, bus: StreamBus) -> None:
        self._link = link
        self._bus = bus
        self._breaker = _Breaker()
        self._wakeups = _Wakeups()
        self._scripts: dict[str, AsyncScript] = {}
        self._listener: asyncio.Task[None] | None = None
        #: lease releases of cancelled holders, finished (bounded) by ``aclose``
        self._releases: set[asyncio.Task[None]] = set()
        self._closed = False
        self.hits = 0
        self.misses = 0
        self.rejected = 0
        self.stores = 0
        self.stale_fills = 0
        self.too_big = 0
        self.lease_waits = 0
        self.takeovers = 0
        self.errors = 0

    # ------------------------------------------------------------- the miss

    async def load(self, load: Load, fetch: Callable[[], Awaitable[Any]]) -> Loaded:
        target = self._target(load) if self._may_ask() else None
        if target is None:
            return Loaded(await fetch())
        token = secrets.token_hex(8)
        mode = "lease" if load.refresh else "read"
        not_before: int | None = None  # a refresh takes no copy read before it began
        waited = False
        while True:
            if not self._may_ask():
                return Loaded(await fetch())  # Redis went away meanwhile
            # Expected before asking: a fill announced between the answer and the
            # wait still wakes this load.
            wakeup = self._wakeups.expect(target.digest)
            try:
                kind, now, generations, payload = await self._get_or_lease(target, token, mode)
                if not_before is None:
                    not_before = now if load.refresh else 0
                if kind == HELD:
                    if not waited:
                        self.lease_waits += 1
                        waited = True
                    await _wait(wakeup, min(POLL, max(int(payload), 1) / 1000))
                    mode = "read"
                    continue
            except _Unavailable:
                return Loaded(await fetch())
            finally:
                self._wakeups.forget(target.digest, wakeup)
            if kind == LEASED:
                self.misses += 1
                self.takeovers += waited
                return await self._hold(load, target, token, generations, now, fetch)
            envelope = self._copy_of(load, target, payload, generations, now)
            if envelope is not None:
                if envelope.answer is None:  # a refusal: ask DynamoDB, do not queue
                    self.misses += 1
                    return Loaded(await fetch())
                if envelope.stored_at >= not_before and (envelope.consistent or not load.fenced):
                    self.hits += 1
                    return Loaded(with_metadata(envelope.answer), envelope.age(now))
            mode = "lease"  # not a copy this load may take: read DynamoDB instead

    def _may_ask(self) -> bool:
        return (
            not self._closed
            and self._link.available
            and self._bus.unsent == 0
            and self._breaker.allows()
        )

    def _target(self, load: Load) -> _Target | None:
        """Where ``load``'s copy and lease are; ``None``: it is not shared."""
        table, operation = load.table, load.operation
        if table is None or operation not in FIELDS:
            return None
        keys = self._link.keys
        try:
            digest = shared_request_digest(load.site, operation, load.request)
            if operation == "get_item":
                if load.key is None:
                    return None
                item = key_digest(load.key)
                copy, field = keys.item(table, item), digest
                generation = keys.item_generation(table, item)
            else:
                copy, field = keys.page(table, digest), ""
                generation = keys.page_generation(table)
        except (TypeError, ValueError):
            return None  # a request msgpack cannot name (not wire format): not shared
        return _Target(
            [
                copy,
                keys.lease(digest),
                keys.everything,
                keys.table_generation(table),
                generation,
            ],
            field,
            digest,
        )

    def _copy_of(
        self, load: Load, target: _Target, payload: Any, generations: Generations, now: int
    ) -> Envelope | None:
        """The copy Redis gave for ``load``, if it is one of it, unexpired and read
        under the ``generations`` of ``now``; else counted as rejected."""
        envelope = decode(payload, self._link.tier.max_value_bytes)
        if (
            envelope is None
            or not envelope.answers(
                load.site, load.operation, load.table or "", load.key, target.digest, generations
            )
            or envelope.remaining_ms(now) <= 0
        ):
            self.rejected += 1
            return None
        return envelope

    # ------------------------------------------------------------ the holder

    async def _hold(
        self,
        load: Load,
        target: _Target,
        token: str,
        generations: Generations,
        leased_at: int,
        fetch: Callable[[], Awaitable[Any]],
    ) -> Loaded:
        """Read DynamoDB under the lease, renewing it meanwhile, and fill the copy."""
        started = time.monotonic()
        renewal = asyncio.create_task(self._renew(target, token), name="aiodax redis lease renewal")
        try:
            answer = await fetch()
        except BaseException:
            # DynamoDB's error (never stored) or a cancellation: the waiters read
            # DynamoDB themselves; the error goes on unchanged.
            self._release_later(target, token)
            raise
        finally:
            renewal.cancel()
            await asyncio.wait((renewal,))
        # When DynamoDB answered, on Redis's clock: the lease's time and the read's.
        stored_at = leased_at + int((time.monotonic() - started) * 1000)
        try:
            await self._fill(load, target, token, generations, stored_at, answer)
        except asyncio.CancelledError:
            self._release_later(target, token)
            raise
        except _Unavailable:
            pass  # the lease expires; the answer is this caller's all the same
        return Loaded(answer)

    async def _fill(
        self,
        load: Load,
        target: _Target,
        token: str,
        generations: Generations,
        stored_at: int,
        answer: Any,
    ) -> None:
        missing = load.operation == "get_item" and answer.get("Item") is None
        ttl = ttl_ms(load.negative_ttl if missing else load.ttl)
        envelope = Envelope(
            load.site,
            load.operation,
            load.table or "",
            load.key,
            target.digest,
            generations,
            stored_at,
            ttl,
            load.request.get("ConsistentRead") is True,
            shared_answer(load.operation, answer),
        )
        copy = None
        if ttl > 0:
            with contextlib.suppress(TypeError, ValueError):
                copy = encode(envelope)
            if copy is not None and len(copy) > self._link.tier.max_value_bytes:
                self.too_big += 1
                copy = None
        if copy is None:
            # Not shared: a refusal, for as long as the answer would have lived (or
            # a lease's time), tells the others to read DynamoDB without queueing.
            ttl = ttl or self._lease_ms
            copy = encode(_refusal(envelope, ttl))
        stored = await self._run(
            FILL,
            target.keys,
            [
                target.field,
                token,
                *generations,
                copy,
                ttl,
                self._link.keys.filled,
                target.digest,
            ],
        )
        if stored == 1:
            self.stores += 1
        else:
            self.stale_fills += 1

    async def _renew(self, target: _Target, token: str) -> None:
        lease = target.keys[1]
        while True:
            await asyncio.sleep(self._link.tier.lease_time / 3)
            try:
                if not await self._run(RENEW, [lease], [token, self._lease_ms]):
                    return  # no longer this holder's: the fill will be refused
            except _Unavailable:
                continue

    def _release_later(self, target: _Target, token: str) -> None:
        """Give the lease up without waiting for Redis (a cancelled holder must not)."""
        if self._closed or not self._link.available:
            return  # it expires within lease_time

        async def release() -> None:
            with contextlib.suppress(_Unavailable):
                await self._run(
                    RELEASE, [target.keys[1]], [token, self._link.keys.filled, target.digest]
                )

        task = asyncio.create_task(release(), name="aiodax redis lease release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    # ----------------------------------------------------------------- Redis

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self._link.tier.lease_time * 1000))

    async def _get_or_lease(
        self, target: _Target, token: str, mode: str
    ) -> tuple[int, int, Generations, Any]:
        reply = await self._run(
            GET_OR_LEASE, target.keys, [target.field, token, self._lease_ms, mode]
        )
        try:
            kind, now, raw, payload = reply
            generations = (_text(raw[0]), _text(raw[1]), _text(raw[2]))
            return int(kind), int(now), generations, payload
        except (TypeError, ValueError, IndexError) as error:
            self.errors += 1
            raise _Unavailable from error

    async def _run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """One script, within ``RedisTier.timeout``; a failure is ``_Unavailable``."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._link.commands.register_script(source)
        try:
            async with asyncio.timeout(self._link.tier.timeout):
                reply = await script(keys=keys, args=args)
        except TimeoutError as error:  # before REDIS_FAILURES: it is an OSError too
            self.errors += 1
            self._breaker.timed_out()
            raise _Unavailable from error
        except REDIS_FAILURES as error:
            self.errors += 1
            raise _Unavailable from error
        self._breaker.answered()
        return reply

    # ------------------------------------------------------------ wake-ups

    async def _listen_for_fills(self) -> None:
        """Wake the waiters of each lease its holder reports done (``FILL``,
        ``RELEASE``), over one pub/sub connection; reconnects while the tier runs."""
        tier = self._link.tier
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
                await pubsub.subscribe(self._link.keys.filled)
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
                        self._wakeups.wake(_text(message["data"]))
            except REDIS_FAILURES:
                pass  # the waiters poll meanwhile
            finally:
                with contextlib.suppress(*CLOSE_FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py's
                with contextlib.suppress(*CLOSE_FAILURES):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: TierHost) -> None:
        self._listener = asyncio.create_task(
            self._listen_for_fills(), name="aiodax redis lease wake-ups"
        )

    async def aclose(self) -> None:
        """Stop listening and finish the lease releases (each within the timeout);
        before the bus closes the link they use."""
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.wait((listener,))
        if self._releases:
            await asyncio.wait(tuple(self._releases))

    def stats(self) -> dict[str, Any]:
        return {
            "L2Hits": self.hits,
            "L2Misses": self.misses,
            "L2Rejected": self.rejected,
            "L2Stores": self.stores,
            "L2StaleFills": self.stale_fills,
            "L2TooBig": self.too_big,
            "LeaseWaits": self.lease_waits,
            "LeaseTakeovers": self.takeovers,
            "L2Errors": self.errors,
        }


async def _wait(wakeup: asyncio.Future[None], delay: float) -> None:
    """Until ``wakeup`` (the lease's holder is done), or ``delay`` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await wakeup


def _refusal(envelope: Envelope, ttl: int) -> Envelope:
    return Envelope(
        envelope.site,
        envelope.operation,
        envelope.table,
        envelope.key,
        envelope.request,
        envelope.generations,
        envelope.stored_at,
        ttl,
        envelope.consistent,
        None,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

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

**BatchGetItem**, key by key (``Load.parts``): each key is the GetItem that reads
it, with that GetItem's copy and lease.  One script call asks for all of them; the
keys neither answered by a copy nor held by another process go out as one
BatchGetItem of just those keys (``Fetch``), whose answer fills their copies; the
keys another process holds are waited for and asked again.  The answer is one
BatchGetItem answer, its age the oldest copy's.

**What a copy may answer.**  A fenced load (``Load.fenced``) takes only a copy read
with ``ConsistentRead`` under the current generations: its lease came after every
drop that reached Redis, so its read saw every write before them.  A refresh
(``Load.refresh``) takes only a copy read after it began.  A lease taken inside the
fence of a drop (its generations say when they moved) reads consistently, or shares
its answer only until the fence ends (``misses.in_fence``): the drop may be another
process's whose message has not reached this one yet, and a lagging replica's answer
must not become every process's copy for a TTL.  While this process's
bus holds drops Redis has not taken yet, the copies in Redis do not know of them:
every load goes straight to DynamoDB.

**Redis fails, the read does not.**  Every Redis step has ``RedisTier.timeout``;
a Redis error or timeout sends what is not answered yet to DynamoDB.  While the bus
says Redis is gone (``RedisLink.available``), and for ``BREAKER_OPEN`` seconds
after ``BREAKER_TIMEOUTS`` timeouts in a row (``commands``), Redis is not asked
at all.
DynamoDB's errors reach the caller unchanged and are never stored; a cancelled
holder gives its leases up in the background (bounded by the timeout) or lets
them expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from .. import Fetch, Load, Loaded, TierHost
from .bus import StreamBus
from .commands import L2Commands, Reply, Unavailable
from .envelope import Envelope, Generations, decode, with_metadata
from .link import RedisLink
from .misses import (
    Miss,
    batch_answer,
    consistent_request,
    identity,
    in_fence,
    miss_of,
    narrowed,
    shared_copy,
    split,
)
from .wakeups import Wakeups, listen_for_fills

#: ``GET_OR_LEASE``'s answers.
COPY: Final = 1
LEASED: Final = 2
HELD: Final = 3
#: The longest a waiter sleeps before asking again (s), should its wake-up be lost.
POLL: Final = 0.05

#: Reads DynamoDB for the misses given (one request for all of them), and sets what
#: answers each (``Miss.answer``, ``done``).
Read = Callable[[list[Miss]], Awaitable[None]]


class RedisL2:
    """The shared miss path over Redis (a ``SharedTier``); see the module docstring."""

    def __init__(self, link: RedisLink, bus: StreamBus) -> None:
        self._link = link
        self._bus = bus
        self._redis = L2Commands(link)
        self._wakeups = Wakeups()
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
        self.fenced_reads = 0

    # ------------------------------------------------------------ the loads

    async def load(self, load: Load, fetch: Fetch) -> Loaded:
        if load.parts:
            return await self._load_batch(load, fetch)
        miss = miss_of(load, self._link.keys) if self._may_ask() else None
        if miss is None:
            return Loaded(await fetch())

        async def read(misses: list[Miss]) -> None:
            answer = await fetch(consistent_request(miss))
            for each in misses:  # this miss alone
                each.answer, each.done = answer, True

        if not await self._settle([miss], read) or miss.answer is None:
            return Loaded(await fetch())  # Redis failed on the way
        if miss.from_copy:
            return Loaded(with_metadata(miss.answer), miss.age)
        return Loaded(miss.answer)

    async def _load_batch(self, load: Load, fetch: Fetch) -> Loaded:
        """A BatchGetItem key by key; see the module docstring."""
        keys = self._link.keys
        found = [miss_of(part, keys) for part in load.parts] if self._may_ask() else []
        misses = [miss for miss in found if miss is not None]
        if not misses or len(misses) < len(load.parts):
            return Loaded(await fetch())
        answers: list[Any] = []  # DynamoDB's, for their capacity and unprocessed keys

        async def read(chosen: list[Miss]) -> None:
            answer = await fetch(narrowed(load.request, chosen))
            answers.append(answer)
            split(chosen, answer)

        if not await self._settle(misses, read):
            unanswered = [miss for miss in misses if not miss.done]
            if unanswered:
                await read(unanswered)  # Redis failed on the way
        return Loaded(batch_answer(load.request, misses, answers), max(m.age for m in misses))

    def _may_ask(self) -> bool:
        return (
            not self._closed
            and self._link.available
            and self._bus.unsent == 0
            and self._redis.breaker.allows()
        )

    # ----------------------------------------------------------- settling

    async def _settle(self, misses: list[Miss], read: Read) -> bool:
        """Answer every miss from a copy, or by ``read`` under its lease, or after
        waiting for another process's.  ``False``: Redis failed on the way, and the
        misses not ``done`` are the caller's to read."""
        pending = misses
        while pending:
            if not self._may_ask():
                return False  # Redis went away meanwhile
            # Expected before asking: a fill announced between the answer and the
            # wait still wakes the miss.
            wakeups = [self._wakeups.expect(miss.target.digest) for miss in pending]
            try:
                now, replies = await self._redis.get_or_lease(pending)
                leased, refused, held = self._sort(pending, replies, now)
                if leased or refused:
                    await self._hold(leased, refused, now, read)
                if held:
                    # Until the first holder is done, or a poll's time.
                    delay = min(POLL, *(max(int(pttl), 1) / 1000 for _, pttl in held))
                    wakeup_of = {
                        id(miss): wakeup for miss, wakeup in zip(pending, wakeups, strict=True)
                    }
                    waiting = [wakeup_of[id(miss)] for miss, _ in held]
                    await asyncio.wait(waiting, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                    for miss, _ in held:
                        miss.mode = "read"
            except Unavailable:
                return False
            finally:
                for miss, wakeup in zip(pending, wakeups, strict=True):
                    self._wakeups.forget(miss.target.digest, wakeup)
            pending = [miss for miss in pending if not miss.done]
        return True

    def _sort(
        self, pending: list[Miss], replies: list[Reply], now: int
    ) -> tuple[list[tuple[Miss, Generations]], list[Miss], list[tuple[Miss, Any]]]:
        """What each reply says of its miss: answered by a copy (now ``done``), leased
        (with its generations), refused (read it without a lease), held by another
        (with its PTTL), or asked again (no copy it may take)."""
        leased: list[tuple[Miss, Generations]] = []
        refused: list[Miss] = []
        held: list[tuple[Miss, Any]] = []
        for miss, (kind, generations, payload) in zip(pending, replies, strict=True):
            load = miss.load
            if miss.not_before is None:
                miss.not_before = now if load.refresh else 0
            if kind == HELD:
                if not miss.waited:
                    self.lease_waits += 1
                    miss.waited = True
                held.append((miss, payload))
                continue
            if kind == LEASED:
                self.misses += 1
                self.takeovers += miss.waited
                in_fence(miss, generations, now)
                self.fenced_reads += miss.consistent
                leased.append((miss, generations))
                continue
            envelope = self._copy_of(miss, payload, generations, now)
            if envelope is not None and envelope.answer is None:
                self.misses += 1  # a refusal: read DynamoDB, do not queue for it
                refused.append(miss)
            elif (
                envelope is not None
                and envelope.stored_at >= miss.not_before
                and (envelope.consistent or not load.fenced)
            ):
                self.hits += 1
                miss.answer, miss.from_copy, miss.done = envelope.answer, True, True
                miss.age = envelope.age(now)
            else:
                miss.mode = "lease"  # not a copy this miss may take: read DynamoDB
        return leased, refused, held

    def _copy_of(
        self, miss: Miss, payload: Any, generations: Generations, now: int
    ) -> Envelope | None:
        """The copy Redis gave for ``miss``, if it is one of its load, unexpired and
        read under the ``generations`` of ``now``; else counted as rejected."""
        envelope = decode(payload, self._link.tier.max_value_bytes)
        if (
            envelope is None
            or not envelope.answers(*identity(miss, generations))
            or envelope.remaining_ms(now) <= 0
        ):
            self.rejected += 1
            return None
        return envelope

    # ------------------------------------------------------------ holders

    async def _hold(
        self,
        leased: list[tuple[Miss, Generations]],
        refused: list[Miss],
        leased_at: int,
        read: Read,
    ) -> None:
        """Read DynamoDB for the ``leased`` misses (renewing their leases meanwhile)
        and the ``refused`` ones, then fill the leased ones' copies."""
        holding = [miss for miss, _ in leased]
        started = time.monotonic()
        renewal = None
        if holding:
            renewal = asyncio.create_task(self._renew(holding), name="aiodax redis leases")
        try:
            await read(holding + refused)
        except BaseException:
            # DynamoDB's error (never stored) or a cancellation: the waiters read
            # DynamoDB themselves; the error goes on unchanged.
            self._release_later(holding)
            raise
        finally:
            if renewal is not None:
                renewal.cancel()
                await asyncio.wait((renewal,))
        if not holding:
            return
        # When DynamoDB answered, on Redis's clock: the leases' time and the read's.
        stored_at = leased_at + int((time.monotonic() - started) * 1000)
        try:
            await self._fill(
                [(miss, generations) for miss, generations in leased if miss.answer is not None],
                stored_at,
            )
            await self._redis.release([miss for miss in holding if miss.answer is None])
        except asyncio.CancelledError:
            self._release_later(holding)
            raise
        except Unavailable:
            pass  # the leases expire; the answers are this caller's all the same

    async def _fill(self, leased: list[tuple[Miss, Generations]], stored_at: int) -> None:
        if not leased:
            return
        tier = self._link.tier
        copies = []
        for miss, generations in leased:
            copy, ttl, too_big = shared_copy(
                miss, generations, stored_at, tier.max_value_bytes, self._redis.lease_ms
            )
            self.too_big += too_big
            copies.append((miss, generations, copy, ttl))
        for stored in await self._redis.fill(copies):
            if stored:
                self.stores += 1
            else:
                self.stale_fills += 1

    async def _renew(self, holding: list[Miss]) -> None:
        while True:
            await asyncio.sleep(self._link.tier.lease_time / 3)
            with contextlib.suppress(Unavailable):
                if not await self._redis.renew(holding):
                    return  # none is this holder's any more: their fills will be refused

    def _release_later(self, holding: list[Miss]) -> None:
        """Give leases up without waiting for Redis (a cancelled holder must not)."""
        if not holding or self._closed or not self._link.available:
            return  # they expire within lease_time

        async def release() -> None:
            with contextlib.suppress(Unavailable):
                await self._redis.release(holding)

        task = asyncio.create_task(release(), name="aiodax redis lease release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: TierHost) -> None:
        self._listener = asyncio.create_task(
            listen_for_fills(self._link, self._wakeups), name="aiodax redis lease wake-ups"
        )

    async def aclose(self) -> None:
        """Stop listening and finish the lease releases (each within the timeout),
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
            "L2FencedReads": self.fenced_reads,
            "L2Errors": self._redis.errors,
        }

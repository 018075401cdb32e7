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
(``Load.refresh``) takes only a copy read after it began.  While this process's
bus holds drops Redis has not taken yet, the copies in Redis do not know of them:
every load goes straight to DynamoDB.

**Redis fails, the read does not.**  Every Redis step has ``RedisTier.timeout``;
a Redis error or timeout sends what is not answered yet to DynamoDB.  While the bus
says Redis is gone (``RedisLink.available``), and for ``BREAKER_OPEN`` seconds
after ``BREAKER_TIMEOUTS`` timeouts in a row, Redis is not asked at all.
DynamoDB's errors reach the caller unchanged and are never stored; a cancelled
holder gives its leases up in the background (bounded by the timeout) or lets
them expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from ..._rules.wire import ItemKey, canonical_key
from .. import Fetch, Load, Loaded, TierHost
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
    """A Redis step failed or timed out: what it was for goes to DynamoDB."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one load's copy, lease and generations are: ``GET_OR_LEASE``'s keys."""

    keys: list[str]  # the copy, the lease, g:all, g:t:<table>, g:i:... or g:q:<table>
    field: str  # the copy's field in an item's hash, "" for a page
    digest: str  # the request's name: the lease's, the wake-up's

    @property
    def lease(self) -> str:
        return self.keys[1]


@dataclass(slots=True)
class _Miss:
    """One load (a whole GetItem, Query or Scan, or a batch's key) on its way."""

    load: Load
    target: _Target
    token: str
    #: "read": a copy, else the lease; "lease": the lease only (no copy will do)
    mode: str
    #: a refresh takes no copy read before it began (Redis's ms; 0: any)
    not_before: int | None = None
    waited: bool = False
    done: bool = False
    #: what answers it: a copy's data, or DynamoDB's answer (a batch key's as a
    #: GetItem's); ``None`` with ``done``: a batch key DynamoDB left unprocessed
    answer: dict[str, Any] | None = None
    from_copy: bool = False
    age: float = 0.0


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


#: Reads DynamoDB for the misses given (one request for all of them), and sets what
#: answers each (``_Miss.answer``, ``done``).
Read = Callable[[list[_Miss]], Awaitable[None]]


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

    # ------------------------------------------------------------ the loads

    async def load(self, load: Load, fetch: Fetch) -> Loaded:
        if load.parts:
            return await self._load_batch(load, fetch)
        miss = self._miss(load) if self._may_ask() else None
        if miss is None:
            return Loaded(await fetch())

        async def read(misses: list[_Miss]) -> None:
            answer = await fetch()
            for each in misses:  # this miss alone
                each.answer, each.done = answer, True

        if not await self._settle([miss], read) or miss.answer is None:
            return Loaded(await fetch())  # Redis failed on the way
        if miss.from_copy:
            return Loaded(with_metadata(miss.answer), miss.age)
        return Loaded(miss.answer)

    async def _load_batch(self, load: Load, fetch: Fetch) -> Loaded:
        """A BatchGetItem key by key; see the module docstring."""
        found = [self._miss(part) for part in load.parts] if self._may_ask() else []
        misses = [miss for miss in found if miss is not None]
        if not misses or len(misses) < len(load.parts):
            return Loaded(await fetch())
        answers: list[Any] = []  # DynamoDB's, for their capacity and unprocessed keys

        async def read(chosen: list[_Miss]) -> None:
            answer = await fetch(_narrowed(load.request, chosen))
            answers.append(answer)
            _split(chosen, answer)

        if not await self._settle(misses, read):
            unanswered = [miss for miss in misses if not miss.done]
            if unanswered:
                await read(unanswered)  # Redis failed on the way
        return Loaded(_batch_answer(load.request, misses, answers), max(m.age for m in misses))

    def _may_ask(self) -> bool:
        return (
            not self._closed
            and self._link.available
            and self._bus.unsent == 0
            and self._breaker.allows()
        )

    def _miss(self, load: Load) -> _Miss | None:
        """``load`` on its way through Redis; ``None``: it is not shared."""
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
        target = _Target(
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
        mode = "lease" if load.refresh else "read"
        return _Miss(load, target, secrets.token_hex(8), mode)

    # ----------------------------------------------------------- settling

    async def _settle(self, misses: list[_Miss], read: Read) -> bool:
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
                now, replies = await self._get_or_lease(pending)
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
            except _Unavailable:
                return False
            finally:
                for miss, wakeup in zip(pending, wakeups, strict=True):
                    self._wakeups.forget(miss.target.digest, wakeup)
            pending = [miss for miss in pending if not miss.done]
        return True

    def _sort(
        self, pending: list[_Miss], replies: list[tuple[int, Generations, Any]], now: int
    ) -> tuple[list[tuple[_Miss, Generations]], list[_Miss], list[tuple[_Miss, Any]]]:
        """What each reply says of its miss: answered by a copy (now ``done``), leased
        (with its generations), refused (read it without a lease), held by another
        (with its PTTL), or asked again (no copy it may take)."""
        leased: list[tuple[_Miss, Generations]] = []
        refused: list[_Miss] = []
        held: list[tuple[_Miss, Any]] = []
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
        self, miss: _Miss, payload: Any, generations: Generations, now: int
    ) -> Envelope | None:
        """The copy Redis gave for ``miss``, if it is one of its load, unexpired and
        read under the ``generations`` of ``now``; else counted as rejected."""
        load = miss.load
        envelope = decode(payload, self._link.tier.max_value_bytes)
        if (
            envelope is None
            or not envelope.answers(
                load.site,
                load.operation,
                load.table or "",
                load.key,
                miss.target.digest,
                generations,
            )
            or envelope.remaining_ms(now) <= 0
        ):
            self.rejected += 1
            return None
        return envelope

    # ------------------------------------------------------------ holders

    async def _hold(
        self,
        leased: list[tuple[_Miss, Generations]],
        refused: list[_Miss],
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
            await self._release([miss for miss in holding if miss.answer is None])
        except asyncio.CancelledError:
            self._release_later(holding)
            raise
        except _Unavailable:
            pass  # the leases expire; the answers are this caller's all the same

    async def _fill(self, leased: list[tuple[_Miss, Generations]], stored_at: int) -> None:
        if not leased:
            return
        keys: list[str] = []
        args: list[Any] = [self._link.keys.filled]
        for miss, generations in leased:
            copy, ttl = self._copy(miss, generations, stored_at)
            target = miss.target
            keys.extend(target.keys)
            args.extend((target.field, miss.token, *generations, copy, ttl, target.digest))
        for stored in await self._run(FILL, keys, args):
            if stored == 1:
                self.stores += 1
            else:
                self.stale_fills += 1

    def _copy(self, miss: _Miss, generations: Generations, stored_at: int) -> tuple[bytes, int]:
        """The copy a leased miss's answer becomes, and its TTL (ms): a refusal if the
        answer is not shared (too big, not kept here, not encodable)."""
        load, answer = miss.load, miss.answer or {}
        missing = load.operation == "get_item" and answer.get("Item") is None
        ttl = ttl_ms(load.negative_ttl if missing else load.ttl)
        envelope = Envelope(
            load.site,
            load.operation,
            load.table or "",
            load.key,
            miss.target.digest,
            generations,
            stored_at,
            ttl,
            load.request.get("ConsistentRead") is True,
            shared_answer(load.operation, answer),
        )
        if ttl > 0:
            copy = None
            with contextlib.suppress(TypeError, ValueError):
                copy = encode(envelope)
            if copy is not None and len(copy) <= self._link.tier.max_value_bytes:
                return copy, ttl
            if copy is not None:
                self.too_big += 1
        # Not shared: a refusal, for as long as the answer would have lived (or a
        # lease's time), tells the others to read DynamoDB without queueing.
        ttl = ttl or self._lease_ms
        return encode(_refusal(envelope, ttl)), ttl

    async def _renew(self, holding: list[_Miss]) -> None:
        keys = [miss.target.lease for miss in holding]
        args = [self._lease_ms, *(miss.token for miss in holding)]
        while True:
            await asyncio.sleep(self._link.tier.lease_time / 3)
            with contextlib.suppress(_Unavailable):
                if not await self._run(RENEW, keys, args):
                    return  # none is this holder's any more: their fills will be refused

    async def _release(self, holding: Sequence[_Miss]) -> None:
        if holding:
            args: list[Any] = [self._link.keys.filled]
            for miss in holding:
                args.extend((miss.token, miss.target.digest))
            await self._run(RELEASE, [miss.target.lease for miss in holding], args)

    def _release_later(self, holding: list[_Miss]) -> None:
        """Give leases up without waiting for Redis (a cancelled holder must not)."""
        if not holding or self._closed or not self._link.available:
            return  # they expire within lease_time

        async def release() -> None:
            with contextlib.suppress(_Unavailable):
                await self._release(holding)

        task = asyncio.create_task(release(), name="aiodax redis lease release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    # ----------------------------------------------------------------- Redis

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self._link.tier.lease_time * 1000))

    async def _get_or_lease(
        self, misses: list[_Miss]
    ) -> tuple[int, list[tuple[int, Generations, Any]]]:
        keys: list[str] = []
        args: list[Any] = [self._lease_ms]
        for miss in misses:
            keys.extend(miss.target.keys)
            args.extend((miss.target.field, miss.token, miss.mode))
        reply = await self._run(GET_OR_LEASE, keys, args)
        try:
            now, answers = reply
            replies = [
                (int(kind), (_text(raw[0]), _text(raw[1]), _text(raw[2])), payload)
                for kind, raw, payload in answers
            ]
        except (TypeError, ValueError, IndexError) as error:
            self.errors += 1
            raise _Unavailable from error
        if len(replies) != len(misses):
            self.errors += 1
            raise _Unavailable
        return int(now), replies

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
        ``RELEASE``), over one pub/sub connection; reconnects while the tier runs.
        On a cluster the channel reaches every node: any node's connection hears it."""
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
            "L2Errors": self.errors,
        }


# ------------------------------------------------------------ batch answers


def _narrowed(request: dict[str, Any], misses: Iterable[_Miss]) -> dict[str, Any]:
    """``request``, a BatchGetItem, asking for the keys of ``misses`` only."""
    tables = request["RequestItems"]
    narrowed: dict[str, Any] = {}
    for miss in misses:
        part = miss.load.request
        spelled = part["TableName"]
        spec = narrowed.get(spelled)
        if spec is None:
            spec = {name: value for name, value in tables[spelled].items() if name != "Keys"}
            spec["Keys"] = []
            narrowed[spelled] = spec
        spec["Keys"].append(part["Key"])
    return {**request, "RequestItems": narrowed}


def _split(misses: list[_Miss], answer: Any) -> None:
    """Give each of ``misses`` its key's part of a BatchGetItem ``answer``: the item
    as a GetItem's answer (``{}``: no item), or ``None`` if left unprocessed."""
    by_key: dict[tuple[str, ItemKey], _Miss] = {}
    names: dict[str, tuple[str, ...]] = {}
    for miss in misses:
        spelled, key = miss.load.request["TableName"], miss.load.key
        assert key is not None  # every part is a GetItem's
        by_key[(spelled, key)] = miss
        names[spelled] = tuple(key[0::3])
        miss.answer, miss.done = {}, True
    for spelled, items in (answer.get("Responses") or {}).items():
        for item in items:
            key = canonical_key({name: item.get(name) for name in names.get(spelled, ())})
            found = None if key is None else by_key.get((spelled, key))
            if found is not None:
                found.answer = {"Item": item}
    for spelled, spec in (answer.get("UnprocessedKeys") or {}).items():
        for wire in spec.get("Keys", ()):
            key = canonical_key(wire)
            found = None if key is None else by_key.get((spelled, key))
            if found is not None:
                found.answer = None


def _batch_answer(
    request: dict[str, Any], misses: list[_Miss], answers: list[Any]
) -> dict[str, Any]:
    """One BatchGetItem answer: the copies' items and what DynamoDB answered."""
    responses: dict[str, list[Any]] = {spelled: [] for spelled in request["RequestItems"]}
    for miss in misses:
        if miss.from_copy and miss.answer is not None and "Item" in miss.answer:
            responses[miss.load.request["TableName"]].append(miss.answer["Item"])
    unprocessed: dict[str, Any] = {}
    capacity: list[Any] = []
    for answer in answers:
        for spelled, items in (answer.get("Responses") or {}).items():
            responses.setdefault(spelled, []).extend(items)
        for spelled, spec in (answer.get("UnprocessedKeys") or {}).items():
            kept = unprocessed.setdefault(spelled, {**spec, "Keys": []})
            kept["Keys"].extend(spec.get("Keys", ()))
        capacity.extend(answer.get("ConsumedCapacity") or ())
    merged = with_metadata({"Responses": responses, "UnprocessedKeys": unprocessed})
    if answers:
        merged["ResponseMetadata"] = answers[-1].get("ResponseMetadata", merged["ResponseMetadata"])
    if capacity:
        merged["ConsumedCapacity"] = capacity
    return merged


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

"""Write bookkeeping: the rules that keep a fill or a write from caching an older value.

Two races would cache a value DynamoDB has already replaced, and the guards here
refuse both:

- **A fill racing a drop.**  A read sent before a write (or any drop) may be
  answered with the value from before it and land after it.  Every drop bumps the
  *generation* of the scopes it names (an item's store key, a page tag, a table's
  tags, or everything: the names of ``_rules.tags``); a fill takes the current
  generation when its request goes out and is stored only if none of its scopes
  was dropped since (``may_store``).  The number is local to this process; a
  shared tier compares its own against it in the same way.
- **Two writes to one item in flight at once.**  Their answers may arrive in
  another order than DynamoDB applied them, so neither may set the cached value:
  both invalidate (``finish`` returns the overlapped keys).  A write that names no
  key (an unkeyed table, PartiQL, ``everything``) overlaps every write to its
  table, or to any table, in the same way.

A third race needs time: **a write that may still land.**  After a timeout or a
cancellation DynamoDB may apply the write later, so a drop right away is not
enough: a read between the drop and the landing would cache the value from before
it.  Such a drop also *holds* its scopes until a deadline (``dropped(...,
held_until=...)``): while held, no fill stores under them and a write-through of
a held item overlaps the write that may still land (it invalidates instead of
storing).  A hold ends by itself at its deadline, and its end counts as a drop of
its scopes, so a fill that went out while they were held stores nothing either.
``Deadlines`` is the rule "scope → under a rule until", reusable for others.

And one race needs DynamoDB's replicas: **a fill reading a lagging replica.**  An
eventually consistent read right after a write may be answered by a replica that
has not applied it yet.  A drop also *fences* its scopes for the table's
``fence`` seconds (``dropped(..., fenced_until=...)``): a fill filed under a
fenced scope reads with ``ConsistentRead=True`` (``fenced``; ``_engine.loader``),
or, where DynamoDB has no consistent read (a GSI), is kept only until the fence
ends (``fence_end``).  Drops from other processes fence here too.

Nothing here awaits; the engine calls these between its awaits.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Final

from .._rules.tables import FIRST_SITE, bare_name, table_token
from .._rules.tags import item_key, item_tags
from .._rules.wire import ItemKey
from .._rules.writes import ItemRef, WritePlan

#: The scope every drop of everything bumps, and every fill depends on.
EVERYTHING: Final = ("everything",)
#: How many drops are remembered before those no open fill can need are pruned;
#: past it even after pruning, fills older than now are refused instead.
_PRUNE_AT: Final = 4096
#: How many scopes may be held at once; past it everything is held instead.
HOLD_LIMIT: Final = 4096


class Deadlines:
    """Scopes under a rule until a deadline each, by an injected clock; bounded.

    ``extend`` puts scopes under the rule, ``covers`` tells whether a scope (or
    ``EVERYTHING``) is under it now, ``expire`` takes out and returns those whose
    deadline has come.  Past ``limit`` scopes, the rule covers ``EVERYTHING``
    until the latest deadline instead: coarser, never shorter.
    """

    __slots__ = ("_clock", "_limit", "_pushed", "_queue", "_until")

    def __init__(self, clock: Callable[[], float], limit: int = HOLD_LIMIT) -> None:
        self._clock = clock
        self._limit = limit
        #: scope → its deadline
        self._until: dict[Hashable, float] = {}
        #: (deadline, order pushed, scope), a heap; an entry whose scope has a later
        #: deadline since is stale, skipped when popped
        self._queue: list[tuple[float, int, Hashable]] = []
        self._pushed = 0

    def __len__(self) -> int:
        return len(self._until)

    @property
    def remembered(self) -> int:
        """Entries kept for the deadlines, stale ones included (bounded)."""
        return len(self._queue)

    def extend(self, scopes: Iterable[Hashable], until: float) -> None:
        """Put ``scopes`` under the rule until ``until`` at least."""
        deadlines = self._until
        if not deadlines:
            self._queue.clear()
        for scope in scopes:
            if deadlines.get(scope, -math.inf) < until:
                deadlines[scope] = until
                self._push(until, scope)
        if len(deadlines) > self._limit:
            latest = max(deadlines.values())
            deadlines.clear()
            deadlines[EVERYTHING] = latest
            self._queue.clear()
            self._push(latest, EVERYTHING)
        elif len(self._queue) > 2 * self._limit:
            # Scopes held again and again leave stale entries behind: rebuild.
            self._queue.clear()
            for scope, scope_until in deadlines.items():
                self._push(scope_until, scope)

    def _push(self, until: float, scope: Hashable) -> None:
        # The order pushed breaks ties, so that scopes themselves are never compared.
        heapq.heappush(self._queue, (until, self._pushed, scope))
        self._pushed += 1

    def latest(self, scopes: Iterable[Hashable]) -> float | None:
        """The latest deadline under which any of ``scopes`` (or ``EVERYTHING``) is now,
        or ``None``: none is."""
        deadlines = self._until
        if not deadlines:
            return None
        now = self._clock()
        latest = max(
            (deadlines.get(scope, -math.inf) for scope in (EVERYTHING, *scopes)),
            default=-math.inf,
        )
        return latest if latest > now else None

    def covers(self, scopes: Iterable[Hashable]) -> bool:
        """Whether any of ``scopes``, or ``EVERYTHING``, is under the rule now."""
        deadlines = self._until
        if not deadlines:
            return False
        now = self._clock()
        if deadlines.get(EVERYTHING, -math.inf) > now:
            return True
        return any(deadlines.get(scope, -math.inf) > now for scope in scopes)

    def expire(self) -> list[Hashable]:
        """Take out the scopes whose deadline has come; returns them."""
        now = self._clock()
        deadlines, queue = self._until, self._queue
        ended = []
        while queue and queue[0][0] <= now:
            until, _, scope = heapq.heappop(queue)
            if deadlines.get(scope) == until:
                del deadlines[scope]
                ended.append(scope)
        return ended


@dataclass(slots=True)
class _KeyWrites:
    in_flight: int
    overlapped: bool


@dataclass(frozen=True, slots=True)
class WriteTicket:
    """One write in progress: the keys it names, the tables it writes unkeyed (bare names)."""

    keys: tuple[ItemRef, ...]
    unkeyed_tables: frozenset[str]
    everything: bool


class WriteGuards:
    """Writes in flight and drop generations; see the module docstring."""

    __slots__ = (
        "_dropped_at",
        "_fences",
        "_generation",
        "_holds",
        "_open_fills",
        "_refused_before",
        "_unkeyed",
        "_writing",
    )

    def __init__(self, clock: Callable[[], float]) -> None:
        #: scopes held after a write that may still land
        self._holds = Deadlines(clock)
        #: scopes dropped lately, whose fills read consistently (``fenced``)
        self._fences = Deadlines(clock)
        self._writing: dict[ItemRef, _KeyWrites] = {}
        #: table (``None``: any table) → writes in flight that name no key in it
        self._unkeyed: dict[str | None, int] = {}
        self._generation = 0
        #: scope → the generation of its last drop (pruned: see ``close_fill``)
        self._dropped_at: dict[Hashable, int] = {}
        #: generation a fill went out at → fills still open from it
        self._open_fills: dict[int, int] = {}
        #: fills that went out before this generation may not store (see ``close_fill``)
        self._refused_before = 0

    # ------------------------------------------------------------ generations

    def open_fill(self) -> int:
        """A fill's request is going out now; returns its generation (drops so far)."""
        if self._holds:
            self._end_holds()
        generation = self._generation
        self._open_fills[generation] = self._open_fills.get(generation, 0) + 1
        return generation

    def close_fill(self, generation: int) -> None:
        """The fill opened at ``generation`` is stored or abandoned."""
        left = self._open_fills[generation] - 1
        if left:
            self._open_fills[generation] = left
            return
        del self._open_fills[generation]
        if not self._open_fills:
            self._dropped_at.clear()  # no fill is left to compare with them
        elif len(self._dropped_at) > _PRUNE_AT:
            self._prune()

    def _prune(self) -> None:
        """Forget the drops no open fill can be refused by; bound what is left."""
        oldest = min(self._open_fills)
        self._dropped_at = {s: g for s, g in self._dropped_at.items() if g > oldest}
        if len(self._dropped_at) > _PRUNE_AT:
            # An old fill still out while drops keep coming (a slow request under
            # heavy writes): refusing every fill out now costs a few fills;
            # remembering every drop until they end would cost unbounded memory.
            self._refused_before = self._generation
            self._dropped_at.clear()

    def _end_holds(self) -> None:
        ended = self._holds.expire()
        if ended:
            # A fill that went out while these were held may carry a value from
            # before a write that landed since: the end of a hold drops them.
            self.dropped(ended)

    @property
    def remembered_drops(self) -> int:
        """Scopes whose last drop is remembered for fills still out (bounded)."""
        return len(self._dropped_at)

    @property
    def open_fills(self) -> int:
        return sum(self._open_fills.values())

    def dropped(
        self,
        scopes: Iterable[Hashable],
        *,
        held_until: float | None = None,
        fenced_until: float | None = None,
    ) -> None:
        """Entries filed under ``scopes`` were dropped: fills out since may not store.

        With ``held_until``, ``scopes`` are held until then: nothing is stored under
        them before, nor by a fill that went out before (see the module docstring).
        With ``fenced_until``, fills under them read consistently until then.
        """
        if held_until is not None or fenced_until is not None:
            scopes = tuple(scopes)
        if held_until is not None:
            self._holds.extend(scopes, held_until)
        if fenced_until is not None:
            fences = self._fences
            if fences and len(fences) >= HOLD_LIMIT // 2:
                fences.expire()  # fences end by themselves: nothing else to do
            fences.extend(scopes, fenced_until)
        self._generation += 1
        if self._open_fills:
            generation = self._generation
            for scope in scopes:
                self._dropped_at[scope] = generation
            if len(self._dropped_at) > 2 * _PRUNE_AT:
                self._prune()

    def may_store(self, generation: int, scopes: Iterable[Hashable]) -> bool:
        """Whether a fill that went out at ``generation``, filed under ``scopes``, may store."""
        if self._holds:
            scopes = tuple(scopes)
            self._end_holds()
            if self._holds.covers(scopes):
                return False
        if generation == self._generation:
            return True
        if generation < self._refused_before:
            return False
        dropped_at = self._dropped_at
        if dropped_at.get(EVERYTHING, -1) > generation:
            return False
        return all(dropped_at.get(scope, -1) <= generation for scope in scopes)

    # ------------------------------------------------------------------ fences

    def fenced(self, scopes: Iterable[Hashable]) -> bool:
        """Whether a fill filed under ``scopes`` must read consistently now: one of
        them was dropped less than its table's fence ago."""
        return bool(self._fences) and self._fences.covers(scopes)

    def fence_end(self, scopes: Iterable[Hashable]) -> float | None:
        """When the fence over ``scopes`` ends, or ``None``: they are not fenced."""
        return self._fences.latest(scopes) if self._fences else None

    @property
    def fenced_scopes(self) -> int:
        """Scopes fenced or lately fenced (bounded)."""
        return len(self._fences)

    # ---------------------------------------------------------- writes in flight

    def begin(self, plan: WritePlan, site: int = FIRST_SITE) -> WriteTicket:
        """Register ``plan``'s write, sent by a client of ``site``, before it is sent.

        Writes overlap by table *bare name* (``_rules.tables``): two clients
        writing one item by its name and its ARN, or from two sites, are two
        writes to it.  A held item counts as overlapped: the write that may still
        land on it is one more write in flight.
        """
        holds = self._holds
        if holds:
            self._end_holds()
        unkeyed = frozenset(map(bare_name, plan.unkeyed_tables))
        for table in (None,) if plan.everything else unkeyed:
            self._unkeyed[table] = self._unkeyed.get(table, 0) + 1
            for ref, in_flight in self._writing.items():
                if table is None or ref[0] == table:
                    in_flight.overlapped = True
        keys = plan.refs
        for spelled, key in keys:
            table = bare_name(spelled)
            token = table_token(spelled, site)
            overlapped = bool(
                self._unkeyed.get(table)
                or self._unkeyed.get(None)
                or (holds and holds.covers((item_key(token, key), *item_tags(token))))
            )
            writes = self._writing.get((table, key))
            if writes is None:
                self._writing[table, key] = _KeyWrites(1, overlapped)
            else:
                writes.in_flight += 1
                writes.overlapped = True
        return WriteTicket(keys, unkeyed, plan.everything)

    def finish(self, ticket: WriteTicket) -> frozenset[ItemRef]:
        """The write of ``ticket`` answered or failed; returns its keys another write
        overlapped (or a hold, see ``begin``): they may not store what it wrote."""
        overlapped = set()
        for ref in ticket.keys:
            spelled, key = ref
            physical = (bare_name(spelled), key)
            writes = self._writing[physical]
            if writes.overlapped:
                overlapped.add(ref)
            writes.in_flight -= 1
            if writes.in_flight == 0:
                del self._writing[physical]
        for table in (None,) if ticket.everything else ticket.unkeyed_tables:
            count = self._unkeyed[table] - 1
            if count:
                self._unkeyed[table] = count
            else:
                del self._unkeyed[table]
        return frozenset(overlapped)

    def written_elsewhere(self, table: str | None, key: ItemKey | None = None) -> None:
        """Another process wrote ``key`` of ``table`` (``None``: any key; a ``table``
        of ``None``: any table): the writes in flight here to what it wrote
        overlapped it, and invalidate instead of storing (the other may have
        landed after them)."""
        if table is not None and key is not None:
            writes = self._writing.get((table, key))
            if writes is not None:
                writes.overlapped = True
            return
        for (written_table, _), writes in self._writing.items():
            if table is None or written_table == table:
                writes.overlapped = True

    @property
    def writes_in_flight(self) -> int:
        """Keys with a write in flight, and tables with an unkeyed one (``stats()``)."""
        return len(self._writing) + len(self._unkeyed)

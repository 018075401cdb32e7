"""The in-process store: entries in wire form, bounded by their size in bytes.

The store knows nothing of DynamoDB: it keeps entries under hashable keys, finds
them again by *tags* (a table, a table's partition), and evicts when the sum of
their estimated sizes passes ``max_bytes``.

Eviction is LRU approximated by CLOCK ("second chance"), as in Redis or an OS page
cache: a hit only sets a flag on its entry instead of reordering the dict (which
would hash the key a second time on every hit), and the evictor passes over
flagged entries once, clearing the flag, before taking the oldest unflagged one.
An entry read since it was stored or last passed over is therefore never evicted
before one that was not.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

from ._rules.projection import Projection
from ._rules.wire import Image, size_of
from ._stats import TableStats

#: Bytes an entry costs beyond its payload: the ordered dict's node and hash slot,
#: the entry object and its variants dict, measured with tracemalloc on CPython 3.11
#: (360), plus the two slots the freshness policies added and the table's counters
#: (``sys.getsizeof``: 24).
ENTRY_OVERHEAD: Final = 384


class ItemEntry:
    """One item's cached forms: the whole item and any projections of it.

    The whole item sits in plain attributes because that is what the hot path
    reads; projections, the rarer case, live in a dict beside it.
    """

    __slots__ = (
        "counts",
        "expires_at",
        "fresh_until",
        "image",
        "load_time",
        "projections",
        "referenced",
        "size",
        "tags",
        "view",
    )

    def __init__(
        self,
        image: Image,
        expires_at: float,
        projections: dict[Projection, tuple[Image, float]] | None,
        tags: tuple[Hashable, ...],
        size: int,
        fresh_until: float | None = None,
        load_time: float = 0.0,
        *,
        counts: TableStats,
    ) -> None:
        #: the counters of the entry's table: a hit on it counts itself there
        self.counts = counts
        #: the whole item (``None`` = it does not exist); served past ``fresh_until``
        #: only as the table's freshness policies allow (``_rules.freshness``)
        self.image = image
        #: until when a hit on the whole item needs no thought: the hit paths'
        #: one comparison.  ``fresh_until``, or earlier where refresh-ahead's window
        #: opens; ``-inf`` when only projections of the item are cached
        self.expires_at = expires_at
        #: when the whole item's TTL ends
        self.fresh_until = expires_at if fresh_until is None else fresh_until
        #: seconds the load that brought the image took (XFetch's δ; 0: unknown)
        self.load_time = load_time
        #: projection → (image, expires at)
        self.projections = projections
        self.tags = tags
        self.size = size
        self.referenced = False
        #: a function serving copies of the whole item in a facade's form (the
        #: resource's Python values), made when the facade first reads the entry
        #: (``_engine.views``); ``None`` until then.  An entry is never updated in
        #: place: it dies with ``image``
        self.view: Callable[[], Any] | None = None


class PageEntry:
    """One cached Query or Scan response page."""

    __slots__ = (
        "counts",
        "expires_at",
        "fresh_until",
        "lagging",
        "load_time",
        "page",
        "referenced",
        "size",
        "tags",
        "view",
    )

    def __init__(
        self,
        page: dict[str, Any],
        expires_at: float,
        tags: tuple[Hashable, ...],
        size: int,
        fresh_until: float | None = None,
        load_time: float = 0.0,
        lagging: bool = False,
        *,
        counts: TableStats,
    ) -> None:
        #: as ``ItemEntry.counts``
        self.counts = counts
        self.page = page
        #: as ``ItemEntry``'s three
        self.expires_at = expires_at
        self.fresh_until = expires_at if fresh_until is None else fresh_until
        self.load_time = load_time
        #: read eventually consistently inside a fence (a GSI page): it may predate a
        #: write, so it lives to the fence's end and is never served past it
        self.lagging = lagging
        self.tags = tags
        self.size = size
        self.referenced = False
        #: as ``ItemEntry.view``, for the whole response page
        self.view: Callable[[], Any] | None = None


Entry = ItemEntry | PageEntry


def entry_size(key: Hashable, payload: object) -> int:
    return ENTRY_OVERHEAD + size_of(key) + size_of(payload)


class Store:
    """Entries by key, findable by tag, evicted by CLOCK past ``max_bytes``."""

    __slots__ = ("_by_tag", "current_size", "entries", "evicted_count", "evicted_size", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        #: Oldest first.  The engine's hot path reads it directly and sets
        #: ``referenced`` on what it serves.
        self.entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._by_tag: dict[Hashable, set[Hashable]] = {}
        self.current_size = 0
        self.evicted_count = 0
        self.evicted_size = 0

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: Hashable) -> Entry | None:
        """The entry under ``key``, marked as used."""
        entry = self.entries.get(key)
        if entry is not None:
            entry.referenced = True
        return entry

    def peek(self, key: Hashable) -> Entry | None:
        return self.entries.get(key)

    def put(self, key: Hashable, entry: Entry) -> None:
        self.discard(key)
        if entry.size > self.max_bytes:
            # An entry larger than the whole cache would evict everything and then
            # itself; it is simply not kept.
            return
        self.entries[key] = entry
        self.current_size += entry.size
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        entries = self.entries
        while self.current_size > self.max_bytes:
            old_key, old = entries.popitem(last=False)
            if old.referenced or old_key == key:
                # Reaching the newcomer means every older entry got its second
                # chance; it is never its own victim (it fits: checked above).
                old.referenced = False
                entries[old_key] = old  # second chance: to the young end
                continue
            self._forget(old_key, old)
            self.evicted_count += 1
            self.evicted_size += old.size

    def grow(self, key: Hashable, entry: Entry, extra: int) -> None:
        """``entry`` (under ``key``) now holds ``extra`` bytes more; the budget still holds."""
        self.discard(key)
        entry.size += extra
        self.put(key, entry)

    def discard(self, key: Hashable) -> bool:
        entry = self.entries.pop(key, None)
        if entry is None:
            return False
        self._forget(key, entry)
        return True

    def discard_tagged(self, tag: Hashable) -> int:
        keys = self._by_tag.get(tag)
        if not keys:
            return 0
        count = 0
        for key in list(keys):
            count += self.discard(key)
        return count

    def expire_by(self, until: float) -> None:
        """No entry lives past ``until``: every expiry (hit horizon, TTL, projections')
        later than it becomes ``until``."""
        for entry in self.entries.values():
            if entry.expires_at > until:
                entry.expires_at = until
            if entry.fresh_until > until:
                entry.fresh_until = until
            if isinstance(entry, ItemEntry) and entry.projections:
                entry.projections = {
                    projection: (image, min(expires_at, until))
                    for projection, (image, expires_at) in entry.projections.items()
                }

    def clear(self) -> None:
        self.entries.clear()
        self._by_tag.clear()
        self.current_size = 0

    def _forget(self, key: Hashable, entry: Entry) -> None:
        self.current_size -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

"""Counters, named after DAX's CloudWatch metrics where DAX has one.

What a read of one table does (hits, misses, coalesced callers, stale answers) is
counted in that table's ``TableStats``; every entry of the store holds its
table's, so that a hit counts itself through the entry it already has in hand
(one attribute more than a shared counter, no lookup).  The totals are the sums
over tables; what concerns requests rather than one table's reads (requests sent,
writes, drops) is counted once, in ``Stats``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ._rules.tables import TableToken, spelled_name

#: ``TableStats`` attribute → its name in ``stats()``, in the order shown.
TABLE_COUNTERS: dict[str, str] = {
    "item_hits": "ItemCacheHits",
    "item_misses": "ItemCacheMisses",
    "negative_hits": "NegativeCacheHits",
    "query_hits": "QueryCacheHits",
    "query_misses": "QueryCacheMisses",
    "scan_hits": "ScanCacheHits",
    "scan_misses": "ScanCacheMisses",
    "coalesced": "CoalescedRequests",
    "refreshes_ahead": "RefreshesAhead",
    "stale_served": "StaleServed",
    "stream_bypassed_fills": "StreamBypassedReads",
}


class TableStats:
    """One table's read counters: plain integer attributes, the cheapest thing a hit
    can increment."""

    __slots__ = tuple(TABLE_COUNTERS)

    def __init__(self) -> None:
        self.item_hits = 0
        self.item_misses = 0
        self.negative_hits = 0
        self.query_hits = 0
        self.query_misses = 0
        self.scan_hits = 0
        self.scan_misses = 0
        self.coalesced = 0
        self.refreshes_ahead = 0
        self.stale_served = 0
        self.stream_bypassed_fills = 0

    def snapshot(self) -> dict[str, int]:
        return {shown: getattr(self, name) for name, shown in TABLE_COUNTERS.items()}


class Stats:
    """Every table's ``TableStats``, and the counters of requests and writes."""

    __slots__ = (
        "ambiguous_writes",
        "backend_requests",
        "consistent_fills",
        "item_invalidations",
        "query_invalidations",
        "tables",
        "write_throughs",
    )

    def __init__(self) -> None:
        self.tables: dict[TableToken, TableStats] = {}
        self.consistent_fills = 0
        self.write_throughs = 0
        self.ambiguous_writes = 0
        self.item_invalidations = 0
        self.query_invalidations = 0
        self.backend_requests: Counter[str] = Counter()

    def table(self, token: TableToken) -> TableStats:
        """The counters of ``token``'s table, made at its first read."""
        found = self.tables.get(token)
        if found is None:
            found = self.tables[token] = TableStats()
        return found

    def by_table(self) -> dict[str, dict[str, int]]:
        """Each table's counters under the name (or ARN) requests spell it with;
        one name's tables on several sites (regions, endpoints) are summed."""
        shown: dict[str, dict[str, int]] = {}
        for token, counts in self.tables.items():
            snapshot = counts.snapshot()
            name = spelled_name(token)
            if name in shown:
                snapshot = {key: shown[name][key] + value for key, value in snapshot.items()}
            shown[name] = snapshot
        return shown

    def snapshot(
        self,
        *,
        evicted_count: int,
        evicted_size: int,
        current_size: int,
        current_entries: int,
        in_flight: int,
        writes_in_flight: int,
        tier: dict[str, Any],
    ) -> dict[str, Any]:
        tables = self.by_table()
        totals = {
            shown: sum(counts[shown] for counts in tables.values())
            for shown in TABLE_COUNTERS.values()
        }
        counters: dict[str, Any] = {
            **totals,
            "ConsistentFills": self.consistent_fills,
            "BackendRequests": dict(self.backend_requests),
            "BackendRequestCount": sum(self.backend_requests.values()),
            "WriteThroughs": self.write_throughs,
            "AmbiguousWrites": self.ambiguous_writes,
            "ItemInvalidations": self.item_invalidations,
            "QueryInvalidations": self.query_invalidations,
            "EvictedCount": evicted_count,
            "EvictedSize": evicted_size,
            "CurrentSize": current_size,
            "CurrentEntries": current_entries,
            "InFlight": in_flight,
            "WritesInFlight": writes_in_flight,
            "Tables": tables,
        }
        if tier:
            counters["Tier"] = tier
        return counters

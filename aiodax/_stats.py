"""Counters, named after DAX's CloudWatch metrics where DAX has one."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    """Plain integer attributes: incrementing one is the cheapest thing a hit can do."""

    __slots__ = (
        "ambiguous_writes",
        "backend_requests",
        "coalesced",
        "consistent_fills",
        "item_hits",
        "item_invalidations",
        "item_misses",
        "negative_hits",
        "query_hits",
        "query_invalidations",
        "query_misses",
        "refreshes_ahead",
        "scan_hits",
        "scan_misses",
        "stale_served",
        "stream_bypassed_fills",
        "write_throughs",
    )

    def __init__(self) -> None:
        self.item_hits = 0
        self.item_misses = 0
        self.negative_hits = 0
        self.query_hits = 0
        self.query_misses = 0
        self.scan_hits = 0
        self.scan_misses = 0
        self.coalesced = 0
        self.consistent_fills = 0
        self.refreshes_ahead = 0
        self.stale_served = 0
        self.stream_bypassed_fills = 0
        self.write_throughs = 0
        self.ambiguous_writes = 0
        self.item_invalidations = 0
        self.query_invalidations = 0
        self.backend_requests: Counter[str] = Counter()

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
        counters = {
            "ItemCacheHits": self.item_hits,
            "ItemCacheMisses": self.item_misses,
            "NegativeCacheHits": self.negative_hits,
            "QueryCacheHits": self.query_hits,
            "QueryCacheMisses": self.query_misses,
            "ScanCacheHits": self.scan_hits,
            "ScanCacheMisses": self.scan_misses,
            "CoalescedRequests": self.coalesced,
            "ConsistentFills": self.consistent_fills,
            "RefreshesAhead": self.refreshes_ahead,
            "StaleServed": self.stale_served,
            "StreamBypassedReads": self.stream_bypassed_fills,
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
        }
        if tier:
            counters["Tier"] = tier
        return counters

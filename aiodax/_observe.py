"""The observer seam: what the telemetry integrations (``aiodax.contrib``) are told.

Observers hear of the moments a cache spends time on, never of a hit: every
request that reaches DynamoDB (``Shared.call``: misses, write-throughs, table
changes, pass-throughs) and every wait of a caller that joined another's load.
A cache has none by default, and then pays one truth test per request sent.
An observer is called after the fact, in the caller's task, with what happened;
one that raises is logged and fails nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._log import LOG as _LOG


@dataclass(frozen=True, slots=True)
class BackendCall:
    """One request sent to DynamoDB.

    ``kind``: ``"miss"`` (a read the cache loads), ``"write"`` (a write through
    the cache), ``"bypass"`` (a read sent as it came, uncached) or ``"other"``
    (table changes, DescribeTable).  ``started_ns``: wall clock (``time.time_ns``)
    when it was sent; ``seconds``: how long it took; ``error``: what it raised,
    if anything; ``answer``: DynamoDB's answer, if any.
    """

    operation: str
    kind: str
    request: Mapping[str, Any]
    started_ns: int
    seconds: float
    error: BaseException | None
    answer: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class CoalescedWait:
    """A caller's wait for another caller's load of the same ``operation`` on
    ``table``: it sent nothing; ``error`` is what the wait ended with, if anything."""

    operation: str
    table: str
    started_ns: int
    seconds: float
    error: BaseException | None


class Observer(Protocol):
    """What ``aiodax.contrib``'s integrations implement."""

    def backend_call(self, call: BackendCall) -> None: ...

    def coalesced_wait(self, wait: CoalescedWait) -> None: ...


def notify_call(observers: tuple[Observer, ...], call: BackendCall) -> None:
    for observer in observers:
        try:
            observer.backend_call(call)
        except Exception:
            _LOG.warning("aiodax: observer %r failed", observer, exc_info=True)


def notify_wait(observers: tuple[Observer, ...], wait: CoalescedWait) -> None:
    for observer in observers:
        try:
            observer.coalesced_wait(wait)
        except Exception:
            _LOG.warning("aiodax: observer %r failed", observer, exc_info=True)

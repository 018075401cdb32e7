"""What the shared miss path knows of one miss, and the BatchGetItem answers it
assembles key by key.  Pure: no I/O, no asyncio.

A ``Miss`` is one load (a whole GetItem, Query or Scan, or one key of a
BatchGetItem) on its way through Redis: where its copy, lease and generations are
(``Target``), the lease's token, and what answers it once settled.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..._rules.wire import ItemKey, canonical_key
from .. import Load
from .envelope import FIELDS, Envelope, Generations, encode, shared_answer, ttl_ms, with_metadata
from .keys import Keys, key_digest, shared_request_digest


@dataclass(frozen=True, slots=True)
class Target:
    """Where one load's copy, lease and generations are: ``GET_OR_LEASE``'s keys."""

    keys: list[str]  # the copy, the lease, g:all, g:t:<table>, g:i:... or g:q:<table>
    field: str  # the copy's field in an item's hash, "" for a page
    digest: str  # the request's name: the lease's, the wake-up's

    @property
    def lease(self) -> str:
        return self.keys[1]


@dataclass(slots=True)
class Miss:
    """One load on its way; see the module docstring."""

    load: Load
    target: Target
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
    #: its lease came inside the fence of a drop this process may not have heard of
    #: yet: until then (Redis's ms), a read not consistent may be a lagging replica's
    fenced_until: int | None = None
    #: read by the tier with ``ConsistentRead`` for that fence
    consistent: bool = False

    @property
    def reads_consistently(self) -> bool:
        """Whether its read (to be) sent has ``ConsistentRead``."""
        return self.consistent or self.load.request.get("ConsistentRead") is True


def miss_of(load: Load, keys: Keys) -> Miss | None:
    """``load`` on its way through Redis; ``None``: it is not shared."""
    table, operation = load.table, load.operation
    if table is None or operation not in FIELDS:
        return None
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
    lease = keys.lease(digest)
    target = Target(
        [copy, lease, keys.everything, keys.table_generation(table), generation], field, digest
    )
    return Miss(load, target, secrets.token_hex(8), "lease" if load.refresh else "read")


def fence_end(generations: Generations, fence: float) -> int | None:
    """When the fence of the latest drop among ``generations`` ends (Redis's ms), or
    ``None``: no fence, or no time in them (``scripts.PUBLISH``: ``<seq>:<ms>``)."""
    if fence <= 0:
        return None
    moved = []
    for generation in generations:
        _, colon, at = generation.partition(":")
        if colon and at.isdigit():
            moved.append(int(at))
    return max(moved) + int(fence * 1000) if moved else None


def in_fence(miss: Miss, generations: Generations, now: int) -> None:
    """Mark a leased miss whose lease came inside a drop's fence (``Miss.fenced_until``),
    unless its read is consistent anyway: it reads as a fenced fill of this process
    would (``Load.fence``)."""
    if miss.reads_consistently:
        return
    end = fence_end(generations, miss.load.fence)
    if end is not None and end > now:
        miss.fenced_until = end
        miss.consistent = not miss.load.eventual_only


def consistent_request(miss: Miss) -> dict[str, Any] | None:
    """What a single load's read sends instead, inside a fence (``None``: its own)."""
    return {**miss.load.request, "ConsistentRead": True} if miss.consistent else None


def identity(
    miss: Miss, generations: Generations
) -> tuple[str, str, str, ItemKey | None, str, Generations]:
    """What a copy of ``miss`` records of the load it answers (``Envelope``'s first
    fields, ``Envelope.answers``'s arguments)."""
    load = miss.load
    return (load.site, load.operation, load.table or "", load.key, miss.target.digest, generations)


def shared_copy(
    miss: Miss, generations: Generations, stored_at: int, max_bytes: int, lease_ms: int
) -> tuple[bytes, int, bool]:
    """The copy a leased miss's answer becomes, its TTL (ms), and whether the answer
    was too big to share: a refusal if it is not shared (too big, not kept here, not
    encodable), for as long as the answer would have lived (or a lease's time), which
    tells the others to read DynamoDB without queueing."""
    load, answer = miss.load, miss.answer or {}
    missing = load.operation == "get_item" and answer.get("Item") is None
    ttl = ttl_ms(load.negative_ttl if missing else load.ttl)
    consistent = miss.reads_consistently
    if miss.fenced_until is not None and not consistent:
        # Perhaps a lagging replica's: shared no longer than the fence.
        ttl = max(0, min(ttl, miss.fenced_until - stored_at))
    envelope = Envelope(
        *identity(miss, generations),
        stored_at,
        ttl,
        consistent,
        shared_answer(load.operation, answer),
    )
    too_big = False
    if ttl > 0:
        copy = None
        with contextlib.suppress(TypeError, ValueError):
            copy = encode(envelope)
        if copy is not None and len(copy) <= max_bytes:
            return copy, ttl, False
        too_big = copy is not None
    ttl = ttl or lease_ms
    return encode(_refusal(envelope, ttl)), ttl, too_big


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


# ------------------------------------------------------------ batch answers


def narrowed(request: dict[str, Any], misses: Iterable[Miss]) -> dict[str, Any]:
    """``request``, a BatchGetItem, asking for the keys of ``misses`` only; a table
    with a key read inside a fence (``Miss.consistent``) is read consistently, and so
    are all its keys in it (marked so)."""
    chosen = list(misses)
    tables = request["RequestItems"]
    consistent = {miss.load.request["TableName"] for miss in chosen if miss.consistent}
    asked: dict[str, Any] = {}
    for miss in chosen:
        part = miss.load.request
        spelled = part["TableName"]
        spec = asked.get(spelled)
        if spec is None:
            spec = {name: value for name, value in tables[spelled].items() if name != "Keys"}
            if spelled in consistent:
                spec["ConsistentRead"] = True
            spec["Keys"] = []
            asked[spelled] = spec
        miss.consistent = miss.consistent or spelled in consistent
        spec["Keys"].append(part["Key"])
    return {**request, "RequestItems": asked}


def split(misses: list[Miss], answer: Any) -> None:
    """Give each of ``misses`` its key's part of a BatchGetItem ``answer``: the item
    as a GetItem's answer (``{}``: no item), or ``None`` if left unprocessed."""
    by_key: dict[tuple[str, ItemKey], Miss] = {}
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


def batch_answer(request: dict[str, Any], misses: list[Miss], answers: list[Any]) -> dict[str, Any]:
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

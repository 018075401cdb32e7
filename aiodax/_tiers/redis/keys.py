"""Where the tier keeps what it keeps in Redis: every key of a namespace, and the
digests that name items and requests in them.  Pure: no I/O.

Every key starts with ``aiodax:v1:{namespace}:`` and its braces are Redis
Cluster's hash tag, so that a namespace's keys share one slot and one Lua script
may touch the bus and the shared cache together.  An ACL user limited to
``~aiodax:v1:{namespace}:*`` (and the channel pattern ``&aiodax:v1:{namespace}:*``)
can run everything.

======================  =========================================================
``bus``                 the invalidation stream (``XADD`` / ``XREAD``)
``seq``                 the bus's sequence number; every message takes the next
``epoch``               a random name the first process sets; a Redis that lost
                        its data has none, or another: every process flushes
``i:<table>:<key>``     a hash of one item's shared copies, a field per site and
                        request (``item``)
``g:i:<table>:<key>``   the item's generation: the ``seq`` of its last drop
``g:q:<table>``         the generation of the table's pages: any item's drop
``g:t:<table>``         the table's generation: a drop of the whole table
``g:all``               the namespace's generation (``clear()``)
``q:<table>:<digest>``  one page's shared copy (``page``)
``l:<digest>``          a miss's lease (``lease``)
``filled``              the channel lease holders announce their fills on
``s:c|l|w:<table>...``  the streams invalidator's checkpoints, leases, watermarks
                        (``aiodax.streams._redis``)
======================  =========================================================

A shared copy records the generations it was read under; a copy whose item,
table or namespace was dropped since is a miss (a write never sets a copy, it
only moves a generation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Any, Final

import msgpack

from ..._rules.wire import ItemKey

VERSION: Final = "v1"


def _digest(value: Any) -> str:
    return hashlib.blake2b(msgpack.packb(value, use_bin_type=True), digest_size=16).hexdigest()


def key_digest(key: ItemKey) -> str:
    """An item key's name in Redis, the same in every process."""
    return _digest(list(key))


def request_digest(site: str, operation: str, request: Hashable | dict[str, Any]) -> str:
    """A read request's name in Redis: what it asks, of which site's DynamoDB."""
    return _digest([site, operation, _plain(request)])


#: What a read request may carry that does not change the answer's data: a copy read
#: one way answers the other (``ConsistentRead`` is the copy's to record).
_NOT_IN_DIGEST: Final = frozenset({"ConsistentRead", "ReturnConsumedCapacity"})


def shared_request_digest(site: str, operation: str, request: dict[str, Any]) -> str:
    """The name of what a read asks, shared by the requests that differ only in how
    they read and what they report (``ConsistentRead``, ``ReturnConsumedCapacity``):
    the field of a GetItem's copy in the item's hash, a page's key, a lease's key."""
    asked = {name: value for name, value in request.items() if name not in _NOT_IN_DIGEST}
    return request_digest(site, operation, asked)


def _plain(value: Any) -> Any:
    """``value`` with its dicts' keys sorted, so that equal requests digest alike."""
    if isinstance(value, dict):
        return [[name, _plain(value[name])] for name in sorted(value)]
    if isinstance(value, list | tuple):
        return [_plain(part) for part in value]
    return value


class Keys:
    """Every Redis key and channel of one namespace."""

    __slots__ = ("bus", "epoch", "everything", "filled", "prefix", "seq")

    def __init__(self, namespace: str) -> None:
        self.prefix = f"aiodax:{VERSION}:{{{namespace}}}:"
        self.bus = self.prefix + "bus"
        self.seq = self.prefix + "seq"
        self.epoch = self.prefix + "epoch"
        self.everything = self.prefix + "g:all"
        self.filled = self.prefix + "filled"

    def item(self, table: str, key_name: str) -> str:
        return f"{self.prefix}i:{table}:{key_name}"

    def item_generation(self, table: str, key_name: str) -> str:
        return f"{self.prefix}g:i:{table}:{key_name}"

    def page_generation(self, table: str) -> str:
        return f"{self.prefix}g:q:{table}"

    def table_generation(self, table: str) -> str:
        return f"{self.prefix}g:t:{table}"

    def page(self, table: str, request_name: str) -> str:
        return f"{self.prefix}q:{table}:{request_name}"

    def lease(self, request_name: str) -> str:
        return f"{self.prefix}l:{request_name}"

    def watermarks(self, table: str) -> str:
        """The streams invalidator's per-shard watermarks of ``table`` (``aiodax.streams``)."""
        return f"{self.prefix}s:w:{table}"

"""Which tables PartiQL statements write: pure rules, no I/O.

``ExecuteStatement``, ``BatchExecuteStatement`` and ``ExecuteTransaction`` carry
PartiQL text.  aiodax does not cache their reads (a ``SELECT`` is passed through),
but their writes change items the cache may hold, so it must know which tables a
statement writes.  Only the statement's head is read: ``INSERT INTO t``,
``UPDATE t``, ``DELETE FROM t`` (``t`` bare or double-quoted, any case of the
keywords).  Which item a statement changes is left to its ``WHERE`` clause, which
aiodax does not parse: the whole table is invalidated.  A statement whose head is
none of these and not ``SELECT`` or ``EXISTS`` (a comment first, say) is not
understood, and the caller must treat every table as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_READ: Final = re.compile(r"\s*(?:SELECT|EXISTS)\b", re.IGNORECASE)
_WRITE: Final = re.compile(
    r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:"([^"]+)"|([A-Za-z0-9_.\-]+))',
    re.IGNORECASE,
)


def written_tables(statements: Iterable[object]) -> frozenset[str] | None:
    """The tables ``statements`` write; empty if they only read.

    ``None`` when a statement is not understood (or not a string): any table may
    have been written.
    """
    tables: set[str] = set()
    for statement in statements:
        if not isinstance(statement, str):
            return None
        if _READ.match(statement):
            continue
        write = _WRITE.match(statement)
        if write is None:
            return None
        tables.add(write.group(1) or write.group(2))
    return frozenset(tables)

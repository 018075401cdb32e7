"""Write-through: every write plan sent, then the cache brought up to date before the
caller hears.

A write goes plan → guards.begin → DynamoDB → guards.finish → store or drop:

- on success, each key it names gets its new image (a put, an ``ALL_NEW``
  update, a batch put) or is dropped (deletes store a missing item; unknown
  images, and keys another write overlapped, are dropped), and the pages it makes
  stale are dropped; an unkeyed write drops its tables, a PartiQL write aiodax
  cannot read drops everything;
- on failure, the cache is left alone only if the write surely did not happen
  (``_backend.write_surely_not_applied``); otherwise everything it names is
  dropped, since DynamoDB may have applied it.  When DynamoDB may even apply it
  later (``_backend.write_may_still_apply``: a timeout, a lost connection, a 5xx,
  a cancellation while it was out), what it names is also held uncached for the
  time an attempt of the client's may take (``_backend.ambiguous_write_window``;
  ``guards``), so that a read before the landing does not cache the value from
  before it.

The caller's error or answer is DynamoDB's own, except that an ``UpdateItem``
whose caller asked for no ``ReturnValues`` loses the ``ALL_NEW`` attributes aiodax
asked for.
"""

from __future__ import annotations

from typing import Any

from .._backend import (
    Backend,
    ambiguous_write_window,
    write_may_still_apply,
    write_surely_not_applied,
)
from .._log import LOG as _LOG
from .._rules.tables import table_token
from .._rules.writes import (
    INVALIDATE,
    PARTIQL_OPERATIONS,
    ItemRef,
    Outcome,
    WritePlan,
    plan_write,
    tables_named,
)
from .guards import WriteTicket
from .invalidation import Invalidator
from .items import ItemReads
from .shared import Shared


class WriteThrough:
    """Writes through the cache; see the module docstring."""

    __slots__ = ("_invalidator", "_items", "_shared")

    def __init__(self, shared: Shared, items: ItemReads, invalidator: Invalidator) -> None:
        self._shared = shared
        self._items = items
        self._invalidator = invalidator

    async def write(self, backend: Backend, operation: str, request: dict[str, Any]) -> Any:
        """``operation`` (a write, PartiQL included) through the cache."""
        shared = self._shared
        tables = tables_named(operation, request)
        if tables is None:
            return await shared.call(backend, operation, request, "write")
        site = shared.sites.site_of(backend)
        for table in tables:
            shared.sites.note(table_token(table, site))
        schemas = {
            table: await shared.schemas.get(table_token(table, site), backend) for table in tables
        }
        plan = plan_write(operation, request, schemas)
        if plan is None:
            if operation in PARTIQL_OPERATIONS:
                # PartiQL that writes nothing: a read, never cached.
                return await shared.pass_through(backend, operation, request, "bypass")
            return await shared.call(backend, operation, request, "write")
        shared.check_open()
        ticket = shared.guards.begin(plan, site)
        try:
            answer = await shared.call(backend, operation, plan.send, "write")
        except BaseException as error:
            shared.guards.finish(ticket)
            if write_may_still_apply(error):
                shared.stats.ambiguous_writes += 1
                held_until = shared.clock() + ambiguous_write_window(backend)
                self._apply(plan, ticket, site, {}, frozenset(), held_until)
            elif not write_surely_not_applied(error):
                self._apply(plan, ticket, site, {}, frozenset())
            raise
        overlapped = shared.guards.finish(ticket)
        shared.stats.write_throughs += 1
        self._apply(plan, ticket, site, plan.outcomes(answer), overlapped)
        # Acknowledged once the other processes can hear of it (or the bus gave up
        # waiting: then it is queued, and the write is acknowledged all the same).
        await self._invalidator.published()
        return plan.answer_for_caller(answer)

    def _apply(
        self,
        plan: WritePlan,
        ticket: WriteTicket,
        site: int,
        outcomes: dict[ItemRef, Outcome],
        overlapped: frozenset[ItemRef],
        held_until: float | None = None,
    ) -> None:
        """Store or drop each key of a finished write; drop its unkeyed tables.

        The plan names tables as the request spelled them; on ``site`` they are
        tokens (``_rules.tables``), and a drop reaches every token of the table.
        ``held_until``: what is dropped stays uncached until then.
        """
        for ref in ticket.keys:
            spelled, key = ref
            table = table_token(spelled, site)
            outcome = outcomes.get(ref, INVALIDATE)
            stores = outcome is not INVALIDATE and ref not in overlapped
            self._invalidator.drop_item(table, key, discard=not stores, held_until=held_until)
            if stores:
                self._items.store_image(table, key, None, outcome)  # type: ignore[arg-type]
        if plan.everything:
            _LOG.info(
                "aiodax: %s names tables aiodax cannot tell: every cached entry dropped",
                plan.operation,
            )
            self._invalidator.drop_all(held_until=held_until)
        for spelled in plan.unkeyed_tables:
            _LOG.info(
                "aiodax: %s wrote items of %s it cannot name: the table's entries dropped",
                plan.operation,
                spelled,
            )
            self._invalidator.drop_table(table_token(spelled, site), held_until=held_until)

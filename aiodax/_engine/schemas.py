"""Key schemas, asked of DynamoDB once per table.

Writes need a table's key schema (``_rules.schema``) to name the items they
write; BatchGetItem to refuse keys of other attributes.  GetItem never does: a key
of other attributes is never stored, since no fill or write stores under it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .._backend import Backend
from .._flight import Flights
from .._rules.schema import KeySchema
from .._rules.tables import TableToken, spelled_name

Call = Callable[[Backend, str, Mapping[str, Any]], Awaitable[Any]]


class Schemas:
    """Key schemas by table token: one ``DescribeTable`` per table, coalesced.

    A failure is not remembered (the next write asks again), and neither is a
    schema described while the table was changed (``forget``).  A lookup cut short
    by ``aclose`` raises ``closed_error()`` (``CacheClosedError``), as every
    flight's wait does, and a closed cache describes no table.
    """

    __slots__ = ("_call", "_flights", "_forgotten", "_known")

    def __init__(self, call: Call, closed_error: Callable[[], Exception]) -> None:
        #: how to reach DynamoDB (``Shared.call``, which counts requests)
        self._call = call
        self._known: dict[TableToken, KeySchema] = {}
        self._flights: Flights[TableToken, KeySchema] = Flights(closed_error=closed_error)
        #: table → how often it was forgotten: a describe racing a change is not kept
        self._forgotten: dict[TableToken, int] = {}

    def known(self, table: TableToken) -> KeySchema | None:
        return self._known.get(table)

    async def get(self, table: TableToken, backend: Backend) -> KeySchema | None:
        """The table's schema, or ``None`` when DynamoDB would not describe it."""
        found = self._known.get(table)
        if found is not None:
            return found
        flight = self._flights.get(table)
        if flight is None:
            forgotten = self._forgotten.get(table, 0)

            async def describe() -> dict[TableToken, KeySchema]:
                request = {"TableName": spelled_name(table)}
                response = await self._call(backend, "describe_table", request)
                schema = KeySchema.from_description(response["Table"])
                if self._forgotten.get(table, 0) == forgotten:
                    self._known[table] = schema
                return {table: schema}

            flight = self._flights.start((table,), describe)
        try:
            return (await self._flights.wait((flight,)))[table]
        except (ClientError, BotoCoreError, KeyError, StopIteration):
            return None

    async def get_all(
        self, tables: Iterable[TableToken], backend: Backend
    ) -> dict[TableToken, KeySchema | None]:
        return {table: await self.get(table, backend) for table in tables}

    def forget(self, table: TableToken) -> None:
        self._known.pop(table, None)
        self._forgotten[table] = self._forgotten.get(table, 0) + 1
        self._flights.detach(table)

    async def aclose(self) -> None:
        await self._flights.aclose()

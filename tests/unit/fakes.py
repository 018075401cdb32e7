"""Server-free stand-ins for what a ``Cache`` talks to: a backend, a bus, a shared tier."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import aiodax

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

METADATA: Mapping[str, Any] = {"RequestId": "fake", "HTTPStatusCode": 200, "RetryAttempts": 0}


class FakeBackend:
    """Just enough of an aiobotocore DynamoDB client for ``Cache.wrap``, on a dict.

    Tables have a string partition key ``pk``; ``items[table][pk]`` is a wire item.
    Every call is counted in ``calls`` and recorded in ``requests``.
    """

    def __init__(self, items: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> None:
        self.meta = SimpleNamespace(
            service_model=SimpleNamespace(service_name="dynamodb"),
            events=SimpleNamespace(),
        )
        self.items: dict[str, dict[str, dict[str, Any]]] = {
            table: {pk: dict(item) for pk, item in rows.items()}
            for table, rows in (items or {}).items()
        }
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: when set, each get_item waits for it after being counted
        self.gate: asyncio.Event | None = None

    def client(self) -> DynamoDBClient:
        """This fake, typed as what ``Cache.wrap`` takes."""
        return cast("DynamoDBClient", self)

    def _record(self, operation: str, request: dict[str, Any]) -> None:
        self.calls[operation] += 1
        self.requests.append((operation, copy.deepcopy(request)))

    def _item(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self.items.get(table, {}).get(key["pk"]["S"])
        return None if found is None else copy.deepcopy(found)

    async def describe_table(self, **request: Any) -> dict[str, Any]:
        self._record("describe_table", request)
        return {
            "Table": {
                "TableName": request["TableName"],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
            "ResponseMetadata": dict(METADATA),
        }

    async def get_item(self, **request: Any) -> dict[str, Any]:
        self._record("get_item", request)
        if self.gate is not None:
            await self.gate.wait()
        answer: dict[str, Any] = {"ResponseMetadata": dict(METADATA)}
        item = self._item(request["TableName"], request["Key"])
        if item is not None:
            answer["Item"] = item
        return answer

    async def batch_get_item(self, **request: Any) -> dict[str, Any]:
        self._record("batch_get_item", request)
        responses: dict[str, list[dict[str, Any]]] = {}
        for table, spec in request["RequestItems"].items():
            found = (self._item(table, key) for key in spec["Keys"])
            responses[table] = [item for item in found if item is not None]
        return {
            "Responses": responses,
            "UnprocessedKeys": {},
            "ResponseMetadata": dict(METADATA),
        }

    async def scan(self, **request: Any) -> dict[str, Any]:
        self._record("scan", request)
        items = [copy.deepcopy(item) for item in self.items.get(request["TableName"], {}).values()]
        return {
            "Items": items,
            "Count": len(items),
            "ScannedCount": len(items),
            "ResponseMetadata": dict(METADATA),
        }

    async def put_item(self, **request: Any) -> dict[str, Any]:
        self._record("put_item", request)
        item = copy.deepcopy(request["Item"])
        self.items.setdefault(request["TableName"], {})[item["pk"]["S"]] = item
        return {"ResponseMetadata": dict(METADATA)}


class RecordingBus:
    """An ``aiodax.InvalidationBus`` that records what the cache does with it."""

    def __init__(self) -> None:
        self.published: list[aiodax.Invalidation] = []
        self.host: aiodax.TierHost | None = None
        self.starts = 0
        self.closes = 0
        self.flushes = 0

    @property
    def apply(self) -> Callable[[aiodax.Invalidation], None] | None:
        return None if self.host is None else self.host.apply

    def publish(self, invalidation: aiodax.Invalidation) -> None:
        self.published.append(invalidation)

    async def flush(self) -> None:
        self.flushes += 1

    async def start(self, host: aiodax.TierHost) -> None:
        self.starts += 1
        self.host = host

    async def aclose(self) -> None:
        self.closes += 1

    def stats(self) -> dict[str, Any]:
        return {"Published": len(self.published)}


class RecordingTier:
    """An ``aiodax.SharedTier`` that records every load, and may answer it itself.

    ``answers[operation]`` makes the tier answer every load of ``operation`` with
    a copy of it, without calling ``fetch``.
    """

    def __init__(self, answers: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.loads: list[aiodax.Load] = []
        self.answers = dict(answers or {})
        #: how old the tier says its own answers are (``Loaded.age``)
        self.age = 0.0
        self.fetched = 0
        self.starts = 0
        self.closes = 0

    async def load(self, load: aiodax.Load, fetch: aiodax.Fetch) -> aiodax.Loaded:
        self.loads.append(load)
        answer = self.answers.get(load.operation)
        if answer is not None:
            return aiodax.Loaded(copy.deepcopy(answer), self.age)
        self.fetched += 1
        return aiodax.Loaded(await fetch())

    async def start(self, host: aiodax.TierHost) -> None:
        self.starts += 1

    async def aclose(self) -> None:
        self.closes += 1

    def stats(self) -> dict[str, Any]:
        return {"Loads": len(self.loads)}

"""Tools for testing code that uses aiodax (and for aiodax's own tests).

``InstrumentedClient`` wraps any DynamoDB client (an aiobotocore client, or
anything with its coroutine methods), counts what reaches it per operation, and
injects latency, held calls and DynamoDB-shaped failures, before or after the
request reached DynamoDB.  Wrap it with ``Cache.wrap`` like a real client::

    raw = InstrumentedClient(client)
    raw.fail("get_item", "ProvisionedThroughputExceededException", times=1)
    cached = cache.wrap(raw)

:mod:`aiodax.testing.servers` starts DynamoDB-compatible servers on 127.0.0.1 (moto's,
AWS's DynamoDB Local) for such tests, and :mod:`aiodax.testing.plugin` offers them
and cached clients as pytest fixtures.

``LaggingReplica`` (:mod:`aiodax.testing.lagging`) is a proxy in front of two such
servers whose eventually consistent reads lag behind writes, as DynamoDB's may;
``CountingProxy`` (:mod:`aiodax.testing.counting`) one in front of one server that
counts what reaches it from every process.

For the Redis tier: ``RedisServer`` (:mod:`aiodax.testing.redis_server`) runs a private,
empty ``redis-server`` on a free port that a test can SIGKILL and restart, and
``TcpFaultProxy`` (:mod:`aiodax.testing.faults`) puts a network between a client and
it that blackholes, delays, resets or refuses on demand.

``FakeStreams`` (:mod:`aiodax.testing.streams`) is a scripted ``dynamodbstreams``
client for ``aiodax.StreamsInvalidator``: shard splits, trimming, expired iterators
and throttling on demand, which neither moto nor DynamoDB Local do.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from aiodax.testing.counting import CountedRequest, CountingProxy
from aiodax.testing.faults import Direction, FaultMode, TcpFaultProxy
from aiodax.testing.lagging import LaggingReplica, ReplicaDiverged, Route
from aiodax.testing.redis_cluster import RedisCluster
from aiodax.testing.redis_server import RedisServer
from aiodax.testing.streams import FakeStreams

__all__ = [
    # fakes and fault injection around a client
    "InstrumentedClient",
    "client_error",
    # proxies in front of DynamoDB-compatible servers
    "CountedRequest",
    "CountingProxy",
    "LaggingReplica",
    "ReplicaDiverged",
    "Route",
    # Redis and the network to it
    "Direction",
    "FaultMode",
    "RedisCluster",
    "RedisServer",
    "TcpFaultProxy",
    # DynamoDB Streams, scripted (splits, trims, expired iterators, throttling)
    "FakeStreams",
]

#: HTTP status DynamoDB answers each error code with (5xx are server faults).
_STATUS = {
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}

When = Literal["before", "after"]


def client_error(
    code: str,
    operation: str,
    message: str = "injected by aiodax.testing",
    *,
    client: Any = None,
) -> ClientError:
    """A ``ClientError`` shaped like DynamoDB's answer with ``code``.

    Given the ``client``, the error is of the class that client raises for that
    code (``client.exceptions.ConditionalCheckFailedException``…).
    """
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": _STATUS.get(code, 400), "RetryAttempts": 0},
    }
    error_class: type[ClientError] = ClientError
    if client is not None:
        error_class = client.exceptions.from_code(code)
    return error_class(response, operation)


@dataclass
class _Rule:
    operation: str
    times: int | None
    delay: float = 0.0
    hold: asyncio.Event | None = None
    error: Callable[[], BaseException] | None = None
    when: When = "before"
    hits: int = field(default=0)

    def take(self) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class InstrumentedClient:
    """A DynamoDB client wrapper that counts calls and injects faults, per operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._rules: list[_Rule] = []
        #: calls that reached the wrapped client, per operation name (``get_item``…)
        self.calls: Counter[str] = Counter()
        #: (operation, request) for each call that reached the wrapped client
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: calls the wrapped client answered (before any ``when="after"`` rule)
        self.answered: Counter[str] = Counter()
        #: calls currently inside the wrapped client or held by a rule
        self.in_flight: Counter[str] = Counter()

    @property
    def meta(self) -> Any:
        return self._client.meta

    @property
    def exceptions(self) -> Any:
        return self._client.exceptions

    @property
    def wrapped(self) -> Any:
        return self._client

    # Rules -------------------------------------------------------------------

    def delay(self, operation: str, seconds: float, *, times: int | None = None) -> None:
        """Sleep ``seconds`` before each of the next ``times`` calls (``None`` = all)."""
        self._rules.append(_Rule(operation, times, delay=seconds))

    def hold(
        self, operation: str, *, times: int | None = 1, when: When = "before"
    ) -> asyncio.Event:
        """Hold the next ``times`` calls until the returned event is set.

        ``when="after"`` holds the answer instead: DynamoDB has already served
        (or applied) the request, the caller just does not know yet.
        """
        event = asyncio.Event()
        self._rules.append(_Rule(operation, times, hold=event, when=when))
        return event

    def fail(
        self,
        operation: str,
        error: str | BaseException | Callable[[], BaseException],
        *,
        times: int | None = 1,
        when: When = "before",
    ) -> None:
        """Fail the next ``times`` calls.

        ``error`` is a DynamoDB error code (raised as the same ``ClientError`` a
        real answer would be), an exception, or a factory of one.  ``when="after"``
        sends the request first, so DynamoDB applied it although the caller sees
        a failure: the ambiguous outcome of a timeout or lost connection.
        """
        if isinstance(error, str):
            code = error

            def make() -> BaseException:
                return client_error(code, _operation_model_name(operation), client=self._client)

        elif isinstance(error, BaseException):
            instance = error

            def make() -> BaseException:
                return instance

        else:
            make = error
        self._rules.append(_Rule(operation, times, error=make, when=when))

    def clear_rules(self) -> None:
        self._rules.clear()

    # Calls -------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in _operations(self._client):
            return attribute

        async def call(**request: Any) -> Any:
            return await self._call(name, attribute, request)

        return call

    async def _call(
        self,
        operation: str,
        method: Callable[..., Coroutine[Any, Any, Any]],
        request: dict[str, Any],
    ) -> Any:
        self.in_flight[operation] += 1
        try:
            rules = [r for r in self._rules if r.operation == operation and r.take()]
            await self._apply([r for r in rules if r.when == "before"])
            self.calls[operation] += 1
            self.requests.append((operation, request))
            response = await method(**request)
            self.answered[operation] += 1
            await self._apply([r for r in rules if r.when == "after"])
            return response
        finally:
            self.in_flight[operation] -= 1

    @staticmethod
    async def _apply(rules: list[_Rule]) -> None:
        for rule in rules:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.hold is not None:
                await rule.hold.wait()
            if rule.error is not None:
                raise rule.error()


def _operations(client: Any) -> Any:
    """The client's API methods (``get_item``…): what gets counted and faulted."""
    return client.meta.method_to_api_mapping


def _operation_model_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))

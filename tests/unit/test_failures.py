"""Whose failure is it (``_rules.failures``), how the loader reads one, and ``Loader.settle``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

import aiodax
from aiodax._engine import Engine
from aiodax._engine.loader import failure_of
from aiodax._flight import Flight
from aiodax._rules.failures import SHARED_CODES, Failure, failure_is_shared
from aiodax.testing import client_error
from tests.support import until

GET = ("get_item", {"TableName": "t", "Key": {"pk": {"S": "a"}}})
GET_COUNTED = ("get_item", {**GET[1], "ReturnConsumedCapacity": "TOTAL"})


# ------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "code",
    [
        "ValidationException",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "SerializationException",
    ],
)
def test_a_client_error_is_the_request_s_own(code: str) -> None:
    failure = Failure(code, 400)
    assert failure.of_the_request
    assert not failure_is_shared(failure, GET, GET_COUNTED)


@pytest.mark.parametrize("code", sorted(SHARED_CODES))
def test_throttling_is_everyone_s(code: str) -> None:
    failure = Failure(code, 400)
    assert not failure.of_the_request
    assert failure_is_shared(failure, GET, GET_COUNTED)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_everyone_s(status: int) -> None:
    assert failure_is_shared(Failure("InternalServerError", status), GET, GET_COUNTED)


def test_no_answer_at_all_is_everyone_s() -> None:
    assert failure_is_shared(Failure(), GET, GET_COUNTED)


def test_a_request_the_sdk_refused_to_send_is_its_own() -> None:
    assert not failure_is_shared(Failure(refused=True), GET, GET_COUNTED)


def test_an_identical_request_s_own_failure_is_shared() -> None:
    reordered = ("get_item", {"Key": {"pk": {"S": "a"}}, "TableName": "t"})
    assert failure_is_shared(Failure("ValidationException", 400), GET, reordered)
    assert failure_is_shared(Failure(refused=True), GET, reordered)


def test_requests_are_compared_type_exact() -> None:
    as_number = ("get_item", {"TableName": "t", "Key": {"pk": {"N": "1"}}})
    as_other_spelling = ("get_item", {"TableName": "t", "Key": {"pk": {"N": "1.0"}}})
    assert not failure_is_shared(Failure("ValidationException", 400), as_number, as_other_spelling)


def test_the_same_parameters_of_another_operation_are_another_request() -> None:
    batch = ("batch_get_item", GET[1])
    assert not failure_is_shared(Failure("ValidationException", 400), batch, GET)


# ------------------------------------------------------- reading an error


def test_a_dynamodb_error_is_read_as_its_code_and_status() -> None:
    assert failure_of(client_error("ValidationException", "GetItem")) == Failure(
        "ValidationException", 400
    )
    assert failure_of(client_error("InternalServerError", "GetItem")) == Failure(
        "InternalServerError", 500
    )


def test_an_error_without_code_or_status_says_nothing_of_the_request() -> None:
    assert not failure_of(ClientError({}, "GetItem")).of_the_request


@pytest.mark.parametrize(
    "error",
    [
        ParamValidationError(report="Invalid type for parameter Key"),
        NoCredentialsError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_what_botocore_refused_to_send_is_the_request_s_own(error: Exception) -> None:
    assert failure_of(error) == Failure(refused=True)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionClosedError(endpoint_url="http://127.0.0.1"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1"),
        TimeoutError(),
        OSError("connection reset"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_lost_answer_says_nothing_of_the_request(error: Exception) -> None:
    assert failure_of(error) == Failure()


# ----------------------------------------------------------------- settle


def start(
    engine: Engine, key: str, gate: asyncio.Event, error: Exception | None = None
) -> Flight[Any, Any]:
    async def fetch() -> dict[Any, Any]:
        await gate.wait()
        if error is not None:
            raise error
        return {key: f"value {key}"}

    return engine.loader.start(
        engine.shared.page_flights, (key,), fetch, lambda k, v, t: None, lambda k: (), lambda: GET
    )


async def test_settle_keeps_what_the_other_flights_bring_when_one_fails() -> None:
    engine = Engine(aiodax.Cache().config)
    flights = engine.shared.page_flights
    gates = asyncio.Event(), asyncio.Event()
    failing = start(engine, "a", gates[0], ValueError("a"))
    slow = start(engine, "b", gates[1])
    leader = asyncio.create_task(engine.shared.wait(flights, (slow,)))
    settled = asyncio.create_task(engine.loader.settle(flights, [failing, slow]))
    await until(lambda: slow.waiters == 2)
    gates[0].set()
    await until(lambda: failing.task.done())
    await asyncio.sleep(0)
    gates[1].set()

    results, failed = await settled
    assert results == {"b": "value b"}
    assert [(flight, type(error)) for flight, error in failed] == [(failing, ValueError)]
    assert await leader == {"b": "value b"}
    await engine.aclose()


async def test_settle_fails_with_none_a_flight_it_was_the_last_caller_of() -> None:
    engine = Engine(aiodax.Cache().config)
    flights = engine.shared.page_flights
    gates = asyncio.Event(), asyncio.Event()
    failing = start(engine, "a", gates[0], ValueError("a"))
    abandoned = start(engine, "b", gates[1])
    leader = asyncio.create_task(engine.shared.wait(flights, (abandoned,)))
    settled = asyncio.create_task(engine.loader.settle(flights, [failing, abandoned]))
    await until(lambda: abandoned.waiters == 2)
    leader.cancel()
    await until(lambda: abandoned.waiters == 1)
    gates[0].set()  # settle leaves both flights: "b" has nobody left and is cancelled

    results, failed = await settled
    assert results == {}
    assert [(flight, type(error)) for flight, error in failed] == [
        (failing, ValueError),
        (abandoned, type(None)),
    ]
    with pytest.raises(asyncio.CancelledError):
        await abandoned.task
    await engine.aclose()


async def test_settle_raises_the_caller_s_own_flight_s_failure_at_once() -> None:
    engine = Engine(aiodax.Cache().config)
    flights = engine.shared.page_flights
    gates = asyncio.Event(), asyncio.Event()
    own = start(engine, "a", gates[0], ValueError("own"))
    other = start(engine, "b", gates[1])
    gates[0].set()

    with pytest.raises(ValueError, match="own"):
        await engine.loader.settle(flights, [own, other], own=own)
    assert not other.task.done()
    await engine.aclose()


async def test_settle_of_a_closing_cache_raises_cache_closed() -> None:
    engine = Engine(aiodax.Cache().config)
    flights = engine.shared.page_flights
    gate = asyncio.Event()
    flight = start(engine, "a", gate)
    settled = asyncio.create_task(engine.loader.settle(flights, [flight]))
    await until(lambda: flight.waiters == 1)

    await engine.aclose()

    with pytest.raises(aiodax.CacheClosedError):
        await settled


async def test_what_a_flight_sent_is_forgotten_when_it_lands() -> None:
    engine = Engine(aiodax.Cache().config)
    gate = asyncio.Event()
    flight = start(engine, "a", gate)
    assert engine.loader.sent_by(flight)() == GET
    gate.set()
    await flight.task
    await asyncio.sleep(0)
    with pytest.raises(KeyError):
        engine.loader.sent_by(flight)
    await engine.aclose()

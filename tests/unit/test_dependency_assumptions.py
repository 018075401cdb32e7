"""What aiodax assumes of botocore's, boto3's and aioboto3's insides, pinned.

aiodax reaches past these libraries' public API in a few places (listed in
docs/operations.md, "Supported versions").  Each test here names the assumption
and the aiodax code resting on it, so that a version outside the tested range
fails with a message saying what changed, not with a wrong answer far away.
No server: building a client opens no connection.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest
from aioboto3.dynamodb.table import BatchWriter
from boto3.dynamodb.transform import (  # type: ignore[import-untyped]
    TransformationInjector,
    copy_dynamodb_params,
)
from botocore.credentials import Credentials
from botocore.endpoint import DEFAULT_TIMEOUT

from aiodax._backend import _PYTHON_HANDLERS, speaks_python, wire_client
from aiodax._engine.sites import site_identity

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.service_resource import DynamoDBServiceResource

_SETTINGS: dict[str, Any] = {
    "region_name": "us-east-1",
    "endpoint_url": "http://127.0.0.1:1",
    "aws_access_key_id": "assumption-key",
    "aws_secret_access_key": "secret",
}


@pytest.fixture
async def plain_client() -> AsyncIterator[DynamoDBClient]:
    async with aioboto3.Session().client("dynamodb", **_SETTINGS) as client:
        yield client


@pytest.fixture
async def resource() -> AsyncIterator[DynamoDBServiceResource]:
    async with aioboto3.Session().resource("dynamodb", **_SETTINGS) as resource:
        yield resource


def _handler_ids(client: Any) -> set[str]:
    events = client.meta.events
    emitter = getattr(events, "_emitter", None)
    assert emitter is not None, (
        "botocore's client.meta.events no longer wraps a HierarchicalEmitter in _emitter: "
        "aiodax._backend.speaks_python cannot tell a resource's client from a plain one"
    )
    handlers = getattr(emitter, "_unique_id_handlers", None)
    assert isinstance(handlers, dict), (
        "botocore's HierarchicalEmitter no longer keeps _unique_id_handlers (a dict): "
        "aiodax._backend.speaks_python cannot see boto3's DynamoDB handlers"
    )
    return set(handlers)


def test_a_resource_s_client_registers_boto3_s_python_handlers_under_known_ids(
    resource: DynamoDBServiceResource, plain_client: DynamoDBClient
) -> None:
    registered = _handler_ids(resource.meta.client)
    missing = {unique_id for _, unique_id in _PYTHON_HANDLERS} - registered
    assert not missing, (
        f"boto3's DynamoDB resource no longer registers {sorted(missing)} on its client: "
        "update aiodax._backend._PYTHON_HANDLERS (what wire_client removes)"
    )
    assert speaks_python(resource.meta.client)
    assert not speaks_python(plain_client)


def test_a_copied_emitter_unregisters_without_touching_the_original(
    resource: DynamoDBServiceResource,
) -> None:
    client = resource.meta.client
    twin = wire_client(client)  # copy.copy(events), then unregister by unique id

    assert not speaks_python(twin), (
        "unregistering boto3's handlers by unique_id on a copy of client.meta.events "
        "left them registered: aiodax._backend.wire_client would cache Python values"
    )
    assert speaks_python(client), (
        "copy.copy(client.meta.events) shares its handlers with the original: "
        "aiodax._backend.wire_client would strip the caller's resource of boto3's conversion"
    )
    assert twin.meta.events is not client.meta.events


def test_a_client_keeps_its_credentials_in_its_request_signer(
    plain_client: DynamoDBClient,
) -> None:
    signer = getattr(plain_client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", None)
    assert isinstance(credentials, Credentials), (
        "botocore's client no longer keeps its credentials in _request_signer._credentials: "
        "aiodax._engine.sites.site_identity would treat every client as a site of its own"
    )
    identity: Any = site_identity(plain_client)
    assert identity[2] == ("access key", "assumption-key")


def test_a_paginator_calls_the_method_kept_in_its_method_attribute(
    plain_client: DynamoDBClient,
) -> None:
    paginator: Any = plain_client.get_paginator("query")
    assert getattr(paginator, "_method", None) == plain_client.query, (
        "botocore's Paginator no longer keeps the method it calls in _method: "
        "aiodax's CachedClient.get_paginator would page past the cache"
    )


def test_a_client_maps_its_method_names_to_operation_names(
    plain_client: DynamoDBClient,
) -> None:
    mapping = plain_client.meta.method_to_api_mapping
    assert mapping.get("get_item") == "GetItem", (
        "client.meta.method_to_api_mapping no longer maps get_item to GetItem: "
        "aiodax._facades.python.Converter finds operation models by it"
    )


def test_boto3_s_transformation_helpers_have_the_methods_aiodax_calls() -> None:
    injector = TransformationInjector()
    for method in (
        "inject_condition_expressions",
        "inject_attribute_value_input",
        "inject_attribute_value_output",
    ):
        assert callable(getattr(injector, method, None)), (
            f"boto3.dynamodb.transform.TransformationInjector lost {method}: "
            "aiodax._facades.python.Converter converts Python values with it"
        )
    params = {"Key": {"pk": "a"}}
    copied = copy_dynamodb_params(params)
    assert copied == params and copied["Key"] is not params["Key"], (
        "boto3's copy_dynamodb_params no longer deep-copies: cached values could be shared"
    )


def test_aioboto3_s_batch_writer_takes_the_arguments_cached_table_passes() -> None:
    parameters = inspect.signature(BatchWriter).parameters
    missing = {"flush_amount", "overwrite_by_pkeys", "on_exit_loop_sleep"} - set(parameters)
    assert not missing, (
        f"aioboto3's BatchWriter no longer takes {sorted(missing)}: "
        "aiodax._facades.resource.CachedTable.batch_writer builds one with them"
    )
    assert list(parameters)[:2] == ["table_name", "client"]


def test_botocore_s_default_timeout_is_a_number_of_seconds() -> None:
    assert isinstance(DEFAULT_TIMEOUT, int | float) and DEFAULT_TIMEOUT > 0, (
        "botocore.endpoint.DEFAULT_TIMEOUT is not a positive number: "
        "aiodax._backend.ambiguous_write_window counts an unset timeout as it"
    )

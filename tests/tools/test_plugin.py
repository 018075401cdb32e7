"""aiodax's pytest plugin, as a user's project sees it (run in a pytester sandbox)."""

from __future__ import annotations

import sys

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

import aiodax

pytestmark = pytest.mark.asyncio


async def test_client(aiodax_client, aiodax_cache):
    assert isinstance(aiodax_client, aiodax.CachedClient)
    assert aiodax_client.cache is aiodax_cache
    await aiodax_client.create_table(
        TableName="plugin-client",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        item = {"pk": {"S": "a"}, "v": {"N": "1"}}
        await aiodax_client.put_item(TableName="plugin-client", Item=item)
        got = await aiodax_client.get_item(TableName="plugin-client", Key={"pk": {"S": "a"}})
        assert got["Item"] == item
        assert got["ResponseMetadata"]["CacheStatus"] == "hit"
    finally:
        await aiodax_client.delete_table(TableName="plugin-client")


async def test_resource(aiodax_resource, aiodax_moto_endpoint):
    assert isinstance(aiodax_resource, aiodax.CachedResource)
    assert aiodax_moto_endpoint.startswith("http://127.0.0.1:")
    table = await aiodax_resource.create_table(
        TableName="plugin-resource",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        await table.put_item(Item={"pk": "a", "v": 1})
        assert (await table.get_item(Key={"pk": "a"}))["Item"] == {"pk": "a", "v": 1}
    finally:
        await table.delete()


async def test_cache_is_fresh(aiodax_cache):
    assert aiodax_cache.stats()["CurrentEntries"] == 0
    assert not aiodax_cache.closed
"""


def test_the_plugin_is_registered_as_an_entry_point() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "aiodax"]
    assert entry.value == "aiodax.testing.plugin"


def test_importing_the_plugin_does_not_import_moto(pytester: pytest.Pytester) -> None:
    result = pytester.run(
        sys.executable,
        "-c",
        "import sys, aiodax.testing.plugin; print('moto' in sys.modules)",
    )
    assert result.ret == 0
    assert result.outlines[-1] == "False"


def test_a_users_tests_use_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # the user's own configuration: pytest-asyncio in strict mode, warnings as errors
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = strict\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_dynamodb_local_fixture_runs_or_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_local="""
def test_local(aiodax_dynamodb_local_endpoint):
    assert aiodax_dynamodb_local_endpoint.startswith("http://127.0.0.1:")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 1, outcomes

"""``aiodax stampede --processes N``: the load from N real processes, uncached, with a cache
per process and with the Redis tier; and the pure parts it judges staleness with."""

from __future__ import annotations

import json

import pytest

from aiodax import cli as command
from aiodax.stampede.load import Operation
from aiodax.stampede.processes import deal, staleness

# -------------------------------------------------------------- pure parts


def test_the_plan_is_dealt_round_robin_so_every_process_gets_every_key_s_share() -> None:
    plan: list[Operation] = [("get", 0), ("get", 1), ("put", 0), ("get", 0), ("get", 1)]
    assert deal(plan, 2) == [
        (("get", 0), ("put", 0), ("get", 1)),
        (("get", 1), ("get", 0)),
    ]


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def test_a_read_of_the_old_version_after_a_later_write_was_acknowledged_is_stale() -> None:
    writes = [(0, _ns(1.0), 1.1)]
    stale, worst = staleness([(0, 0, 1.3)], writes)
    assert stale == 1
    assert worst == pytest.approx(0.2)


def test_a_read_that_began_before_the_write_was_acknowledged_is_not_stale() -> None:
    assert staleness([(0, 0, 1.05)], [(0, _ns(1.0), 1.1)]) == (0, 0.0)


def test_a_read_of_the_newest_version_is_not_stale() -> None:
    assert staleness([(0, _ns(1.0), 2.0)], [(0, _ns(1.0), 1.1)]) == (0, 0.0)


def test_writes_that_overlapped_may_land_in_either_order_so_either_read_is_fine() -> None:
    # V is sent first and acknowledged last; W overlapped it.
    writes = [(0, _ns(1.0), 1.5), (0, _ns(1.2), 1.3)]
    assert staleness([(0, _ns(1.0), 2.0), (0, _ns(1.2), 2.0)], writes) == (0, 0.0)


def test_other_items_writes_do_not_make_a_read_stale() -> None:
    assert staleness([(1, 0, 5.0)], [(0, _ns(1.0), 1.1)]) == (0, 0.0)


# ---------------------------------------------------------------- the runs


async def test_processes_report_three_runs_and_the_uncached_one_is_never_stale(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--processes", "2", "--requests", "300", "--keys", "5", "--write-ratio", "0.1"]
    assert await command.main_async(["stampede", *args, "--concurrency", "8", "--json"]) == 0
    runs = {run["mode"]: run for run in json.loads(capsys.readouterr().out)}
    assert list(runs) == ["uncached", "per-process caches", "Redis tier"]
    assert all(run["requests"] == 300 and run["errors"] == 0 for run in runs.values())
    # moto is strongly consistent: reads that bypass every cache are never stale.
    assert runs["uncached"]["stale_reads"] == 0
    writes = runs["uncached"]["calls"]["put_item"]
    assert all(run["calls"]["put_item"] == writes for run in runs.values())
    uncached_reads = runs["uncached"]["calls"]["get_item"]
    assert runs["per-process caches"]["calls"]["get_item"] < uncached_reads


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redis", "redis://127.0.0.1:6379/0"], "--redis joins the caches of several"),
        (["--processes", "2", "--op", "query"], "--processes reads with GetItem only"),
        (["--processes", "2", "--redis", "redis://10.0.0.7:6379/0"], "refusing"),
        (["--processes", "0"], "must be between 1 and 32"),
    ],
)
def test_bad_process_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command.main(["stampede", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err

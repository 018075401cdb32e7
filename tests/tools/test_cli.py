"""The ``aiodax stampede`` command: arguments, the load it plans, what it reports.

The command runs in-process (``aiodax.cli.main_async``) with small loads
against its own embedded moto server, or against the suite's servers with
``--endpoint-url``; one test runs it as ``python -m aiodax`` to see it exit without a
word on stderr.
Nothing here asserts timing: only counts that the cache makes exact.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aiodax import cli as command
from aiodax.stampede import (
    REPORT_KEYS,
    LoadResult,
    LoadSpec,
    RunResult,
    cli,
    percentile,
    plan_operations,
    summarize,
)
from aiodax.stampede.progress import Progress

SMALL_LOAD = ["--requests", "300", "--concurrency", "50", "--keys", "1"]


async def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """Run the command in-process with ``--json``; return the one object it printed."""
    assert await command.main_async(["stampede", *args, "--json"]) == 0
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads(out)  # exactly one JSON document, nothing else
    return report


# ---------------------------------------------------------------------------
# Against the embedded moto server


async def test_one_hot_key_reaches_dynamodb_once_through_the_cache(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = await run_json(capsys, *SMALL_LOAD)

    assert set(report) == {"uncached", "cached"}
    uncached, cached = report["uncached"], report["cached"]
    for run in (uncached, cached):
        assert set(REPORT_KEYS) <= set(run)
        assert run["requests"] == 300
        assert run["errors"] == 0 and run["errors_by_kind"] == {}
        assert 0 <= run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] <= run["max_ms"]
        assert run["throughput_rps"] > 0
    assert uncached["backend_requests"] == 300
    assert uncached["coalesced"] == 0 and uncached["hit_ratio"] == 0.0
    assert cached["backend_requests"] <= 2
    assert cached["backend_requests_by_operation"].get("get_item", 0) <= 2
    # All 50 workers miss together at the start: one leads, the rest join its flight.
    assert cached["coalesced"] >= 1
    # Every reader but the ones whose requests went out was served without one.
    assert cached["hit_ratio"] == round(1 - cached["backend_requests"] / 300, 4)


async def test_query_stampede_sends_one_query(capsys: pytest.CaptureFixture[str]) -> None:
    report = await run_json(
        capsys, "--op", "query", "--requests", "60", "--concurrency", "20", "--keys", "1"
    )

    assert report["uncached"]["backend_requests_by_operation"] == {"query": 60}
    cached = report["cached"]
    assert cached["errors"] == 0
    # DescribeTable may be asked once, for the partition the page is filed under.
    assert cached["backend_requests_by_operation"].get("query") == 1
    assert set(cached["backend_requests_by_operation"]) <= {"query", "describe_table"}


async def test_writes_go_through_and_every_request_is_answered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = await run_json(
        capsys,
        "--op",
        "mixed",
        "--write-ratio",
        "0.2",
        "--keys",
        "5",
        "--requests",
        "80",
        "--concurrency",
        "20",
    )

    plan = plan_operations(LoadSpec(requests=80, keys=5, write_ratio=0.2, op="mixed"))
    puts = sum(1 for kind, _ in plan if kind == "put")
    for run in report.values():
        assert run["requests"] == 80
        assert run["errors"] == 0
        # Writes always reach DynamoDB, cached or not.
        assert run["backend_requests_by_operation"].get("put_item") == puts
    assert report["cached"]["backend_requests"] < report["uncached"]["backend_requests"]


async def test_text_report_shows_both_runs_and_stops_its_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["stampede", "--requests", "60", "--concurrency", "10"]
    assert await command.main_async(args) == 0
    out = capsys.readouterr().out

    lines = out.splitlines()
    header = next(line for line in lines if line.split() == ["uncached", "cached"])
    for name in REPORT_KEYS:
        row = next(line for line in lines if line.startswith(name + " "))
        assert len(row.split()) == 3, row  # the name, then one value per run
    backend_row = next(line for line in lines if line.startswith("backend_requests "))
    assert backend_row.split()[1:] == ["60", "1"]
    # What it is about to do comes first, and what the rows mean last.
    assert lines[0].startswith("aiodax stampede: 60 get requests over 1 key, from 10 workers")
    assert "(10 HTTP connections)" in lines[0]
    assert any(line.startswith("  coalesced ") for line in lines[lines.index(header) :])
    assert "99.9%" in out  # the legend's example of a hit ratio

    # The embedded server is gone: its port refuses connections.
    match = re.search(r"http://127\.0\.0\.1:(\d+)", out)
    assert match is not None, out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(match[1])), timeout=2).close()


def test_module_entry_point_exits_cleanly() -> None:
    """``python -m aiodax``, warnings as errors: a clean run prints nothing on stderr."""
    env = {
        **os.environ,
        # A child process: no real AWS identity or profile may leak into it either.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sys.executable, "-W", "error", "-m", "aiodax", "stampede"]
    completed = subprocess.run(
        [*command, "--requests", "40", "--concurrency", "10", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    report = json.loads(completed.stdout)
    assert report["uncached"]["backend_requests"] == 40
    assert report["cached"]["backend_requests"] <= 2


# ---------------------------------------------------------------------------
# Against a running server (the suite's moto and DynamoDB Local)


async def test_existing_table_at_endpoint_url(
    endpoint: str, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await run_json(
        capsys,
        "--endpoint-url",
        endpoint,
        "--table",
        table,
        "--requests",
        "60",
        "--concurrency",
        "20",
    )

    assert report["uncached"]["backend_requests"] == 60
    assert report["cached"]["backend_requests"] <= 2
    assert report["uncached"]["errors"] == report["cached"]["errors"] == 0


async def test_missing_table_fails_with_a_clear_message(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["stampede", "--endpoint-url", moto_endpoint, "--table", "no-such-table"]
    assert await command.main_async(args) == 1

    err = capsys.readouterr().err
    assert "table 'no-such-table' not found" in err


async def test_missing_dynamodb_local_fails_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIODAX_DYNAMODB_LOCAL_DIR", str(tmp_path))

    assert await command.main_async(["stampede", "--backend", "dynamodb-local"]) == 1

    err = capsys.readouterr().err
    assert "DynamoDBLocal.jar not found" in err
    assert "scripts/fetch-dynamodb-local" in err


# ---------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--requests", "-5"], "--requests: must be between 1"),
        (["--requests", "0"], "--requests: must be between 1"),
        (["--requests", "many"], "--requests: expected an integer"),
        (["--concurrency", "0"], "--concurrency: must be between 1"),
        (["--keys", "-1"], "--keys: must be between 1"),
        (["--skew", "-0.5"], "--skew: must be in [0"),
        (["--write-ratio", "1.5"], "--write-ratio: must be in [0, 1]"),
        (["--write-ratio", "-0.1"], "--write-ratio: must be in [0, 1]"),
        (["--write-ratio", "nan"], "--write-ratio: must be in [0, 1]"),
        (["--duration", "0"], "--duration: must be in (0"),
        (["--op", "scan"], "--op: invalid choice"),
        (["--endpoint-url", "http://127.0.0.1:8000"], "--endpoint-url needs --table"),
        (
            ["--endpoint-url", "http://127.0.0.1:8000", "--table", "t", "--backend", "moto"],
            "--backend starts an embedded server",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command.main(["stampede", *args])

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "http://10.0.0.7:8000",
        "http://0.0.0.0:8000",
        "http://127.0.0.1.example.com:8000",
        "http://localhost.example.com:8000",
        "ftp://127.0.0.1:8000",
        "127.0.0.1:8000",
    ],
)
def test_endpoint_url_off_this_machine_is_refused(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command.main(["stampede", "--endpoint-url", url, "--table", "t"])

    assert exit_info.value.code == 2
    assert f"--endpoint-url: refusing {url!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000/"]
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert cli.loopback_url(url) == url


def test_plot_without_matplotlib_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "matplotlib_available", lambda: False)

    with pytest.raises(SystemExit) as exit_info:
        command.main(["stampede", "--plot", "out.png"])

    assert exit_info.value.code == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_plot_into_a_missing_directory_exits_2_before_any_load(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "matplotlib_available", lambda: True)

    with pytest.raises(SystemExit) as exit_info:
        command.main(["stampede", "--plot", "/nonexistent-aiodax-dir/out.png"])

    assert exit_info.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command.main([])

    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# The plan and the numbers (pure)


def test_plan_is_reproducible_and_zipf_skewed() -> None:
    spec = LoadSpec(requests=5000, keys=50, skew=1.1, seed=7)

    plan = plan_operations(spec)

    assert plan == plan_operations(spec)
    assert plan != plan_operations(LoadSpec(requests=5000, keys=50, skew=1.1, seed=8))
    assert {kind for kind, _ in plan} == {"get"}
    counts = Counter(rank for _, rank in plan)
    assert set(counts) <= set(range(50))
    # Rank 0 carries weight 1, rank 9 weight 10**-1.1 (about 0.08): far apart.
    assert counts[0] > 5 * counts[9]


def test_plan_without_skew_is_uniform_ish() -> None:
    plan = plan_operations(LoadSpec(requests=4000, keys=4, skew=0.0))
    counts = Counter(rank for _, rank in plan)
    assert all(800 < counts[rank] < 1200 for rank in range(4))


def test_plan_mixes_reads_and_writes_as_asked() -> None:
    assert all(kind == "put" for kind, _ in plan_operations(LoadSpec(write_ratio=1.0)))
    mixed = Counter(kind for kind, _ in plan_operations(LoadSpec(requests=4000, op="mixed")))
    assert set(mixed) == {"get", "query"}
    assert 1600 < mixed["get"] < 2400
    queries = plan_operations(LoadSpec(requests=100, op="query", write_ratio=0.0))
    assert {kind for kind, _ in queries} == {"query"}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.5) == 3.0
    assert percentile([], 0.5) == 0.0


def test_summary_of_a_cached_run() -> None:
    load = LoadResult(latencies=[0.001] * 9 + [0.1], errors=Counter(Throttled=2), elapsed=0.5)
    stats = {
        "ItemCacheHits": 6,
        "ItemCacheMisses": 2,
        "QueryCacheHits": 1,
        "QueryCacheMisses": 1,
        "CoalescedRequests": 1,
    }
    run = RunResult(load, Counter(get_item=1, query=1), cached=True, cache_stats=stats)

    summary = summarize(run)

    assert summary["requests"] == 10
    assert summary["backend_requests"] == 2
    assert summary["coalesced"] == 1
    # 10 reads, 2 of them sent to DynamoDB: 8 served without their own request.
    assert summary["hit_ratio"] == 0.8
    assert summary["cache_hits"] == 7
    assert summary["mean_ms"] == 10.9
    assert summary["errors"] == 2 and summary["errors_by_kind"] == {"Throttled": 2}
    assert summary["p50_ms"] == 1.0 and summary["max_ms"] == 100.0
    assert summary["throughput_rps"] == 20.0


def test_summary_of_an_uncached_run_has_no_cache_numbers() -> None:
    run = RunResult(LoadResult(latencies=[0.01], elapsed=0.01), Counter(get_item=1), cached=False)

    summary = summarize(run)

    assert summary["coalesced"] == 0 and summary["hit_ratio"] == 0.0


def test_help_shows_the_defaults_the_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        command.main(["stampede", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    defaults = LoadSpec()
    for flag, value in (
        ("--requests", defaults.requests),
        ("--concurrency", defaults.concurrency),
        ("--keys", defaults.keys),
        ("--duration", f"{defaults.duration:g}"),
    ):
        assert re.search(rf"{flag} \S+ .*?\(default: {value}\)", shown), flag
    assert "(default: as many as --concurrency)" in shown
    # scripts/demo adds nothing of its own: its --help is the command's.
    demo = (Path(__file__).parents[2] / "scripts" / "demo").read_text()
    assert demo.rstrip().endswith('exec .venv/bin/aiodax stampede "$@"')


def test_each_worker_has_a_connection_unless_told_otherwise() -> None:
    assert LoadSpec(concurrency=37).pool_size == 37
    assert LoadSpec(concurrency=37, max_connections=10).pool_size == 10


def test_progress_shows_elapsed_seconds_and_an_estimate_of_those_left() -> None:
    stream = io.StringIO()
    now = [100.0]
    progress = Progress(stream, clock=lambda: now[0])
    progress.update("uncached", 0, 1000, 0)
    now[0] += 2.0
    progress.update("uncached", 250, 1000, 3)
    assert stream.getvalue().rsplit("\r", 1)[-1].rstrip() == (
        "uncached: 250/1,000 requests, 2.0 s, about 6 s left, 3 errors"
    )
    progress.update("cached", 1000, 1000, 0)  # a new run starts its own clock
    assert stream.getvalue().rsplit("\r", 1)[-1].rstrip() == ("cached: 1,000/1,000 requests, 0.0 s")


async def test_plot_draws_both_runs_into_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "stampede.png"
    args = ["stampede", "--requests", "40", "--concurrency", "10", "--plot", str(path)]
    assert await command.main_async(args) == 0
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "plot written to" in capsys.readouterr().err

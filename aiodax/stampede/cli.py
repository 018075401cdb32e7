"""``aiodax stampede``: its arguments, their checks, and the run.

``aiodax stampede`` drives a hot-key stampede against a DynamoDB endpoint on this
machine, first with a plain aioboto3 client and then through ``aiodax.Cache``, and
reports side by side how many requests reached DynamoDB and how long reads took.
By default it starts its own moto server on 127.0.0.1 with a seeded table; it never
sends a request anywhere but loopback.

This module parses and checks the arguments, starts the embedded server and shows
progress; the load, the runs and the report are the rest of :mod:`aiodax.stampede`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import sys
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from ..testing.redis_server import RedisServer
from ..testing.servers import REGION, ServerUnavailable, dynamodb_local, moto_server
from .load import OP_CHOICES, LoadSpec
from .plot import matplotlib_available, write_plot
from .processes import format_processes_report, run_processes
from .progress import Progress
from .report import format_plan, format_report, report_object
from .runs import run_stampede
from .target import Target, TargetError

T = TypeVar("T")

PROG: Final = "aiodax"
BACKENDS: Final = ("moto", "dynamodb-local")
#: The hosts a target URL may name: loads generated here stay on this machine.
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: Prefix of the embedded server's table; a random suffix follows, because moto keeps
#: its tables per process, shared by every moto server the process starts.
EMBEDDED_TABLE_PREFIX: Final = "aiodax-stampede-"

# Upper bounds that keep a typo from becoming an unbounded load.
MAX_REQUESTS: Final = 10_000_000
MAX_CONCURRENCY: Final = 10_000
MAX_KEYS: Final = 100_000
MAX_DURATION: Final = 3600.0
MAX_PROCESSES: Final = 32

# Bad arguments exit with argparse's status 2.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the target could not be reached or prepared


# ---------------------------------------------------------------------------
# Argument types: each rejects a bad value with a message argparse prints as is.


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}, got {value}")
        return value

    return parse


def _bounded_float(
    low: float, high: float, *, low_inclusive: bool = True, what: str = "a number"
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        too_low = value < low if low_inclusive else value <= low
        if too_low or value > high or math.isnan(value):
            bound = "[" if low_inclusive else "("
            raise argparse.ArgumentTypeError(f"must be in {bound}{low:g}, {high:g}], got {text}")
        return value

    return parse


def _loopback(text: str, schemes: tuple[str, ...], refusal: str) -> str:
    """``text`` if it is a URL of one of ``schemes`` naming this machine; else argparse's
    error, ending in ``refusal``."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # raises ValueError on a malformed port
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a valid URL: {text!r} ({error})") from None
    if parts.scheme not in schemes or parts.hostname not in LOOPBACK_HOSTS:
        raise argparse.ArgumentTypeError(f"refusing {text!r}: {refusal}")
    return text


def loopback_url(text: str) -> str:
    """``--endpoint-url``: an http(s) URL naming this machine, nothing else."""
    return _loopback(
        text,
        ("http", "https"),
        "the stampede only targets endpoints on this machine (http://127.0.0.1:PORT or "
        "http://localhost:PORT), so that its load never leaves loopback",
    )


def loopback_redis_url(text: str) -> str:
    """``--redis``: a redis:// URL naming this machine, nothing else."""
    return _loopback(
        text,
        ("redis", "rediss"),
        "the stampede only uses a Redis on this machine (redis://127.0.0.1:PORT/DB)",
    )


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``stampede`` subcommand to the ``aiodax`` command's subparsers."""
    stampede: argparse.ArgumentParser = commands.add_parser(
        "stampede",
        help="compare a hot-key stampede uncached and through aiodax",
        description=(
            "Run one load twice against a DynamoDB endpoint on this machine, first with a "
            "plain aioboto3 client, then through aiodax.Cache, and report side by side how "
            "many requests reached DynamoDB and how long reads took. Without --endpoint-url "
            "it starts its own server on 127.0.0.1 with a seeded table."
        ),
    )
    target = stampede.add_argument_group("target")
    target.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="embedded server to start: moto (pip) or AWS's DynamoDB Local (Java; jar from "
        "scripts/fetch-dynamodb-local or $AIODAX_DYNAMODB_LOCAL_DIR); default: moto",
    )
    target.add_argument(
        "--endpoint-url",
        type=loopback_url,
        metavar="URL",
        help="an already running DynamoDB endpoint on 127.0.0.1/localhost instead of an "
        "embedded server (needs --table)",
    )
    target.add_argument(
        "--table",
        metavar="NAME",
        help="table with a string partition key: must exist with --endpoint-url; else the "
        f"name of the table created on the embedded server (default: {EMBEDDED_TABLE_PREFIX}"
        "<random>)",
    )
    target.add_argument(
        "--region",
        default=REGION,
        help="region to sign requests for; DynamoDB Local without -sharedDb keeps a "
        "database per region (default: %(default)s)",
    )
    target.add_argument(
        "--no-seed",
        dest="seed_items",
        action="store_false",
        help="do not put the --keys items before the load (keys stampede#000000, ...)",
    )

    _add_load_options(stampede.add_argument_group("load"))
    processes = stampede.add_argument_group("processes")
    processes.add_argument(
        "--processes",
        type=_bounded_int(1, MAX_PROCESSES),
        default=1,
        metavar="N",
        help="run the load from N processes (spawned, each with its own loop, client and "
        "cache): uncached, with a cache per process, and with the caches joined by the Redis "
        "tier; reports DynamoDB requests and stale reads across processes (default: 1)",
    )
    processes.add_argument(
        "--redis",
        type=loopback_redis_url,
        metavar="URL",
        help="the Redis of the tier run (on this machine); default: a private redis-server "
        "started on a free port when the binary is installed, else no tier run",
    )

    output = stampede.add_argument_group("output")
    output.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"uncached": {...}, "cached": {...}} instead of the table',
    )
    output.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="also draw the comparison (needs matplotlib)"
    )
    stampede.set_defaults(check=check_arguments, run=run)
    return stampede


def _add_load_options(load: argparse._ArgumentGroup) -> None:
    """One option per ``LoadSpec`` field, named after it and defaulting to its default."""
    defaults = LoadSpec()

    def option(
        flag: str,
        parse: Callable[[str], Any],
        metavar: str | None,
        text: str,
        shown: str | None = None,
        **extra: Any,
    ) -> None:
        default = getattr(defaults, flag.removeprefix("--").replace("-", "_"))
        if shown is None:
            shown = "%(default)g" if isinstance(default, float) else "%(default)s"
        load.add_argument(
            flag,
            type=parse,
            default=default,
            metavar=metavar,
            help=f"{text} (default: {shown})",
            **extra,
        )

    option("--requests", _bounded_int(1, MAX_REQUESTS), "N", "requests per run")
    option("--concurrency", _bounded_int(1, MAX_CONCURRENCY), "N", "workers, all started at once")
    option(
        "--duration",
        _bounded_float(0, MAX_DURATION, low_inclusive=False, what="seconds"),
        "SECONDS",
        "most seconds each run may take: it stops early then",
    )
    option("--keys", _bounded_int(1, MAX_KEYS), "N", "distinct items read")
    option(
        "--skew",
        _bounded_float(0, 100),
        "S",
        "Zipf exponent: the key of popularity rank r is chosen with weight 1/r**S; 0 = uniform",
    )
    option(
        "--write-ratio",
        _bounded_float(0, 1, what="a fraction"),
        "FRACTION",
        "fraction of requests that are PutItem, written through the cache",
    )
    option(
        "--op",
        str,
        None,  # the choices stand in the help instead
        "reads: GetItem, Query of the key's partition, or half of each",
        choices=OP_CHOICES,
    )
    option(
        "--ttl",
        _bounded_float(0, 86_400 * 365, what="seconds"),
        "SECONDS",
        "item and query TTL of the cached run; 0 = nothing kept, only concurrent misses coalesced",
    )
    option("--seed", int, "N", "random seed of the plan both runs replay")
    option(
        "--max-connections",
        _bounded_int(1, MAX_CONCURRENCY),
        "N",
        "HTTP connections of each run's client; fewer than --concurrency makes workers queue "
        "for them, unfairly (botocore's default of 10 lets a worker that just finished take "
        "its connection again before queued ones wake)",
        shown="as many as --concurrency",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Rules that span several options; a violation exits with status 2."""
    if args.endpoint_url is not None:
        if args.backend is not None:
            parser.error("--backend starts an embedded server: drop it, or drop --endpoint-url")
        if args.table is None:
            parser.error("--endpoint-url needs --table (an existing table with a string key)")
    if args.processes == 1 and args.redis is not None:
        parser.error("--redis joins the caches of several processes: add --processes N")
    if args.processes > 1:
        if args.op != "get":
            parser.error("--processes reads with GetItem only (its staleness check follows items)")
        if args.plot is not None:
            parser.error("--plot draws the one-process runs: drop it, or drop --processes")
    if args.plot is not None:
        if not matplotlib_available():
            parser.error("--plot needs matplotlib, which is not installed (pip install matplotlib)")
        # Checked now rather than after a load that may take a minute.
        if not args.plot.parent.is_dir():
            parser.error(f"--plot: directory {str(args.plot.parent)!r} does not exist")


def _load_spec(args: argparse.Namespace) -> LoadSpec:
    """The ``LoadSpec`` of the ``load`` options, each named after its field."""
    return LoadSpec(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(LoadSpec)}
    )


# ---------------------------------------------------------------------------
# Running


async def run(args: argparse.Namespace) -> int:
    """Run the stampede ``args`` ask for; returns the exit status."""
    if args.processes > 1:
        return await _run_processes(args)
    spec = _load_spec(args)
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        async with contextlib.AsyncExitStack() as stack:
            target = await _target(args, stack)
            if not args.json:
                print(format_plan(spec, target) + "\n", flush=True)
            result = await run_stampede(
                target, spec, on_progress=None if progress is None else progress.update
            )
    except (ServerUnavailable, TargetError) as error:
        if progress is not None:
            progress.clear()
        print(f"{PROG} stampede: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    if progress is not None:
        progress.clear()

    if args.json:
        print(json.dumps(report_object(result)))
    else:
        print(format_report(result))
    if args.plot is not None:
        try:
            write_plot(result, args.plot)
        except OSError as error:
            print(f"{PROG} stampede: error: cannot write the plot: {error}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{PROG} stampede: plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK


async def _run_processes(args: argparse.Namespace) -> int:
    spec = _load_spec(args)
    try:
        async with contextlib.AsyncExitStack() as stack:
            target = await _target(args, stack)
            redis_url = args.redis
            if redis_url is None:
                try:
                    server = await _enter_in_thread(stack, RedisServer())
                    redis_url = server.url
                except ServerUnavailable as error:
                    print(f"{PROG} stampede: no Redis tier run: {error}", file=sys.stderr)
            summaries = await run_processes(target, spec, args.processes, redis_url)
    except (ServerUnavailable, TargetError) as error:
        print(f"{PROG} stampede: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps([dataclasses.asdict(summary) for summary in summaries]))
    else:
        print(format_processes_report(spec, target, args.processes, summaries))
    return EXIT_OK


async def _target(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> Target:
    """The ``--endpoint-url`` table, or else an embedded server (left with ``stack``)."""
    if args.endpoint_url is not None:
        url, table, label = args.endpoint_url, args.table, args.endpoint_url
    else:
        backend = args.backend or "moto"
        server = moto_server() if backend == "moto" else dynamodb_local()
        try:
            url = await _enter_in_thread(stack, server)
        except RuntimeError as error:  # DynamoDB Local did not start: says why
            raise TargetError(str(error)) from error
        table = args.table or EMBEDDED_TABLE_PREFIX + uuid.uuid4().hex[:8]
        label = f"{backend} (embedded, {url})"
    return Target(
        url,
        table,
        create=args.endpoint_url is None,
        seed=args.seed_items,
        label=label,
        region=args.region,
    )


async def _enter_in_thread(
    stack: contextlib.AsyncExitStack, manager: AbstractContextManager[T]
) -> T:
    """Enter a blocking context manager off the event loop; exit it the same way."""
    value = await asyncio.to_thread(manager.__enter__)

    async def exit_(*exc_info: Any) -> None:
        await asyncio.to_thread(manager.__exit__, *exc_info)

    stack.push_async_exit(exit_)
    return value

"""``aiodax streams``: a ``StreamsInvalidator`` as a long-running command.

    aiodax streams --table NAME [--table NAME ...] --redis URL --namespace NS
                   [--endpoint-url URL] [--region R] [--poll-interval S] [--lease-time S]
                   [--start trim_horizon|latest]

It follows the tables' DynamoDB Streams and drops every changed item in every
``Cache(redis=URL, namespace=NS)``; it runs until SIGINT or SIGTERM (it then lets
its shards' leases go, so that another instance takes them at once), or until
every table's stream is gone.  Credentials come from the environment, as for any
AWS SDK.  Exit status: 0 after a stop, 1 when a table has no enabled stream or
the invalidator failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any, Final

from .._errors import AiodaxError
from .._tiers.redis.config import RedisTier
from ._invalidator import StreamsInvalidator

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"must be in (0, 3600) seconds, got {text}")
    return value


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``streams`` subcommand to the ``aiodax`` command's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "streams",
        help="follow tables' DynamoDB Streams and invalidate every cache of a namespace",
        description=(
            "Follow the DynamoDB Streams of the tables and drop every changed item (and "
            "the Query pages it affects) in every Cache(redis=URL, namespace=NS), so "
            "that writes which bypass aiodax stop being served stale."
        ),
    )
    parser.add_argument(
        "--table", action="append", required=True, metavar="NAME", help="a table (repeatable)"
    )
    parser.add_argument("--redis", required=True, metavar="URL", help="the caches' Redis URL")
    parser.add_argument("--namespace", required=True, metavar="NS", help="the caches' namespace")
    parser.add_argument("--endpoint-url", metavar="URL", help="a DynamoDB Streams endpoint")
    parser.add_argument("--region", metavar="R", help="the AWS region")
    parser.add_argument(
        "--poll-interval", type=_seconds, default=0.25, metavar="S", help="idle shard poll (0.25)"
    )
    parser.add_argument(
        "--lease-time", type=_seconds, default=10.0, metavar="S", help="shard lease (10)"
    )
    parser.add_argument(
        "--start",
        choices=("trim_horizon", "latest"),
        default="trim_horizon",
        help=(
            "where a shard without a checkpoint is read from at start: its oldest record "
            "(default), or its tip after one drop of the whole table"
        ),
    )
    parser.set_defaults(check=check, run=run)
    return parser


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject what the options cannot mean (exits with status 2)."""
    try:
        RedisTier(args.redis, namespace=args.namespace)
    except AiodaxError as error:
        parser.error(str(error))


async def run(args: argparse.Namespace) -> int:
    """Follow the streams until a signal or their end; the exit status."""
    import aioboto3

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    options: dict[str, Any] = {}
    if args.endpoint_url:
        options["endpoint_url"] = args.endpoint_url
    if args.region:
        options["region_name"] = args.region
    try:
        async with (
            aioboto3.Session().client("dynamodbstreams", **options) as client,
            StreamsInvalidator(
                args.table,
                client=client,
                redis=args.redis,
                namespace=args.namespace,
                poll_interval=args.poll_interval,
                lease_time=args.lease_time,
                start=args.start,
            ) as invalidator,
        ):
            print(f"aiodax streams: following {', '.join(args.table)}", file=sys.stderr, flush=True)
            ended = asyncio.create_task(invalidator.wait())
            stop = asyncio.create_task(stopped.wait())
            await asyncio.wait((ended, stop), return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if ended.done():
                ended.result()
            else:
                ended.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ended
    except AiodaxError as error:
        print(f"aiodax streams: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("aiodax streams: stopped", file=sys.stderr, flush=True)
    return EXIT_OK

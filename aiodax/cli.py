"""The ``aiodax`` command (also ``python -m aiodax``): one parser, a subcommand per tool.

Each tool adds its subcommand, with the check of its options taken together
(``check``) and what runs it (``run``): ``aiodax stampede`` (``aiodax.stampede.cli``)
and ``aiodax streams`` (``aiodax.streams.cli``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Final

from . import __version__
from .stampede import cli as stampede_cli
from .streams import cli as streams_cli

PROG: Final = "aiodax"
EXIT_INTERRUPTED: Final = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="aiodax: DynamoDB Accelerator's caching inside asyncio."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    streams_cli.add_parser(commands)
    stampede_cli.add_parser(commands)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, checked (a violation exits with argparse's status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.check(parser, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: ``aiodax stampede|streams [options]``; returns the exit status."""
    args = parse(argv)
    try:
        status: int = asyncio.run(args.run(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


async def main_async(argv: Sequence[str] | None = None) -> int:
    """``main`` for a caller already inside an event loop (the tests)."""
    args = parse(argv)
    status: int = await args.run(args)
    return status

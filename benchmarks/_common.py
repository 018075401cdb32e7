"""What the benchmarks share: a moto-backed table, interleaved timing, markdown."""

from __future__ import annotations

import contextlib
import gc
import platform
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import aioboto3

from aiodax.testing.servers import client_kwargs, moto_server

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        KeySchemaElementTypeDef,
    )

#: ``run(n)`` makes ``n`` calls of the thing measured.
Batch = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Contender:
    name: str
    run: Batch
    #: calls per round: many for an in-memory hit, few for a request to moto
    iterations: int


@dataclass(frozen=True)
class Timing:
    name: str
    #: microseconds per call, one sample per round
    samples: tuple[float, ...]

    @property
    def min_us(self) -> float:
        return min(self.samples)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples)


async def measure(contenders: Sequence[Contender], rounds: int) -> dict[str, Timing]:
    """Per-call time of each contender, rounds interleaved.

    Interleaving spreads a noisy neighbour's bursts over every contender instead of
    over whichever happened to run then; the minimum is the least disturbed round.
    """
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    for _ in range(rounds):
        for contender in contenders:
            gc.collect()  # no round pays for garbage an earlier one left
            start = time.perf_counter_ns()
            await contender.run(contender.iterations)
            elapsed = time.perf_counter_ns() - start
            samples[contender.name].append(elapsed / contender.iterations / 1000)
    return {name: Timing(name, tuple(values)) for name, values in samples.items()}


@contextlib.asynccontextmanager
async def moto_table(
    key_schema: Sequence[KeySchemaElementTypeDef],
    attributes: Sequence[AttributeDefinitionTypeDef],
) -> AsyncIterator[tuple[DynamoDBClient, str]]:
    """A raw client of an embedded moto server and a fresh table on it."""
    table = "aiodax-bench"
    with moto_server() as url:
        async with aioboto3.Session().client("dynamodb", **client_kwargs(url)) as client:
            await client.create_table(
                TableName=table,
                KeySchema=list(key_schema),
                AttributeDefinitions=list(attributes),
                BillingMode="PAY_PER_REQUEST",
            )
            try:
                yield client, table
            finally:
                # moto's tables outlive its server: leave none behind in this process.
                await client.delete_table(TableName=table)


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(packages: Sequence[str]) -> str:
    versions = ", ".join(f"{name} {version(name)}" for name in packages)
    return f"CPython {platform.python_version()} on {platform.machine()}; {versions}"


def fmt_us(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:,.2f}×" if value < 10 else f"{value:,.0f}×"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table, first column left-aligned, the others right-aligned."""
    cells = [list(map(str, header)), *[list(map(str, row)) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + "-" if i == 0 else "-" * (w + 1) + ":") for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def timing_rows(
    timings: Mapping[str, Timing], *, reference: str | None, uncached: str
) -> list[list[str]]:
    """Rows of min and median µs per call, with ratios to two references.

    Against ``reference`` both the ratio of minimums (the cost with the least
    interference from the rest of the machine) and of medians are given.
    """
    rows = []
    base = timings[uncached].median_us
    ref = timings[reference] if reference else None
    for timing in timings.values():
        row = [timing.name, fmt_us(timing.min_us), fmt_us(timing.median_us)]
        if ref is not None:
            row.append(
                f"{fmt_ratio(timing.min_us / ref.min_us)} / "
                f"{fmt_ratio(timing.median_us / ref.median_us)}"
            )
        row.append(fmt_ratio(base / timing.median_us))
        rows.append(row)
    return rows

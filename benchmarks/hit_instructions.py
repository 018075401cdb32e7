"""What a cache hit costs in CPU instructions, per key shape: aiodax against async-lru.

Timings on a shared machine move from run to run; instruction counts do not.  Each
measurement runs ``benchmarks._hit_child`` under ``valgrind --tool=callgrind``: once
with 0 hits, once per case with ``HITS`` hits after the same set-up; the difference
divided by ``HITS`` is what one hit executes (the benchmark loop's own ``for`` and
``await`` included, as in ``hit_latency``).  The children fill their caches from
botocore's ``Stubber`` instead of a server, and ``PYTHONHASHSEED`` is fixed, so the
set-up is the same from one run to the next.

``--before PATH`` adds a column for the aiodax checked out at ``PATH`` (an older
commit, say), measured by the same child: what a change did to each hit.

Instructions are not time: an allocation or a dict copy is many cheap instructions,
a Python-level call fewer, dearer ones.  ``hit_latency`` and ``hit_shapes`` measure
time; this is the noise-free cross-check for a change to the hit paths.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence

from ._common import environment, markdown_table
from ._shapes import SHAPES

HITS = 20_000
#: (flavour, shape): every shape through both flavours
CASES = [(flavour, shape.name) for flavour in ("client", "resource") for shape in SHAPES]
_COLLECTED = re.compile(r"Collected : (\d+)")


async def _instructions(
    contender: str, flavour: str, shape: str, hits: int, pythonpath: str | None
) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if pythonpath is not None:
        # The older aiodax first, then this checkout's benchmarks, and not the
        # current directory in front (PYTHONSAFEPATH), which holds this aiodax.
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, os.getcwd()])
        env["PYTHONSAFEPATH"] = "1"
    process = await asyncio.create_subprocess_exec(
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks._hit_child",
        contender,
        flavour,
        shape,
        str(hits),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=1800)
    finally:
        if process.returncode is None:  # timed out or cancelled: leave nothing running
            process.kill()
            await process.wait()
    found = _COLLECTED.search(stderr.decode())
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run of {contender} failed:\n{stderr.decode()[-2000:]}")
    return int(found.group(1))


async def _per_hit(contender: str, flavour: str, pythonpath: str | None = None) -> dict[str, float]:
    """Instructions per hit of each case of ``flavour``, two children at a time."""
    shapes = [shape for case_flavour, shape in CASES if case_flavour == flavour]
    base = await _instructions(contender, flavour, shapes[0], 0, pythonpath)
    counts: dict[str, float] = {}
    for start in range(0, len(shapes), 2):
        pair = shapes[start : start + 2]
        loaded = await asyncio.gather(
            *(_instructions(contender, flavour, shape, HITS, pythonpath) for shape in pair)
        )
        for shape, total in zip(pair, loaded, strict=True):
            counts[shape] = (total - base) / HITS
    return counts


async def run(before: str | None = None, *, label: str | None = None) -> str:
    if shutil.which("valgrind") is None:
        return "### Hit cost in instructions\n\nNot measured: valgrind is not installed."
    columns: dict[str, tuple[str | None, str]] = {
        "aiodax": (None, "aiodax"),
        "async-lru": (None, "async-lru"),
    }
    if before is not None:
        columns = {f"aiodax at {label or before}": (before, "aiodax"), **columns}
    measured: dict[str, dict[tuple[str, str], float]] = {}
    for column, (pythonpath, contender) in columns.items():
        measured[column] = {}
        for flavour in ("client", "resource"):
            counts = await _per_hit(contender, flavour, pythonpath)
            measured[column].update({(flavour, shape): n for shape, n in counts.items()})
    rows = []
    for case in CASES:
        per_column = [measured[column][case] for column in columns]
        ratio = measured["aiodax"][case] / measured["async-lru"][case]
        rows.append([f"{case[0]}: {case[1]}", *(f"{n:,.0f}" for n in per_column), f"{ratio:.2f}×"])
    return "\n".join(
        [
            "### Hit cost in instructions",
            "",
            f"Instructions per hit under callgrind, ({HITS:,} hits − 0 hits) ÷ {HITS:,}; "
            "a flat ten-attribute item of each key shape.",
            "",
            markdown_table(["", *columns, "aiodax ÷ async-lru"], rows),
            "",
            environment(["aiodax", "aioboto3", "async-lru"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="an older aiodax checkout to measure beside this one")
    args = parser.parse_args(argv)
    if args.before is None:
        print(asyncio.run(run()))
        return
    # Only the older checkout's aiodax package: its benchmarks/ must not shadow these.
    with tempfile.TemporaryDirectory() as only_aiodax:
        os.symlink(os.path.join(os.path.abspath(args.before), "aiodax"), f"{only_aiodax}/aiodax")
        print(asyncio.run(run(only_aiodax, label=args.before)))


if __name__ == "__main__":
    main()

"""The progress line of ``aiodax stampede`` on a terminal's stderr."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """One line on a terminal's stderr, rewritten in place while a run goes on: the
    requests finished, the seconds elapsed, and an estimate of those left."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._width = 0
        self._run = ""
        self._started = 0.0

    def update(self, run: str, finished: int, total: int, errors: int) -> None:
        now = self._clock()
        if run != self._run:
            self._run, self._started = run, now
        elapsed = now - self._started
        line = f"{run}: {finished:,}/{total:,} requests, {elapsed:.1f} s"
        if 0 < finished < total:
            line += f", about {elapsed / finished * (total - finished):.0f} s left"
        if errors:
            line += f", {errors:,} errors"
        self._write(line)

    def clear(self) -> None:
        self._write("")

    def _write(self, line: str) -> None:
        # Pad over the previous line's tail instead of relying on terminal escapes.
        self._stream.write("\r" + line.ljust(self._width))
        if not line:
            self._stream.write("\r")
        self._stream.flush()
        self._width = len(line)

"""Every example in ``examples/`` runs as a user would run it, and says something."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
#: What an example must print, beyond something: the point it makes.
EXPECTED = {
    "resource_quickstart.py": "item cache hits/misses: 3 0",
    "fastapi_app.py": "GET with Cache-Control: no-cache: bypass",
    "starlette_app.py": "per-table stats: {'users': {'ItemCacheHits': 3, 'ItemCacheMisses': 1",
    "async_worker.py": "stock left: 4598 = 5000 - 402 ordered",
    "streams_invalidation.py": (
        "after a write that bypassed the cache: old\nwith the streams invalidator: new"
    ),
}


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(example: Path) -> None:
    # Dummy credentials: an example must never reach for a real AWS identity.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=example.parent.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the example printed nothing"
    assert EXPECTED.get(example.name, "") in done.stdout

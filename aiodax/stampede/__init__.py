"""The ``aiodax stampede`` tool: one hot-key load run uncached and through aiodax.

Apart from the library: nothing in ``aiodax`` imports this package.  The command
(``aiodax stampede``, ``python -m aiodax``) is :mod:`aiodax.stampede.cli`; the
benchmarks and tests drive the same machinery through the names exported here.
"""

from .cli import main, main_async
from .load import (
    OP_CHOICES,
    REPORT_KEYS,
    DataPlane,
    LoadResult,
    LoadSpec,
    Operation,
    RunResult,
    StampedeResult,
    Target,
    TargetError,
    drive,
    format_report,
    key_value,
    make_item,
    percentile,
    plan_operations,
    prepare_table,
    report_object,
    run_stampede,
    summarize,
    zipf_weights,
)

__all__ = [
    # The load: planned up front, replayed by both runs
    "LoadSpec",
    "OP_CHOICES",
    "Operation",
    "plan_operations",
    "zipf_weights",
    "key_value",
    "make_item",
    "DataPlane",
    "drive",
    "LoadResult",
    # The target table
    "Target",
    "TargetError",
    "prepare_table",
    # The two runs
    "run_stampede",
    "RunResult",
    "StampedeResult",
    # The report
    "REPORT_KEYS",
    "percentile",
    "summarize",
    "report_object",
    "format_report",
    # The command
    "main",
    "main_async",
]

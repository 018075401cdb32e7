"""The ``aiodax stampede`` tool: one hot-key load run uncached and through aiodax.

A tool apart from the library: ``aiodax.Cache`` and the rest of the library never
import it.  The subcommand (``aiodax stampede``, ``python -m aiodax stampede``) is
:mod:`aiodax.stampede.cli`; the benchmarks and tests drive the same machinery
through the names exported here.  The modules, each depending only on those above:

- :mod:`~aiodax.stampede.load`: the load spec, its plan and the driver that sends it;
- :mod:`~aiodax.stampede.target`: the endpoint and table, created and seeded;
- :mod:`~aiodax.stampede.runs`: the uncached and the cached run of one plan;
- :mod:`~aiodax.stampede.report`: the numbers and the side-by-side table;
- :mod:`~aiodax.stampede.plot`: the optional ``--plot`` figure;
- :mod:`~aiodax.stampede.cli`: the subcommand's arguments and its run (the ``aiodax``
  command itself is :mod:`aiodax.cli`).
"""

from .load import (
    OP_CHOICES,
    DataPlane,
    LoadResult,
    LoadSpec,
    Operation,
    drive,
    key_value,
    make_item,
    plan_operations,
    zipf_weights,
)
from .plot import matplotlib_available, write_plot
from .report import REPORT_KEYS, format_report, percentile, report_object, summarize
from .runs import RunResult, StampedeResult, run_stampede
from .target import Target, TargetError, prepare_table

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
    "matplotlib_available",
    "write_plot",
]

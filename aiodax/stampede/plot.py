"""The ``--plot`` figure: both runs' backend requests and latencies, drawn side by side.

matplotlib is optional and not a dependency of aiodax: :func:`matplotlib_available`
tells whether it is installed, and :func:`write_plot` imports it only when called.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import report_object

if TYPE_CHECKING:
    from .runs import StampedeResult


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported, without importing it."""
    return importlib.util.find_spec("matplotlib") is not None


def write_plot(result: StampedeResult, path: Path) -> None:
    """Draw backend requests and latency percentiles, uncached beside cached, to ``path``.

    Needs matplotlib (see :func:`matplotlib_available`); the file type follows
    from the suffix of ``path`` (PNG for ``.png``).
    """
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only: no display needed
    pyplot: Any = importlib.import_module("matplotlib.pyplot")
    report = report_object(result)
    runs = ("uncached", "cached")
    figure, (requests_axes, latency_axes) = pyplot.subplots(1, 2, figsize=(10, 4))
    try:
        counts = [report[run]["backend_requests"] for run in runs]
        requests_axes.bar(runs, counts, color=["#c44e52", "#4c72b0"])
        requests_axes.set_yscale("symlog")
        requests_axes.set_ylim(0, max(1, *counts) * 4)  # room for the labels above the bars
        requests_axes.set_title("requests that reached DynamoDB")
        for index, count in enumerate(counts):
            requests_axes.annotate(f"{count:,}", (index, count), ha="center", va="bottom")
        names = ("p50_ms", "p90_ms", "p99_ms", "max_ms")
        width = 0.38
        for offset, run, color in (
            (-width / 2, "uncached", "#c44e52"),
            (width / 2, "cached", "#4c72b0"),
        ):
            values = [report[run][name] for name in names]
            bars = latency_axes.bar(
                [index + offset for index in range(len(names))],
                values,
                width,
                label=run,
                color=color,
            )
            latency_axes.bar_label(
                bars, labels=[_ms(value) for value in values], fontsize=7, padding=2
            )
        latency_axes.set_xticks(range(len(names)), [name.removesuffix("_ms") for name in names])
        latency_axes.set_yscale("log")
        latency_axes.set_ylabel("ms")
        latency_axes.set_title("latency per request")
        latency_axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
        spec = result.spec
        figure.suptitle(
            f"aiodax stampede: {spec.requests:,} {spec.op} requests, "
            f"{spec.keys:,} {'key' if spec.keys == 1 else 'keys'}, "
            f"concurrency {spec.concurrency:,}, against {result.target.label}",
            fontsize=10,
        )
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    finally:
        pyplot.close(figure)


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"

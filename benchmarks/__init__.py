"""aiodax's benchmarks: ratios measured in one process, printed as markdown.

Run them all with ``benchmarks/run_all.sh`` (or ``python -m benchmarks``); each module
also runs alone (``python -m benchmarks.hit_latency``).  Needs ``pip install -e '.[bench]'``.
"""

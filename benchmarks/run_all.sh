#!/usr/bin/env bash
# Run every benchmark: benchmarks/run_all.sh [hit_latency|hit_shapes|hit_instructions|
#   resource_hit|query_hit|stampede|fastapi|redis_tier|write_cost|refresh_ahead|
#   stale_if_error|fence_cost|streams_invalidation ...] (the names of benchmarks/__main__.py's
#   BENCHMARKS)
#
# Prints markdown (for docs/benchmarks.md). About 2 minutes on 2 cores, plus about 1 for
# write_cost, refresh_ahead, stale_if_error and fence_cost, and 35 s for
# streams_invalidation (moto and DynamoDB Local); every
# benchmark is bounded in iterations and seconds, and the whole run is cut at 10 min.
# Needs the bench extra: .venv/bin/pip install -e '.[bench]'
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=.venv/bin/python
if ! "$python" -c 'import async_lru, moto.server' 2>/dev/null; then
    echo "run_all.sh: install the bench extra first: $python -m pip install -e '.[bench]'" >&2
    exit 2
fi

exec timeout 600 "$python" -m benchmarks "$@"

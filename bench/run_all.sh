#!/usr/bin/env bash
# `make bench`: focus's benchmarks next to their PyTorch 1.13 twins (bench/compare.py), several
# interleaved rounds; prints the markdown table and keeps it with the raw JSON in BUILD_DIR.
# Usage: bench/run_all.sh BUILD_DIR
# Environment: ROUNDS=3, ITERS=10, MAX_LOAD=0 (wait for a lower 1-minute load average before each
# round; 0: don't), MAX_OTHERS=0 (repeat a run during which other processes used more cores).
set -euo pipefail
build="${1:?usage: bench/run_all.sh BUILD_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "run_all: PyTorch is not importable by /usr/bin/python3 (apt-get install python3-torch)" >&2
  exit 1
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec /usr/bin/python3 "$here/compare.py" --build "$build" --rounds "${ROUNDS:-3}" \
  --iters "${ITERS:-10}" --max-load "${MAX_LOAD:-0}" --max-others "${MAX_OTHERS:-0}" \
  --out "$build/bench_results.md" --json-out "$build/bench_results.json"

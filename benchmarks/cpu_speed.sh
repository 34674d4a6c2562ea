#!/usr/bin/env bash
# The CPU speed figures of docs/benchmarks.md ("Trainable heads vs frozen backbone", "Streaming encoder for
# control"), each run's JSON saved with the machine's load before and after it, so the doc's figures have a
# committed source. Meaningful only on a quiet machine: pause other jobs first (kill -STOP), the script says
# the load it found.
#
#   bash benchmarks/cpu_speed.sh [OUT]        # default OUT: docs/results/cpu_speed
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/results/cpu_speed}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
run() {  # name, command...
  local name=$1; shift
  { echo "command: $*"; echo "before: $(cat /proc/loadavg)"; } > "$OUT/$name.txt"
  "$@" > "$OUT/$name.json.tmp"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
  echo "after: $(cat /proc/loadavg)" >> "$OUT/$name.txt"
  echo "$name: $(tr '\n' ' ' < "$OUT/$name.txt")"
}
{ echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"; echo "cores: $(nproc)";
  echo "torch: $($PY -c 'import torch; print(torch.__version__)')"; echo "date: $(date -u +%FT%TZ)"; } > "$OUT/machine.txt"
export OMP_NUM_THREADS=1
run model_1thread $PY benchmarks/bench_model.py --threads 1 --steps 3 --frame-batches 1 2 5 10
run streaming_1thread $PY benchmarks/bench_streaming.py --steps 20 --threads 1
unset OMP_NUM_THREADS
run model_2threads $PY benchmarks/bench_model.py --threads 2 --steps 3
run streaming_2threads $PY benchmarks/bench_streaming.py --steps 20 --threads 2

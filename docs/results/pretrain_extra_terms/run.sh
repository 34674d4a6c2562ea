#!/usr/bin/env bash
# Issue #12 item 3: the demo's full model, 300 steps, with each optional term off / on; then `roboact eval`
# on the compositional test split and the val split, and benchmarks/bench_extra_terms.py (step time, frame probe).
# Usage (from the repository root): DEMO=runs/demo OUT=/tmp/extra_terms bash docs/results/pretrain_extra_terms/run.sh
set -euo pipefail
DEMO=${DEMO:-runs/demo}
OUT=${OUT:-/tmp/extra_terms}
SEEDS=${SEEDS:-"0 1"}
PY=${PY:-python}
HERE=$(dirname "$0")
M=$DEMO/corpus/manifest_compositional.jsonl
export OMP_NUM_THREADS=1
declare -A TERM=([off]="" [tcn]="model.lambda_tcn=0.5" [frame]="model.lambda_frame=0.5")
mkdir -p "$OUT"
echo "{" > "$OUT/timings.json.tmp"
for seed in $SEEDS; do
  for v in off tcn frame; do
    run=$OUT/$v-s$seed
    [ -f "$run/final/config.json" ] && continue
    t0=$(date +%s.%N)
    $PY -m roboact.cli train --config "$DEMO/models/full/train_config.json" --manifest "$M" --cache "$DEMO/cache" \
        --out "$run" --set optim.steps=300 seed=$seed tensorboard=false progress=false ${TERM[$v]}
    echo "\"$v-s$seed\": $(echo "$(date +%s.%N) - $t0" | bc)," >> "$OUT/timings.json.tmp"
  done
done
echo "\"unit\": \"seconds of wall time per 300-step training run (3 evaluations and 3 checkpoints included)\"}" >> "$OUT/timings.json.tmp"
mv "$OUT/timings.json.tmp" "$HERE/train_wall_s.json"
rows() { local v=$1 s; local dirs=(); for s in $SEEDS; do dirs+=("$OUT/$v-s$s"); done; (IFS=,; echo "${dirs[*]}"); }
for split in test val; do
  $PY -m roboact.cli eval --manifest "$M" --cache "$DEMO/cache" --split "$split" --out "$OUT/eval_$split" \
      --threads 1 --no-plots --no-progress \
      --model "off=$(rows off)" --model "lambda_tcn 0.5=$(rows tcn)" --model "lambda_frame 0.5=$(rows frame)"
  cp "$OUT/eval_$split/report.md" "$HERE/eval_$split.md"
  cp "$OUT/eval_$split/report.json" "$HERE/eval_$split.json"
done
$PY benchmarks/bench_extra_terms.py --manifest "$M" --cache "$DEMO/cache" --out "$HERE/bench.json" \
    --run "off=$(rows off)" --run "tcn=$(rows tcn)" --run "frame=$(rows frame)"

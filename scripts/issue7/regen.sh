#!/usr/bin/env bash
# Issue 7's generalization tables (docs/RESULTS.md) regenerated under today's corpus rules, with their raw
# reports committed (issue 18: no figure without a committed source). The issue-4/7 run folders of the first
# tables are gone, and today's corpus builder refuses six of their 24 tasks, so the tables are rebuilt on the
# study's old corpus (runs/study/corpus_old: 18 Meta-World tasks x 20 episodes x `corner`, `corner3`; made by
# `bash scripts/study12/run.sh corpus-old`). Every stage resumes (finished models are reused):
#
#   bash scripts/issue7/regen.sh STAGE [STAGE ...]
#
#   split     the compositional manifest: held-out pairs (close, door), (pull, handle), (push, mug) -- each
#             action and object seen in training with other partners; only (push, mug) has its same-object
#             opposite (pull, mug) in training (the old split's three all had one)
#   base      four rows x 3 seeds: standard, time reversal, composition, viewpoint (corner3 held out)
#   asym      eq. 23 video->text only (model.clip_symmetric=false), full model
#   rev       reversed clips (data.reverse_prob=0.5), full model and ablation 1, 300 and 600 steps
#   levers    the paper's levers on composition: lambda_recomb 2.0, combiner residual_mlp (full model)
#   viewrand  unseen viewpoint with randomised training views: the roboact-sawyer-panda corpus (five cameras,
#             each episode's camera orbit, light and table randomised; `roboact pretrain --recipe
#             roboact-sawyer-panda`), corner3 held out
#   publish   copy every run's merged report (markdown) and its evaluations' JSON to docs/results/generalization/
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
R=${ROBOACT:-.venv/bin/roboact}
C=runs/study/corpus_old
K=runs/study/cache_old
GEN="$PY scripts/generalization.py --seeds 3 --camera corner3 --workers ${WORKERS:-2}"
G="$GEN --corpus $C --cache $K"
OUT=runs/generalization_v2
for stage in "$@"; do
  case $stage in
    split)
      [ -f $C/manifest_compositional.jsonl ] || $R split $C/manifest.jsonl --by compositional \
        --pairs close:door,pull:handle,push:mug --out $C/manifest_compositional.jsonl ;;
    base) $G --steps 300 --out $OUT/base ;;
    asym) $G --steps 300 --rows full --skip viewpoint --set model.clip_symmetric=false --out $OUT/asym ;;
    rev)
      $G --steps 300 --rows full,no_temporal --skip viewpoint --set data.reverse_prob=0.5 --out $OUT/rev
      $G --steps 600 --rows full,no_temporal --skip viewpoint --set data.reverse_prob=0.5 --out $OUT/rev600 ;;
    levers)
      $G --steps 300 --rows full --skip viewpoint --set model.lambda_recomb=2.0 --out $OUT/recomb2
      $G --steps 300 --rows full --skip viewpoint --set model.combiner=residual_mlp --out $OUT/resmlp ;;
    viewrand)
      N=runs/pretrain/roboact-sawyer-panda
      $GEN --corpus $N/corpus/merged --cache $N/cache --steps 300 --skip compositional --out $OUT/viewrand ;;
    publish)
      for run in $OUT/*/; do
        name=$(basename $run); dst=docs/results/generalization/$name
        [ -f $run/report.md ] || continue
        # the reports without their plot links (the plots stay in the run folder: too many to commit)
        mkdir -p $dst; grep -v '^!\[' $run/report.md > $dst/report.md
        for ev in $run/eval/*/; do
          [ -f $ev/report.json ] && cp $ev/report.json $dst/$(basename $ev).json
        done
      done ;;
    *) echo "unknown stage $stage (split base asym rev levers viewrand publish)" >&2; exit 2 ;;
  esac
done

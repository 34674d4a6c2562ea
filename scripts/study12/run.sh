#!/usr/bin/env bash
# Issue 12's study ("the encoder must earn its place in a policy"), stage by stage. Every stage is a plain
# roboact command that resumes when rerun, so the study runs in parts across sessions:
#
#   bash scripts/study12/run.sh STAGE [STAGE ...]
#
# Stages (docs/RESULTS.md, "Issue 12", names each table's stage):
#   corpus-old     the old corpus under the new rules: 18 Meta-World tasks x 20 episodes x corner,corner3
#   pretrain-old   paper-faithful, ablation 1 (no temporal), ablation 2 (no disentanglement) x seeds 0-2,
#                  and seed 0 of the two extra terms (lambda_tcn, lambda_frame), on the old corpus
#   corpus-new     the roboact-sawyer-panda recipe: corpus, extraction, 3 pretraining seeds (no install)
#   screen-new     Meta-World screening rows of the new corpus's paper-faithful encoder (fused+frame, fused)
#   pretrain-new-terms  seed 0 of the two extra terms (lambda_tcn, lambda_frame) on the new corpus, the recipe's
#                  training config otherwise
#   screen-new-terms    their Meta-World screening rows (fused+frame)
#   probe-new      ridge probes of the new-corpus encoders' policy inputs (fused, fused+frame) -> docs/results/study
#   pretrain-best  the chosen configuration on the new corpus ($BEST_SETS, e.g. "model.lambda_frame=0.5"; empty:
#                  paper-faithful) and its two ablations, seeds 0-2 (the paper-faithful seeds are the recipe's)
#   final-mw, final-libero   (= final-<suite>-base, then final-<suite>-best) the final tables, full mode,
#                  every row with 3 seeds paired with 3 pretraining seeds:
#                  backbone (frame, tokens), paper-faithful on the old and the new corpus (`fused`), the chosen
#                  configuration ($BEST_OUTPUT) and its ablations; each command's tables are copied to
#                  docs/results/policy_<metaworld|libero>_study_{fused,best}_table{2,3}.{json,md}
#   probe-mw, probe-libero   ridge probes of every final row's policy input (each row's three pretraining seeds,
#                  averaged) -> docs/results/study/final_<suite>_probe_{fused,best}.{md,json}
#   verdict        the goal's verdict on both suites (final and best over training), each suite's final table and
#                  its cell times, the figure of both -> docs/results/study/final_goal_{final,best}.json,
#                  final_<mw|libero>_table_*.md, final_success_{final,best}.png
#   demos          the policy demos: Meta-World's four benchmark tasks, LIBERO-Goal's four (50 each)
#   screen         Meta-World screening rows (5k BC steps, one evaluation, 3 seeds x 20 rollouts)
# Outputs go under runs/study (git-ignored); the tables' raw JSON is copied to docs/results/study/.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${ROBOACT:-.venv/bin/roboact}
S=runs/study
OLD_TASKS=drawer-close-v3,window-open-v3,door-close-v3,door-lock-v3,door-unlock-v3,box-close-v3,faucet-open-v3
OLD_TASKS=$OLD_TASKS,faucet-close-v3,button-press-topdown-v3,coffee-button-v3,handle-press-v3,handle-pull-v3
OLD_TASKS=$OLD_TASKS,lever-pull-v3,plate-slide-back-v3,push-v3,sweep-v3,coffee-push-v3,coffee-pull-v3
MW_DEMOS=runs/policy_bf16/demos
MW_CACHE=runs/policy_bf16/cache
LIBERO_DEMOS=runs/policy_libero/demos
LIBERO_CACHE=runs/policy_libero/cache
SCREEN="$R policy --suite metaworld --mode custom --num-demos 50 --seeds 3 --rollouts 20 --steps 5000 --eval-every 5000
  --videos 0 --demos $MW_DEMOS --cache $MW_CACHE --runtime openvino --stride 5 -o $S/mw-screen --no-progress"
NEW=runs/pretrain/roboact-sawyer-panda
NEW0="RoboAct-CLIP paper-faithful, new corpus (roboact-sawyer-panda), seed 0=$NEW/models/seed0/final"
OLD0="RoboAct-CLIP paper-faithful, old corpus (18 MW tasks), seed 0=$S/models/old_full_s0/final"

train() {  # config name, seed
  local out=$S/models/$1_s$2
  [ -f "$out/final/model.safetensors" ] || $R train --config scripts/study12/$1.json --set seed=$2 --out "$out" \
    $(resume_flag "$out")
}

resume_flag() {  # a run stopped part-way continues from its last checkpoint
  if compgen -G "$1/checkpoints/*" > /dev/null; then echo --resume; fi
}

train_new() {  # term (tcn|frame); the recipe's own training config with that term on, seed 0
  local out=$S/models/new_$1_s0
  [ -f "$out/final/model.safetensors" ] || $R train --config $NEW/models/seed0/train_config.json \
    --set seed=0 model.lambda_$1=0.5 --out "$out" $(resume_flag "$out")
}

BEST_SETS=${BEST_SETS:-}
BEST_OUTPUT=${BEST_OUTPUT:-fused+frame}
BEST_TAG=${BEST_TAG:-best}
seeds3() { echo "$1_s0/final,$1_s1/final,$1_s2/final"; }
NEW3="$NEW/models/seed0/final,$NEW/models/seed1/final,$NEW/models/seed2/final"
if [ -z "$BEST_SETS" ]; then BEST3=$NEW3; else BEST3=$(seeds3 $S/models/new_$BEST_TAG); fi

train_variant() {  # name seed overrides...: the recipe's training config with overrides, on the new corpus
  local name=$1 seed=$2; shift 2
  local out=$S/models/new_${name}_s$seed
  [ -f "$out/final/model.safetensors" ] || $R train --config $NEW/models/seed0/train_config.json \
    --set seed=$seed "$@" --out "$out" $(resume_flag "$out")
}

publish() {  # run folder, docs stem: the report a command just wrote (each command overwrites the folder's)
  for t in table2 table3; do
    for ext in json md; do cp "$1/$t.$ext" "docs/results/$2_$t.$ext"; done
  done
}

suite_data() {  # suite: its policy demos and feature cache, shared by the final tables and their probes
  [ $1 = metaworld ] && echo "--demos $MW_DEMOS --cache $MW_CACHE" || echo "--demos $LIBERO_DEMOS --cache $LIBERO_CACHE"
}

final_cmd() {  # suite: the full-mode policy command every final table shares
  local suite=$1 every=10000
  [ $suite = metaworld ] && every=5000
  echo "$R policy --suite $suite --mode full --steps 10000 --eval-every $every --stride 5 --runtime openvino --videos 0
    --workers 2 --no-progress -o $S/final-$suite $(suite_data $suite)"
}

final_base() {  # suite, extra flags...: backbone (frame, tokens) and the paper-faithful rows (`fused`)
  local suite=$1; shift
  $(final_cmd $suite) --output fused --backbone-output frame tokens "$@" \
    --model "RoboAct-CLIP paper-faithful, old corpus (18 MW tasks)=$(seeds3 $S/models/old_full)" \
    --model "RoboAct-CLIP paper-faithful, new corpus (roboact-sawyer-panda)=$NEW3"
  publish $S/final-$suite policy_${suite%_goal}_study_fused
}

final_best() {  # suite, extra flags...: the chosen configuration and its two ablations
  local suite=$1; shift
  $(final_cmd $suite) --output $BEST_OUTPUT --no-backbone-row "$@" \
    --model "RoboAct-CLIP, chosen configuration ($BEST_OUTPUT${BEST_SETS:+, $BEST_SETS})=$BEST3" \
    --model "Ablation 1 (no temporal) at the chosen configuration=$(seeds3 $S/models/new_${BEST_TAG}_no_temporal)" \
    --model "Ablation 2 (no disentanglement) at the chosen configuration=$(seeds3 $S/models/new_${BEST_TAG}_no_disentangle)"
  publish $S/final-$suite policy_${suite%_goal}_study_best
}

probe_final() {  # suite: ridge probes of every final row's policy input (all three pretraining seeds each)
  local suite=$1 short=${1%_goal}
  local P=".venv/bin/python benchmarks/probe_policy_features.py --suite $suite $(suite_data $suite) --stride 5
    --runtime openvino"
  $P --output fused --backbone-output frame tokens \
    --model "paper-faithful, old corpus=$(seeds3 $S/models/old_full)" --model "paper-faithful, new corpus=$NEW3" \
    --out docs/results/study/final_${short}_probe_fused.md
  $P --output $BEST_OUTPUT --no-backbone-row --model "chosen configuration=$BEST3" \
    --model "ablation 1 (no temporal)=$(seeds3 $S/models/new_${BEST_TAG}_no_temporal)" \
    --model "ablation 2 (no disentanglement)=$(seeds3 $S/models/new_${BEST_TAG}_no_disentangle)" \
    --out docs/results/study/final_${short}_probe_best.md
}

for stage in "$@"; do
  case $stage in
    corpus-old)
      $R simulate metaworld --tasks $OLD_TASKS --episodes 20 --cameras corner,corner3 --out $S/corpus_old --workers 2
      $R extract --manifest $S/corpus_old/manifest.jsonl --out $S/cache_old ;;
    pretrain-old)
      for v in old_full old_no_temporal old_no_disentangle; do for s in 0 1 2; do train $v $s; done; done
      train old_tcn 0; train old_frame 0 ;;
    corpus-new)
      $R pretrain --recipe roboact-sawyer-panda --out runs/pretrain/roboact-sawyer-panda --workers 2 --no-install ;;
    pretrain-new-terms)
      train_new tcn; train_new frame ;;
    screen-new)
      $SCREEN --workers 2 --output fused+frame --no-backbone-row --model "$NEW0"
      $SCREEN --workers 2 --output fused --no-backbone-row --model "$NEW0" ;;
    screen-new-terms)
      $SCREEN --workers 2 --output fused+frame --no-backbone-row \
        --model "RoboAct-CLIP + time-contrastive (lambda_tcn 0.5), new corpus, seed 0=$S/models/new_tcn_s0/final" \
        --model "RoboAct-CLIP + frame term (lambda_frame 0.5), new corpus, seed 0=$S/models/new_frame_s0/final" ;;
    probe-new)
      models=(--model "paper-faithful, new corpus=$NEW/models/seed0/final")
      for t in tcn frame; do
        [ -f $S/models/new_${t}_s0/final/model.safetensors ] && models+=(--model "$t term, new corpus=$S/models/new_${t}_s0/final")
      done
      for out in fused fused+frame; do
        .venv/bin/python benchmarks/probe_policy_features.py --suite metaworld --demos $MW_DEMOS --cache $MW_CACHE \
          --stride 5 --output $out "${models[@]}" --out docs/results/study/mw_probe_new_$out.md
      done ;;
    pretrain-best)
      for seed in 0 1 2; do
        [ -n "$BEST_SETS" ] && train_variant $BEST_TAG $seed $BEST_SETS
        train_variant ${BEST_TAG}_no_temporal $seed model.temporal=false $BEST_SETS
        train_variant ${BEST_TAG}_no_disentangle $seed model.disentangle=false $BEST_SETS
      done ;;
    final-mw) final_base metaworld; final_best metaworld ;;
    final-mw-base) final_base metaworld ;;
    final-mw-best) final_best metaworld ;;
    final-libero) final_base libero_goal; final_best libero_goal ;;
    final-libero-base) final_base libero_goal ;;
    final-libero-best) final_best libero_goal ;;
    probe-mw) probe_final metaworld ;;
    probe-libero) probe_final libero_goal ;;
    verdict)
      goal_args=(); fig_args=()
      for suite in metaworld libero_goal; do
        short=${suite%_goal}; short=${short/metaworld/mw}; d=docs/results/policy_${suite%_goal}_study
        goal_args+=(--suite $suite ${d}_fused_table2.json ${d}_best_table2.json ${d}_best_table3.json)
        fig_args+=(--suite $suite ${d}_fused_table2.json ${d}_best_table3.json)
        for m in final best; do
          .venv/bin/python scripts/study12/table.py ${d}_fused_table2.json ${d}_best_table3.json --metric $m \
            > docs/results/study/.final_${short}_table_$m.md.tmp
          mv docs/results/study/.final_${short}_table_$m.md.tmp docs/results/study/final_${short}_table_$m.md
        done
        .venv/bin/python scripts/study12/cell_times.py $S/final-$suite --json docs/results/study/final_${short}_cell_times.json
      done
      for m in final best; do
        .venv/bin/python scripts/study12/goal.py "${goal_args[@]}" --metric $m --json docs/results/study/final_goal_$m.json
        .venv/bin/python scripts/study12/figure.py "${fig_args[@]}" --metric $m --out docs/results/study/final_success_$m.png
      done ;;
    demos)
      # the benchmark's own tasks only (a plain `roboact demos --suite metaworld` makes all 24 atomic tasks)
      $R demos --suite metaworld --tasks drawer-open-v3 plate-slide-v3 pick-place-v3 dial-turn-v3 -n 50 --workers 2 \
        -o $MW_DEMOS
      $R demos --suite libero_goal -n 50 --workers 2 -o $LIBERO_DEMOS ;;
    screen)
      $SCREEN --workers 2 --output fused+frame --backbone-output frame tokens --model "$OLD0"
      $SCREEN --workers 2 --output fused+frame --no-backbone-row \
        --model "RoboAct-CLIP + time-contrastive (lambda_tcn 0.5), old corpus, seed 0=$S/models/old_tcn_s0/final" \
        --model "RoboAct-CLIP + frame term (lambda_frame 0.5), old corpus, seed 0=$S/models/old_frame_s0/final"
      $SCREEN --workers 2 --output fused --no-backbone-row --model "$OLD0"
      $SCREEN --workers 1 --output tokens --backbone-output frame tokens --model "$OLD0" ;;
    *) echo "unknown stage $stage (corpus-old pretrain-old corpus-new screen-new pretrain-new-terms screen-new-terms probe-new pretrain-best final-mw[-base|-best] final-libero[-base|-best] probe-mw probe-libero verdict demos screen)" >&2; exit 2 ;;
  esac
done

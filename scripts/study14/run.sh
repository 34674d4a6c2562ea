#!/usr/bin/env bash
# Issue 14's tables ("one policy that follows instructions"), stage by stage; every stage resumes when rerun:
#
#   bash scripts/study14/run.sh STAGE [STAGE ...]
#
#   rebuild      every input of the grid on a machine that has none: issue 12's corpus and its three pretraining
#                seeds (scripts/study12/run.sh corpus-new, ~2.5 h on two cores), then the demos and chain-demos
#                stages below (~1 h); each part resumes, so `rebuild grid verdict` is the whole study
#   experts      the ten-task expert table at the multi-task cap (300 steps), into docs/results
#   demos        50 demos of each of LIBERO-Goal's ten tasks in $D (the five the roboact-sawyer-panda recipe
#                recorded, and the paper's four when issue 12's demos stage made them, are linked, not remade)
#   chain-demos  the chain's train split grown to 55 base scenes, then 50 chained demos (one file per stage) in $D
#   budget       how many BC steps the multi-task policy needs: held-out demo loss at 10k-140k steps for the
#                backbone row [sentence] and the RoboAct row [roboact-text] (no rollouts; ~15 min each on one
#                core) -> docs/results/study14/bc_budget_*.json; it chose the grid's 60k
#   grid         the multi-task grid with the chain: backbone and RoboAct-CLIP rows x conditions x 3 seeds, one
#                evaluation at 60k BC steps (10 tasks x 20 rollouts, 300-step cap) and the chain under the oracle
#                and the judge (20 episodes); RoboAct rows: $MODEL (three pretraining seeds, paired), seeing
#                $OUTPUT (issue 12's chosen policy input)
#   save         the grid's finished results (small JSON: task evaluations, chain runs, cells' results, the expert
#                check, the judge's calibrations) copied into $KEEP, to commit: a session's machine is not always
#                kept, and the grid takes many sessions (scripts/study14/keep.py); the grid stage does this
#                every 10 minutes while it runs and when it ends
#   restore      those copied back into the run folder where it lacks them (the grid stage does this first)
#   inputs       fingerprints of the grid's inputs (demo files' sha256, checkpoints' digests) ->
#                docs/results/study14/grid_inputs.json; `inputs-check` compares a rebuild's with them (exit 1 and
#                the differing files if not the same, when kept results would not apply)
#   times        every task evaluation the grid has saved so far, its seconds and per-step costs (the compute
#                plan's measured figures while the grid runs) -> docs/results/study14/grid_eval_times.json
#   verdict      the grid's report copied to docs/results (policy_libero_multitask.{json,md,png}) and the issue's
#                goal read off it (scripts/study14/goal.py -> docs/results/policy_libero_multitask_goal.json)
# Compute plan and results: docs/RESULTS.md, "Issue 14".
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${ROBOACT:-.venv/bin/roboact}
D=${DEMOS:-runs/libero10/demos}
NEW=runs/pretrain/roboact-sawyer-panda
# issue 12's chosen configuration (docs/RESULTS.md): paper-faithful on the new corpus, the policy seeing `fused+frame`
OUTPUT=${OUTPUT:-fused+frame}
MODEL=${MODEL:-"RoboAct-CLIP, chosen configuration ($OUTPUT), new corpus (roboact-sawyer-panda)=$NEW/models/seed0/final,$NEW/models/seed1/final,$NEW/models/seed2/final"}
RECIPE_TASKS="put_the_bowl_on_the_stove put_the_wine_bottle_on_top_of_the_cabinet put_the_bowl_on_top_of_the_cabinet
  put_the_bowl_on_the_plate put_the_wine_bottle_on_the_rack"
PAPER_TASKS="open_the_middle_drawer_of_the_cabinet push_the_plate_to_the_front_of_the_stove
  put_the_cream_cheese_in_the_bowl turn_on_the_stove"
PAPER_DEMOS=runs/policy_libero/demos   # issue 12's LIBERO-Goal policy demos (scripts/study12/run.sh demos)
OTHER_TASKS="open_the_top_drawer_and_put_the_bowl_inside"
P=runs/libero10/policy
KEEP=docs/results/study14/grid
GRID_FLAGS=(--suite libero_goal --mode full --multitask --chain --demos "$D" --cache runs/libero10/cache
  -o "$P" --workers 2 --stride 5 --runtime openvino --set train.steps=60000 train.eval_every=60000
  --condition roboact-text sentence onehot --chain-starts docs/results/chain/chain_starts_eval.json
  --allow-seen-tasks --output "$OUTPUT")

for stage in "$@"; do
  case $stage in
    rebuild)
      bash scripts/study12/run.sh corpus-new
      bash scripts/study14/run.sh demos chain-demos ;;
    experts)
      $R demos --evaluate-experts --suite libero_goal --tasks all --init-states 50 --max-steps 300 --workers ${EXPERT_WORKERS:-2} \
        -o docs/results ;;
    demos)
      mkdir -p "$D/libero_goal"
      for t in $RECIPE_TASKS; do
        src=$NEW/corpus/libero_goal/libero_goal/${t}_demo.hdf5
        [ -f "$src" ] || { echo "$src missing: run scripts/study12/run.sh corpus-new first" >&2; exit 1; }
        ln -sf "$(realpath "$src")" "$D/libero_goal/${t}_demo.hdf5"
      done
      todo=$OTHER_TASKS
      for t in $PAPER_TASKS; do   # one set of demos for the paper's four tasks, shared with issue 12's tables
        src=$PAPER_DEMOS/libero_goal/${t}_demo.hdf5
        if [ -f "$src" ]; then ln -sf "$(realpath "$src")" "$D/libero_goal/${t}_demo.hdf5"; else todo="$todo $t"; fi
      done
      $R demos --suite libero_goal --tasks $todo -n 50 --workers 2 -o "$D" ;;
    chain-demos)
      $R chain starts --split train --count 55 -o docs/results/chain --workers 2
      $R chain demos --starts docs/results/chain/chain_starts_train.json -n 50 -o "$D" --workers 2 ;;
    budget)
      for rc in 0:sentence:backbone_sentence 1:roboact-text:roboact_text; do
        IFS=: read -r row cond name <<< "$rc"
        .venv/bin/python benchmarks/multitask_bc_budget.py --row $row --condition $cond \
          --steps 10000 20000 40000 60000 100000 140000 --json docs/results/study14/bc_budget_$name.json -- \
          "${GRID_FLAGS[@]}" --model "$MODEL"
      done ;;
    grid)
      .venv/bin/python scripts/study14/keep.py restore "$P" "$KEEP"
      # while it runs, finished results are copied to $KEEP every 10 min (commit them: the session may end)
      ( while sleep 600; do .venv/bin/python scripts/study14/keep.py save "$P" "$KEEP" || true; done ) &
      saver=$!
      status=0
      $R policy "${GRID_FLAGS[@]}" --model "$MODEL" --no-progress || status=$?
      kill $saver 2>/dev/null || true
      .venv/bin/python scripts/study14/keep.py save "$P" "$KEEP"
      [ $status = 0 ] || exit $status ;;
    save)
      .venv/bin/python scripts/study14/keep.py save "$P" "$KEEP" ;;
    restore)
      .venv/bin/python scripts/study14/keep.py restore "$P" "$KEEP" ;;
    inputs|inputs-check)
      [ $stage = inputs ] && how=--json || how=--check
      models=()
      IFS=, read -ra dirs <<< "${MODEL#*=}"
      for m in "${dirs[@]}"; do models+=(--model "$m"); done
      .venv/bin/python scripts/study14/inputs.py --demos "$D" "${models[@]}" $how docs/results/study14/grid_inputs.json ;;
    times)
      .venv/bin/python scripts/study14/eval_times.py "$P" --json docs/results/study14/grid_eval_times.json ;;
    verdict)
      [ -f $P/report.json ] || { echo "$P/report.json missing: run the grid stage first" >&2; exit 1; }
      for pair in report.json:json table2.md:md success.png:png; do
        [ -f "$P/${pair%%:*}" ] || { [ ${pair##*:} = png ] && continue; echo "$P/${pair%%:*} missing" >&2; exit 1; }
        cp "$P/${pair%%:*}" docs/results/.policy_libero_multitask.${pair##*:}.tmp
        mv docs/results/.policy_libero_multitask.${pair##*:}.tmp docs/results/policy_libero_multitask.${pair##*:}
      done
      .venv/bin/python scripts/study14/goal.py docs/results/policy_libero_multitask.json \
        --json docs/results/policy_libero_multitask_goal.json ;;
    *) echo "unknown stage $stage (rebuild experts demos chain-demos budget grid save restore inputs inputs-check times verdict)" >&2; exit 2 ;;
  esac
done

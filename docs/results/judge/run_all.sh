#!/bin/bash
# The judge as a success detector on the policy benchmark's Meta-World demos (20 per task: 10 calibrate, 10 held out).
set -e
# Frame features: a copy of `roboact policy`'s cache of these demos (same frame-encoder identity: lite0-minilm,
# openvino runtime), so only the heads run; without it the judge encodes the frames itself (about 35 s a demo here).
mkdir -p /tmp/judge_cache/frames && cp -r /work/main/runs/policy_bf16/cache/frames/fcbda56d518d886f /tmp/judge_cache/frames/
D=/work/main/runs/policy_bf16/demos/metaworld
FILES="$D/drawer-open-v3_demo.hdf5 $D/plate-slide-v3_demo.hdf5 $D/pick-place-v3_demo.hdf5 $D/dial-turn-v3_demo.hdf5"
J="nice -n 10 /work/main/.venv/bin/python -m roboact.cli judge --calibrate $FILES --model /work/main/runs/study/models/old_full_s0 --max-demos 20 --feature-cache /tmp/judge_cache"
export PYTHONPATH=/work/wt-judge/src
O=/tmp/judge_runs
$J --done-text "{caption}" --stride 1 --objective f1 --patience 1 --out $O/caption_s1_f1
$J --done-text "{caption}" --stride 5 --objective f1 --patience 1 --out $O/caption_s5_f1
$J --done-text "{caption}" --stride 1 --objective episode --patience 3 --out $O/caption_s1_episode_p3
$J --done-text "{caption}" --stride 5 --objective episode --patience 3 --out $O/caption_s5_episode_p3
$J --done-text "{caption}" --not-done-text "Robot reaches {object}, Action is reach, Object is {object}." --stride 5 --objective episode --patience 3 --out $O/two_texts_s5_episode_p3

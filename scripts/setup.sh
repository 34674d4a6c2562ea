#!/usr/bin/env bash
# One-step setup for a fresh machine: a venv in .venv with torch (CPU wheel), roboact and every extra.
# Idempotent: rerunning it only installs what is missing.
#   bash scripts/setup.sh           the library, the CLI and every extra (what the demo needs)
#   bash scripts/setup.sh --tests   also LeRobot's own loader in .venv-lerobot, which one test checks our
#                                   LeRobot export against (scripts/setup_lerobot.sh; ~6 GB, a few minutes)
set -euo pipefail
tests=0
for arg in "$@"; do
  case $arg in
    --tests) tests=1 ;;
    *) echo "setup.sh: unknown option $arg (only --tests)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, so nothing below can pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[sim,train,lerobot,dev]"
echo "roboact installed in .venv ($(.venv/bin/python -c 'import roboact; print(roboact.__version__)'))"
if [ $tests = 1 ]; then
  bash scripts/setup_lerobot.sh
fi

#!/usr/bin/env bash
# One-step setup for a fresh machine: a venv in .venv with torch (CPU wheel), roboact and every extra.
# Idempotent: rerunning it only installs what is missing.
set -euo pipefail
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

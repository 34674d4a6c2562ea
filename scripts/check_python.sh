#!/usr/bin/env bash
# The core package on another Python: a venv in .venv-pyVERSION with torch, roboact (no simulators) and the
# dev extra, then the model and packaging tests. CI runs it for 3.12 after the 3.11 fast path (.ci/run).
# Idempotent like setup.sh: a rerun only installs what is missing (about a minute instead of about four).
#   bash scripts/check_python.sh 3.13
# torch comes from the same place as in setup.sh; to take the CPU wheel from PyTorch's index where PyPI would
# give the CUDA build, set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${1:-3.12}
find_python() {
  # pyenv's shims answer `python3.12` only when that version is selected, so look at its versions first.
  local root=${PYENV_ROOT:-$HOME/.pyenv} cand
  for cand in $(ls -d "$root"/versions/"$V".* "$root"/versions/"$V" 2>/dev/null | sort -V -r); do
    if [ -x "$cand/bin/python$V" ]; then echo "$cand/bin/python$V"; return; fi
  done
  if command -v "python$V" >/dev/null && "python$V" -c 'import sys' 2>/dev/null; then command -v "python$V"; return; fi
  echo "check_python.sh: no Python $V on this machine (looked in $root/versions and PATH)" >&2
  exit 1
}
PY=$(find_python)
VENV=.venv-py$V
t0=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
t1=$(date +%s)
echo "roboact core installed on $("$VENV/bin/python" -V) in $VENV ($((t1 - t0)) s)"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/models tests/test_packaging.py
echo "Python $V: core installs and its model tests pass ($(( $(date +%s) - t1 )) s of tests)"

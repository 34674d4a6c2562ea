#!/usr/bin/env bash
# roboact on another Python: a venv in .venv-pyVERSION with torch, roboact with EXTRAS, then TESTS.
# CI runs it for 3.12 after the 3.11 fast path (.ci/run): the core (no simulators) and its model tests.
#   bash scripts/check_python.sh 3.13                                   # core + dev; tests/models, packaging
#   bash scripts/check_python.sh 3.13 dev,sim tests/sim/test_metaworld.py   # the simulators too
# Idempotent like setup.sh: a rerun only installs what is missing. torch comes from the same place as in
# setup.sh; to take the CPU wheel from PyTorch's index where PyPI would give the CUDA build, set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${1:-3.12}
EXTRAS=${2:-dev}
shift $(( $# < 2 ? $# : 2 ))
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(tests/models tests/test_packaging.py)
find_python() {
  # pyenv's shims answer `python3.12` only when that version is selected, so look at its versions first.
  local root=${PYENV_ROOT:-$HOME/.pyenv} cand
  for cand in $(ls -d "$root"/versions/"$V".* "$root"/versions/"$V" 2>/dev/null | sort -V -r); do
    if [ -x "$cand/bin/python$V" ]; then echo "$cand/bin/python$V"; return; fi
  done
  if command -v "python$V" >/dev/null && "python$V" -c 'import sys' 2>/dev/null; then command -v "python$V"; return; fi
  echo "check_python.sh: no Python $V on this machine (looked in $root/versions and PATH)" >&2
  return 1
}
PY=$(find_python)
VENV=.venv-py$V
t0=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
t1=$(date +%s)
echo "roboact[$EXTRAS] installed on $("$VENV/bin/python" -V) in $VENV ($((t1 - t0)) s)"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
echo "Python $V: roboact[$EXTRAS] installs and ${TESTS[*]} pass ($(( $(date +%s) - t1 )) s of tests)"

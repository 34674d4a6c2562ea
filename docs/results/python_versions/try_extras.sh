#!/usr/bin/env bash
# try.sh VERSION : scratch venv, torch, core install, then sim extra; log timings
V=$1; M=${V%.*}; D=/tmp/pyver/v$M; L=/tmp/pyver/log$M
rm -rf $D; exec > $L.txt 2>&1
export PYENV_VERSION=$V
t0=$(date +%s)
python$M -m venv $D && $D/bin/python -m pip install -q --upgrade pip
echo "T venv $(( $(date +%s)-t0 ))"
$D/bin/python -m pip install -q "torch==2.13.0"; echo "RC torch $?"
echo "T torch $(( $(date +%s)-t0 ))"
$D/bin/python -m pip install -q /work/wt-pyver pytest pytest-timeout; echo "RC core $?"
echo "T core $(( $(date +%s)-t0 ))"
$D/bin/python -m pip install -q "/work/wt-pyver[train]"; echo "RC train $?"
echo "T train $(( $(date +%s)-t0 ))"
$D/bin/python -m pip install -q "/work/wt-pyver[sim]"; echo "RC sim $?"
echo "T sim $(( $(date +%s)-t0 ))"
$D/bin/python -m pip freeze > $L.freeze

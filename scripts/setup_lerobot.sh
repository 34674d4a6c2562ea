#!/usr/bin/env bash
# LeRobot's own loader in a venv of its own (.venv-lerobot), for the check that our `--format lerobot` export
# loads in LeRobotDataset (tests/sim/test_demos_lerobot.py, scripts/check_lerobot_export.py).
#
# Why a second venv: lerobot 0.4.4 (the registry's newest) pins torch<2.11, av<16 and huggingface-hub<0.36,
# which clash with roboact's pins. Why not its own pins: torch<2.11 from PyPI is a multi-GB CUDA build that has
# to be downloaded, and torchvision>=0.28 no longer has the VideoReader its `pyav` backend needs. So: lerobot
# with --no-deps, torch 2.14.1 + torchvision 0.29.1 from this machine's disk (the newest pip takes there), the
# torchcodec built for that torch (LeRobot's default video backend) and FFmpeg 5.1's libraries from Debian,
# which torchcodec loads. ~6 GB (the CUDA libraries come with torch 2.14.1), a few minutes; rerunning is cheap.
# scripts/setup.sh --tests runs it (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${LEROBOT_VENV_PYTHON:-python3.11}   # 3.11: the disk holds torch 2.14.1 for cp311 only
V=.venv-lerobot
CHECK="import lerobot.datasets.lerobot_dataset, torchcodec.decoders"   # torchcodec's import loads FFmpeg
FFMPEG="libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4"
if [ -f $V/.roboact-ok ] && $V/bin/python -c "$CHECK" 2>/dev/null; then
  echo "LeRobot's loader ready in $V"; exit 0
fi
arch=$(uname -m)
if [ "$arch" != x86_64 ]; then
  echo "setup_lerobot.sh: only x86_64 is set up (torch 2.14.1's files lie on this kind's disk for it); on $arch" \
       "the LeRobot loader check will skip" >&2
  exit 0
fi
# torchcodec loads FFmpeg's shared libraries at run time (any of FFmpeg 4-7); Debian 12 has 5.1
if ! ldconfig -p | grep -E 'libavutil\.so\.(56|57|58|59) ' >/dev/null; then  # not -q: no SIGPIPE under pipefail
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q --no-install-recommends $FFMPEG >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $FFMPEG >/dev/null; }
  else
    echo "setup_lerobot.sh: FFmpeg's libraries (libavutil57 ...) are missing and apt-get cannot run here as" \
         "root; install them, then rerun" >&2
    exit 1
  fi
fi
[ -x $V/bin/python ] || "$PY" -m venv $V
$V/bin/python -m pip install -q --upgrade pip
$V/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "torchcodec==0.14.0"
$V/bin/python -m pip install -q --no-deps "lerobot==0.4.4"
# pip then lists lerobot's requirements this venv leaves out on purpose (robots, training, its torch pins):
# expected, so they go to a log, shown only if the install fails
$V/bin/python -m pip install -q -r scripts/lerobot-requirements.txt 2> $V/pip-requirements.log \
  || { cat $V/pip-requirements.log >&2; exit 1; }
$V/bin/python -c "$CHECK"
touch $V/.roboact-ok
echo "LeRobot's loader ready in $V ($($V/bin/python -c 'import importlib.metadata as m; print("lerobot", m.version("lerobot"), "torch", m.version("torch"))'))"

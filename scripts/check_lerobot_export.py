"""Load a `roboact demos --format lerobot` export with LeRobot's own `LeRobotDataset` and compare every frame
with the HDF5 demos it came from; prints one JSON summary.

LeRobot cannot share roboact's environment (lerobot 0.4.4 pins torch<2.11, av<16, huggingface-hub<0.36),
so it runs in the Python given by --lerobot-python (default: $ROBOACT_LEROBOT_PYTHON, else the .venv-lerobot
that `bash scripts/setup_lerobot.sh` makes) and hands its frames back in an .npz file (plain arrays, loaded
without pickle). Frames are decoded by LeRobot's default video backend (torchcodec) unless --video-backend says.

    python scripts/check_lerobot_export.py DEMOS_DIR --suite libero_goal [--lerobot-python .venv-lerobot/bin/python]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def lerobot_python() -> str | None:
    """$ROBOACT_LEROBOT_PYTHON, else the .venv-lerobot that `scripts/setup_lerobot.sh` finished (its marker
    file: a half-built venv does not count), else None. Also what tests/sim/test_demos_lerobot.py runs."""
    named = os.environ.get("ROBOACT_LEROBOT_PYTHON")
    if named:
        return named
    venv = ROOT / ".venv-lerobot"
    return str(venv / "bin" / "python") if (venv / ".roboact-ok").is_file() else None


DUMP = """
import sys, numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("local/roboact", root=sys.argv[1], video_backend=sys.argv[3] or None)
cams = ds.meta.video_keys
out = {k: [] for k in ("action", "state", "episode", "frame", "task")}
imgs = {c: [] for c in cams}
for i in range(len(ds)):
    it = ds[i]
    out["action"].append(it["action"].numpy()); out["state"].append(it["observation.state"].numpy())
    out["episode"].append(int(it["episode_index"])); out["frame"].append(int(it["frame_index"]))
    out["task"].append(it["task"])
    for c in cams:
        imgs[c].append((it[c].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in out.items()},
         **{"img:" + c: np.stack(v) for c, v in imgs.items()}, cams=np.asarray(cams))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("demos", help="the -o folder of `roboact demos --format lerobot`")
    ap.add_argument("--suite", default="libero_goal")
    ap.add_argument("--lerobot-python", default=lerobot_python())
    ap.add_argument("--video-backend", default="", help="LeRobot's video_backend (default: its own default, "
                    "torchcodec; `pyav` needs torchvision < 0.28)")
    args = ap.parse_args()
    if not args.lerobot_python:
        ap.error("--lerobot-python (or ROBOACT_LEROBOT_PYTHON) must name a Python with lerobot installed: "
                 "`bash scripts/setup_lerobot.sh` makes .venv-lerobot")
    from roboact.sim.demos import read_demos
    from roboact.sim.demos_lerobot import _layout, _values, lerobot_dir

    root = Path(args.demos)
    files = [read_demos(p) for p in sorted((root / args.suite).glob("*_demo.hdf5"))]
    layout = _layout(args.suite, files)
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "lerobot.npz"
        proc = subprocess.run([args.lerobot_python, "-c", DUMP, str(lerobot_dir(root, args.suite)), str(dump),
                               args.video_backend],
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        got = dict(np.load(dump, allow_pickle=False))
    want = {"action": [], "state": [], "task": [], "frame": []}
    want_img = {c: [] for c in layout["cameras"]}
    for f in files:
        for key in f.keys:
            ep = f.episode(key)
            v = _values(ep, layout, key)
            want["action"].append(v["action"].astype(np.float32))
            want["state"].append(v["observation.state"].astype(np.float32))
            want["task"] += [f.instruction] * ep.num_samples
            want["frame"] += list(range(ep.num_samples))
            for cam, obs_key in layout["cameras"].items():
                want_img[cam].append(ep.obs[obs_key])
    summary = {"lerobot_python": args.lerobot_python, "video_backend": args.video_backend or "lerobot default",
               "frames": int(len(got["action"])),
               "episodes": int(len(set(got["episode"].tolist()))),
               "frames_expected": int(sum(len(a) for a in want["action"])),
               "tasks_equal": got["task"].tolist() == want["task"],
               "frame_index_equal": got["frame"].tolist() == want["frame"],
               "action_max_abs_diff": float(np.abs(got["action"] - np.concatenate(want["action"])).max()),
               "state_max_abs_diff": float(np.abs(got["state"] - np.concatenate(want["state"])).max())}
    for cam in got["cams"].tolist():
        err = np.abs(got[f"img:{cam}"].astype(int) - np.concatenate(want_img[cam]).astype(int))
        summary[f"{cam} pixel abs error (mean, p99, max)"] = [round(float(err.mean()), 3),
                                                              float(np.percentile(err, 99)), int(err.max())]
    print(json.dumps(summary, indent=1))
    ok = summary["frames"] == summary["frames_expected"] and summary["tasks_equal"] and summary["frame_index_equal"]
    return 0 if ok and summary["action_max_abs_diff"] < 1e-6 and summary["state_max_abs_diff"] < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())

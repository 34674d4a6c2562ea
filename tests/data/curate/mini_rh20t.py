"""Builds a miniature RH20T tree with real tiny mp4s, covering the layouts and faults curate must handle.

Expected outcome with the rule annotator (also used by docs/curate.md):
  accepted: task_0001 robot cam_A (10 frames, color.mp4) and cam_B (8, color/color.mp4);
            task_0001 human cam_A (12 frames, trimmed by timestamps to 6) and cam_B (7, no timestamps);
            task_0005 robot cam_A (9)                       -> 5 videos, 2 tasks, 2 actions, 40 frames
  rejected: cam_C without video (no_video), task_0002 rating 1 (low_rating), task_0003 two actions
            (multi_action), task_0004 truncated mp4 (unreadable_video), task_0099 without language
            (no_language), task_0006 without metadata.json (bad_metadata)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from roboact.data.video import write_mp4

DESCRIPTIONS = {
    "task_0001": {"task_description_english": "Open the middle drawer.",
                  "task_description_chinese": "打开中间的抽屉"},
    "task_0002": {"task_description_english": "Push the box forward."},
    "task_0003": {"task_description_english": "Pick up the cup and place it on the plate."},
    "task_0004": {"task_description_english": "Turn on the lamp."},
    "task_0005": {"task_description_english": "Press the red button."},
    "task_0006": {"task_description_english": "Wipe the table."},
}
EXPECTED = {"videos": 5, "tasks": 2, "actions": 2, "frames": 10 + 8 + 6 + 7 + 9,
            "rejected": {"no_video": 1, "low_rating": 1, "multi_action": 1, "unreadable_video": 1,
                         "no_language": 1, "bad_metadata": 1}}


def video(path: Path, frames: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    write_mp4(path, rng.integers(0, 255, (frames, 16, 16, 3), dtype=np.uint8), fps=10)
    return path


def episode(root: Path, name: str, meta: dict | None) -> Path:
    ep = root / name
    ep.mkdir(parents=True)
    if meta is not None:
        (ep / "metadata.json").write_text(json.dumps(meta))
    return ep


def build_mini_rh20t(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "task_description.json").write_text(json.dumps(DESCRIPTIONS, ensure_ascii=False), encoding="utf-8")
    cfg3, cfg5 = root / "RH20T_cfg3", root / "RH20T_cfg5"
    (cfg3 / "calib" / "1234").mkdir(parents=True)  # not an episode: skipped silently

    ep = episode(cfg3, "task_0001_user_0001_scene_0001_cfg_0003", {"rating": 4, "finish_time": 1700, "calib": 1234})
    video(ep / "cam_A" / "color.mp4", 10, 1)
    video(ep / "cam_B" / "color" / "color.mp4", 8, 2)
    (ep / "cam_C").mkdir()
    np.save(ep / "cam_C" / "timestamps.npy", np.arange(5))

    hum = episode(cfg3, "task_0001_user_0001_scene_0001_cfg_0003_human", {"start_time": 1200, "end_time": 1700})
    video(hum / "cam_A" / "color.mp4", 12, 3)
    stamps = {"color": [1000 + 100 * i for i in range(12)], "depth": [1000 + 100 * i for i in range(12)]}
    np.save(hum / "cam_A" / "timestamps.npy", stamps, allow_pickle=True)
    video(hum / "cam_B" / "color.mp4", 7, 4)

    video(episode(cfg3, "task_0002_user_0002_scene_0001_cfg_0003", {"rating": 1}) / "cam_A" / "color.mp4", 5)
    video(episode(cfg3, "task_0003_user_0001_scene_0002_cfg_0003", {"rating": 3}) / "cam_A" / "color.mp4", 5)
    bad = video(episode(cfg3, "task_0004_user_0001_scene_0003_cfg_0003", {"rating": 3}) / "cam_A" / "color.mp4", 6)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])   # truncated download

    video(episode(cfg5, "task_0005_user_0003_scene_0001_cfg_0005", {"rating": 2}) / "cam_A" / "color.mp4", 9, 5)
    video(episode(cfg5, "task_0099_user_0003_scene_0001_cfg_0005", {"rating": 4}) / "cam_A" / "color.mp4", 4)
    video(episode(cfg5, "task_0006_user_0003_scene_0002_cfg_0005", None) / "cam_A" / "color.mp4", 4)
    return root


if __name__ == "__main__":  # python -m tests.data.curate.mini_rh20t /tmp/mini_rh20t  (used by docs/curate.md)
    import sys

    print(build_mini_rh20t(Path(sys.argv[1])))

"""Cost of a recorded Meta-World corpus episode with every frame rendered vs `--video-frames 32` (render only
the frames the video keeps), and a check that the kept frames are the same pixels.

    python benchmarks/corpus_video_frames.py [--tasks push-v3 drawer-close-v3] > docs/results/corpus_video_frames.txt

Five cameras, 128 px, camera/light/table randomised (the roboact-sawyer-panda recipe's settings), one episode
per task, wall-clock on this machine (shared: compare the two columns, not machines).
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np

from roboact.sim.corpus import EpisodeJob, episode_seed, rollout

CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=["push-v3", "drawer-close-v3"])
    ap.add_argument("--video-frames", type=int, default=32)
    args = ap.parse_args()
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')}; 5 cameras, 128 px, randomised; 1 episode each")
    print("task | record frames | video frames | full render s | video-frames s | speed-up | pixels")
    for task in args.tasks:
        job = EpisodeJob(task, 0, episode_seed(0, task, 0), CAMERAS, 128, 200, 4, 20, "/tmp/unused",
                         ("camera", "light", "table"))
        rollout(job)  # warm the env cache: both timed runs reuse the env
        t = time.perf_counter()
        full = rollout(job)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        sub = rollout(dataclasses.replace(job, video_frames=args.video_frames))
        t_sub = time.perf_counter() - t
        keep = sub["video_steps"]
        same = all(np.array_equal(full["frames"][c][keep], sub["frames"][c]) for c in CAMERAS)
        print(f"{task} | {len(full['states'])} | {len(keep)} | {t_full:.2f} | {t_sub:.2f} | {t_full / t_sub:.1f}x | "
              f"{'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()

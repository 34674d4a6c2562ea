"""Speed of the Meta-World corpus: rendered frames/s per worker and seconds per kept episode.

    .venv/bin/python benchmarks/bench_simulate.py                       # defaults below
    .venv/bin/python benchmarks/bench_simulate.py --workers 1,2 --episodes 4 --json out.json

Four figures, all in fresh temporary folders:
0. experts: success rate and steps to success of every task of the table, on the corpus's own episode
   seeds (`--seed`, first `--expert-episodes` episodes), no rendering, the corpus's 200-step cap;
1. render: frames/s of FastRenderer alone, one process, per image size (the issue's >= 100 fps target);
2. rollout: sim + expert + rendering of one camera, frames/s over whole episodes;
3. corpus: `build_corpus` wall time per kept episode (rollout, H.264 encoding, records) per worker count.
The machine is shared and software-rendered (llvmpipe). Each figure is given per wall-clock second and per
CPU second of the process(es) doing the work (this process plus reaped worker processes): on a busy machine
the CPU-second figure is what one worker gets from an idle core; on an idle one the two agree.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np

from roboact.sim.corpus import CorpusConfig, build_corpus, episode_seed
from roboact.sim.metaworld import ATOMIC_TASKS, MetaWorldEnv, expert_for, quiet_experts

# Tasks a corpus may hold (roboact.data.heldout); until the never-pretrain list existed (issue #12) these were
# drawer-open, faucet-open, pick-place and window-close, which the figures in docs/simulate.md were measured on.
TASKS = ["drawer-close-v3", "faucet-open-v3", "push-v3", "window-open-v3"]


def cpu_now() -> float:
    """CPU seconds of this process and of its finished children (pool workers, once joined)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def expert_success(task: str, episodes: int, seed: int, max_steps: int = 200) -> dict:
    env, expert = MetaWorldEnv(task, cameras=(), max_steps=max_steps), expert_for(task)
    steps = []
    try:
        for i in range(episodes):
            obs, n = env.reset(seed=episode_seed(seed, task, i)), 0
            while not obs.success and n < max_steps:
                obs, n = env.step(expert.get_action(obs.state)), n + 1
            steps.append(n if obs.success else None)
    finally:
        env.close()
    ok = [s for s in steps if s is not None]
    return {"success": f"{len(ok)}/{episodes}", "median_steps": float(np.median(ok)) if ok else None,
            "max_steps": max(ok) if ok else None}


def bench_render(size: int, camera: str = "corner", n: int = 200) -> float:
    env = MetaWorldEnv("drawer-open-v3", cameras=(camera,), image_size=size)
    try:
        env.reset(seed=0)
        for _ in range(10):
            env.render(camera)                   # warm-up: first frames compile shaders
        t0, c0 = time.perf_counter(), cpu_now()
        for _ in range(n):
            env.render(camera)
        return {"wall": n / (time.perf_counter() - t0), "cpu": n / (cpu_now() - c0)}
    finally:
        env.close()


def bench_rollout(size: int, tasks: list[str], seeds: int = 3) -> dict:
    frames, seconds, cpu = 0, 0.0, 0.0
    for task in tasks:
        env, expert = MetaWorldEnv(task, cameras=("corner",), image_size=size), expert_for(task)
        try:
            for seed in range(seeds):
                t0, c0 = time.perf_counter(), cpu_now()
                obs, n = env.reset(seed=seed), 1
                while not obs.success and n <= env.max_steps:
                    obs, n = env.step(expert.get_action(obs.state)), n + 1
                seconds += time.perf_counter() - t0
                cpu += cpu_now() - c0
                frames += n
        finally:
            env.close()
    return {"frames_per_wall_s": frames / seconds, "frames_per_cpu_s": frames / cpu,
            "frames_per_episode": frames / (len(tasks) * seeds)}


def bench_corpus(workers: int, episodes: int, tasks: list[str], cameras: list[str], size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = CorpusConfig(out_dir=tmp, tasks=tasks, episodes_per_task=episodes, cameras=cameras,
                           image_size=size, workers=workers, progress=False, heldout_pairs=0)
        t0, c0 = time.perf_counter(), cpu_now()
        s = build_corpus(cfg)
        wall, cpu = time.perf_counter() - t0, cpu_now() - c0
    kept = max(s["episodes_kept"], 1)
    return {"workers": workers, "cameras": len(cameras), "episodes": s["episodes_planned"],
            "kept": s["episodes_kept"], "wall_s": wall, "wall_s_per_episode": wall / kept,
            "cpu_s_per_episode": cpu / kept}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,128,224")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--episodes", type=int, default=3, help="episodes per task for the corpus figure")
    ap.add_argument("--cameras", default="corner,corner3,corner4")
    ap.add_argument("--expert-episodes", type=int, default=20, help="episodes per task for the expert figure")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed whose episode scenes the experts run")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    quiet_experts()
    sizes = [int(s) for s in a.sizes.split(",")]
    res = {"machine": f"{platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}",
           "experts": {t: expert_success(t, a.expert_episodes, a.seed) for t in ATOMIC_TASKS},
           "render_fps": {s: bench_render(s) for s in sizes},
           "rollout_128": bench_rollout(128, TASKS),
           "corpus": [bench_corpus(int(w), a.episodes, TASKS, a.cameras.split(","), 128)
                      for w in a.workers.split(",")]}
    res["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res, indent=2, default=lambda o: float(np.asarray(o))))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()

"""Speed of the LIBERO-Goal layer: env creation, steps/s with and without rendering, seconds per episode.

    .venv/bin/python benchmarks/bench_libero.py                          # defaults below
    .venv/bin/python benchmarks/bench_libero.py --steps 400 --json out.json

Figures, one process, one render thread (LP_NUM_THREADS=1), software rendering (llvmpipe):
1. create: LiberoEnv construction + first reset (fixed initial state 0), seconds;
2. reset: a later reset (soft reset + set_init_state + settle steps), seconds;
3. steps/s with the scripted expert acting, for cameras: none / agentview / agentview + eye-in-hand,
   at --image-size (and agentview at 224 px for comparison);
4. seconds per 200-step episode = 200 / (steps/s with agentview) + reset.
The machine is shared: each figure is given per wall-clock second and per CPU second of this process
(on a busy machine the CPU figure is what one worker gets from an idle core).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from roboact.sim.experts import expert_for
from roboact.sim.libero import LiberoConfig, LiberoEnv


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def steps_per_second(env: LiberoEnv, steps: int) -> dict:
    """Run the expert over consecutive fixed initial states until `steps` steps are done (resets excluded)."""
    done, wall, cpu, state = 0, 0.0, 0.0, 0
    while done < steps:
        obs = env.reset(init_state=state % 50)
        expert = expert_for(env.task)
        expert.reset(env)
        w, c = time.perf_counter(), time.process_time()
        while done < steps and env.steps_taken < env.max_steps and not obs.success:
            obs = env.step(expert.act(obs))
            done += 1
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        state += 1
    return {"steps": done, "steps_per_s_wall": done / wall, "steps_per_s_cpu": done / cpu}


def bench(task: str, steps: int, size: int) -> dict:
    cfg = LiberoConfig(task=task, image_size=size, cameras=("agentview",))

    def create():
        e = LiberoEnv(cfg)
        e.reset(init_state=0)
        return e

    env, create_wall, create_cpu = timed(create)
    resets = [timed(lambda i=i: env.reset(init_state=i))[1:] for i in range(1, 6)]
    out = {"task": task, "image_size": size, "create_s_wall": create_wall, "create_s_cpu": create_cpu,
           "reset_s_wall": float(np.mean([r[0] for r in resets])),
           "reset_s_cpu": float(np.mean([r[1] for r in resets])), "rollout": {}}
    env.close()
    for name, cams, px in (("none", (), size), ("agentview", ("agentview",), size),
                           ("agentview+eye_in_hand", ("agentview", "robot0_eye_in_hand"), size),
                           ("agentview@224", ("agentview",), 224)):
        with LiberoEnv(LiberoConfig(task=task, image_size=px, cameras=cams)) as e:
            out["rollout"][name] = steps_per_second(e, steps)
            print(name, {k: round(v, 1) for k, v in out["rollout"][name].items()}, flush=True)
    rate = out["rollout"]["agentview"]
    out["episode_200_s_wall"] = 200 / rate["steps_per_s_wall"] + out["reset_s_wall"]
    out["episode_200_s_cpu"] = 200 / rate["steps_per_s_cpu"] + out["reset_s_cpu"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="open_the_middle_drawer_of_the_cabinet")
    ap.add_argument("--steps", type=int, default=300, help="expert steps per rollout figure")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--json", default="", help="also write the figures here")
    args = ap.parse_args()
    result = {"machine": platform.processor() or platform.machine(), **bench(args.task, args.steps,
                                                                            args.image_size)}
    print(json.dumps(result, indent=2))
    if args.json:
        from roboact.utils.io import atomic_write_json

        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()

"""What the policy's input knows: linear probes of each row's frozen embedding on the benchmark's demos.

Why: in Tables II/III the frozen backbone's current-frame feature makes better policies than RoboAct-CLIP's
embedding computed from it. One reading is that the embedding, trained to name a clip's action and object,
keeps less of *where* things are than the frame feature does. This measures it directly. For every task and
row, a ridge regression from the embedding (the exact per-step vectors the BC policy is trained on, read
from the same feature cache) is fit on the first demos and scored (R^2) on the last ones, for targets the
policy needs but does not get through proprioception:

- object position (Meta-World: obs/object_state[4:7], the task's object),
- goal position (Meta-World obs/object_state[36:39]; randomised per episode and seen only in the image),
- object state (LIBERO-Goal's paper tasks: the acted-on object's joint in the recorded simulator state — the
  plate's and the cream cheese's xyz, the middle drawer's slide, the stove button's hinge),
- the expert's action (from the embedding alone, without proprioception),
- the expert's previous action (step t-1; zero at an episode's first step): what a policy that sees a history
  of frames can copy instead of reading the scene (the "copycat" shortcut of behaviour cloning from
  observation histories, Wen et al., NeurIPS 2020; causal confusion, de Haan et al., NeurIPS 2019). A window
  input that holds it much better than the current frame does offers the policy that shortcut.

    .venv/bin/python benchmarks/probe_policy_features.py --suite metaworld --demos runs/policy/demos \
        --cache runs/policy/cache --stride 5 --model 'NAME=CHECKPOINT' ... [--out docs/results/probe.md]

Rows: the frozen backbone alone (one row per --backbone-output), then every --model (comma-separated
checkpoints, one per pretraining seed, are probed each and averaged). Embeddings missing from the cache are
computed (slow: the backbone runs over every demo frame), so run it after `roboact policy` with the same
--cache, --stride and --runtime.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from roboact.backbones.runtime import RUNTIMES
from roboact.policy.data import DemoFeatureCache, load_demo_set, open_demos, read_fields
from roboact.policy.encoders import BACKBONE_OUTPUTS, EncoderSettings, RowSpec, build_encoder
from roboact.policy.probes import RIDGE_GRID, best_ridge_r2
from roboact.policy.suites import get_bench_suite
from roboact.utils.io import atomic_write_json, atomic_write_text

# Meta-World's 39-d observation: hand xyz, gripper, object 1 xyz + quat, object 2 xyz + quat, the same
# 18 numbers one step earlier, goal xyz.
METAWORLD_TARGETS = {"object position": slice(4, 7), "goal position": slice(36, 39)}


# LIBERO-Goal's demos record the flat simulator state ([time, qpos, qvel]); the object each paper task acts on
# is one joint of it: a free body's xyz, or the drawer's slide and the stove button's hinge.
LIBERO_OBJECT_JOINTS = {"open_the_middle_drawer_of_the_cabinet": "wooden_cabinet_1_middle_level",
                        "push_the_plate_to_the_front_of_the_stove": "plate_1_joint0",
                        "put_the_cream_cheese_in_the_bowl": "cream_cheese_1_joint0",
                        "turn_on_the_stove": "flat_stove_1_button"}


def libero_object_columns(task: str) -> tuple[slice, int]:
    """Where the task's object joint sits in a recorded `states` row, and that row's width, from its own scene."""
    import mujoco

    from roboact.sim.libero import make_env

    env = make_env(task)
    try:
        m = env.model
        j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, LIBERO_OBJECT_JOINTS[task])
        if j < 0:
            raise SystemExit(f"{task}: no joint {LIBERO_OBJECT_JOINTS[task]!r} in its scene")
        width = 3 if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE else 1
        start = 1 + int(m.jnt_qposadr[j])                 # after the time entry
        return slice(start, start + width), 1 + m.nq + m.nv
    finally:
        env.close()


def task_targets(suite, tasks, args) -> dict:
    """Each task's demo file and the state targets read from it: the same for every row, so read once."""
    out = {}
    for task in tasks:
        src = open_demos(suite, task, args.demos, args.num_demos, 0)
        state = {}
        if args.suite == "metaworld":
            obj = torch.cat([torch.from_numpy(read_fields(src, k, ["obs/object_state"])["obs/object_state"])
                             for k in src.keys]).double()
            state = {name: obj[:, sl] for name, sl in METAWORLD_TARGETS.items()}
        elif args.suite == "libero_goal" and task in LIBERO_OBJECT_JOINTS:
            cols, width = libero_object_columns(task)
            flat = torch.cat([torch.from_numpy(read_fields(src, k, ["states"])["states"]) for k in src.keys]).double()
            if flat.shape[1] != width:
                raise SystemExit(f"{task}: recorded states are {flat.shape[1]}-d, its scene's are {width}-d")
            state = {"object state": flat[:, cols]}
        out[task] = (src, state)
    return out


def previous(data) -> torch.Tensor:
    """Each step's previous expert action in its own episode (zero at an episode's first step)."""
    acts = data.actions.double()
    prev = torch.zeros_like(acts)
    same = data.episode[1:] == data.episode[:-1]
    prev[1:][same] = acts[:-1][same]
    return prev


def probe_row(spec: RowSpec, settings: EncoderSettings, suite, targets, args, cache) -> dict[str, dict[str, float]]:
    """Held-out R^2 per task and target of one row (one checkpoint)."""
    enc = build_encoder(spec, settings)
    out: dict[str, dict[str, float]] = {}
    for task, (src, state) in targets.items():
        data = load_demo_set(enc, src, suite, cache)
        tr = data.episode < args.num_demos - args.held_out
        x = data.inputs(torch.arange(len(data))).flatten(1).double()   # tokens: probed concatenated
        ys = {"expert action": data.actions.double(), "previous expert action": previous(data), **state}
        out[task] = {t: round(best_ridge_r2(x[tr], y[tr], x[~tr], y[~tr]), 3) for t, y in ys.items()}
        print(spec.name, task, out[task], file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="metaworld")
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--demos", default="runs/policy/demos")
    ap.add_argument("--cache", default="runs/policy/cache")
    ap.add_argument("--num-demos", type=int, default=50)
    ap.add_argument("--held-out", type=int, default=10, help="last demos scored, the others fit")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--output", default="fused", help="what every RoboAct-CLIP row's policy sees")
    ap.add_argument("--backbone-output", nargs="+", default=["frame"], choices=BACKBONE_OUTPUTS,
                    help="one backbone row per output (as `roboact policy --backbone-output`)")
    ap.add_argument("--no-backbone-row", action="store_true")
    ap.add_argument("--runtime", choices=RUNTIMES, default="default",
                    help="the policy run's --runtime, so its cached embeddings are reused")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT[,CHECKPOINT...]",
                    help="one row; several checkpoints (one per pretraining seed) are probed each and averaged")
    ap.add_argument("--out", default=None, help="markdown file to write (and .json beside it)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    suite = get_bench_suite(args.suite)
    tasks = args.tasks or list(suite.tasks)
    settings = EncoderSettings(stride=args.stride, output=args.output, runtime=args.runtime)
    rows: list[tuple[str, list[RowSpec]]] = []
    if not args.no_backbone_row:
        rows += [(f"frozen backbone alone ({o})", [RowSpec(f"frozen backbone alone ({o})", "backbone", output=o)])
                 for o in args.backbone_output]
    for m in args.model:
        name, _, paths = m.partition("=")
        if not name or not paths:
            ap.error(f"--model {m!r}: expected NAME=CHECKPOINT[,CHECKPOINT...]")
        rows.append((name, [RowSpec(name, "roboact", p) for p in paths.split(",")]))
    if not rows:
        ap.error("nothing to probe: --no-backbone-row needs at least one --model")
    cache = DemoFeatureCache(args.cache)
    targets = task_targets(suite, tasks, args)
    per_seed: dict[str, list[dict[str, dict[str, float]]]] = {}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, specs in rows:
        per_seed[name] = [probe_row(spec, settings, suite, targets, args, cache) for spec in specs]
        results[name] = {task: {t: round(float(np.mean([s[task][t] for s in per_seed[name]])), 3)
                                for t in per_seed[name][0][task]} for task in tasks}

    target_names = list(next(iter(next(iter(results.values())).values())))
    lines = [f"# Linear probes of the policy inputs ({args.suite}, RoboAct output `{args.output}`, "
             f"stride {args.stride})", "",
             f"Held-out R^2 of ridge regression from each row's per-step embedding (fit on demos 0-"
             f"{args.num_demos - args.held_out - 1}, scored on the last {args.held_out}; best of a "
             f"{len(RIDGE_GRID)}-value ridge grid; token inputs concatenated; a row with several checkpoints: "
             "the mean over them, each in the JSON). Command: `.venv/bin/python "
             + shlex.join(["benchmarks/probe_policy_features.py", *sys.argv[1:]]) + "`", ""]
    for target in target_names:
        lines += [f"## {target}", "", "| row | " + " | ".join(tasks) + " | mean |",
                  "|---|" + "---|" * (len(tasks) + 1)]
        for name, per_task in results.items():
            vals = [per_task[t][target] for t in tasks]
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
        atomic_write_json(Path(args.out).with_suffix(".json"), {"args": vars(args), "r2": results,
                                                                 "r2_per_checkpoint": per_seed})


if __name__ == "__main__":
    main()

"""What the policy's input knows: linear probes of each row's frozen embedding on the benchmark's demos.

Why: in Tables II/III the frozen backbone's current-frame feature makes better policies than RoboAct-CLIP's
embedding computed from it. One reading is that the embedding, trained to name a clip's action and object,
keeps less of *where* things are than the frame feature does. This measures it directly. For every task and
row, a ridge regression from the embedding (the exact per-step vectors the BC policy is trained on, read
from the same feature cache) is fit on the first demos and scored (R^2) on the last ones, for targets the
policy needs but does not get through proprioception:

- object position (Meta-World: obs/object_state[4:7], the task's object; LIBERO: not recorded, skipped),
- goal position (Meta-World obs/object_state[36:39]; randomised per episode and seen only in the image),
- the expert's action (from the embedding alone, without proprioception).

    .venv/bin/python benchmarks/probe_policy_features.py --suite metaworld --demos runs/policy/demos \
        --cache runs/policy/cache --stride 5 --model 'NAME=CHECKPOINT' ... [--out docs/results/probe.md]

Rows: the frozen backbone alone, then every --model. Embeddings missing from the cache are computed (slow:
the backbone runs over every demo frame), so run it after `roboact policy` with the same --cache/--stride.
"""
from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
import torch

from roboact.policy.data import DemoFeatureCache, load_demo_set, open_demos, read_fields
from roboact.policy.encoders import EncoderSettings, RowSpec, build_encoder
from roboact.policy.suites import get_bench_suite
from roboact.utils.io import atomic_write_json

# Meta-World's 39-d observation: hand xyz, gripper, object 1 xyz + quat, object 2 xyz + quat, the same
# 18 numbers one step earlier, goal xyz.
METAWORLD_TARGETS = {"object position": slice(4, 7), "goal position": slice(36, 39)}


def ridge_r2(x_tr: torch.Tensor, y_tr: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor,
             lam: float) -> float:
    """R^2 on held-out rows (averaged over target dims) of ridge regression on standardised inputs."""
    mu, sd = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    a, b = (x_tr - mu) / sd, (x_te - mu) / sd
    ym = y_tr.mean(0)
    a1 = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
    b1 = torch.cat([b, torch.ones(len(b), 1, dtype=b.dtype)], 1)
    reg = lam * torch.eye(a1.shape[1], dtype=a.dtype)
    reg[-1, -1] = 0
    w = torch.linalg.solve(a1.T @ a1 + reg, a1.T @ (y_tr - ym))
    pred = b1 @ w + ym
    ss_res = ((y_te - pred) ** 2).sum(0)
    ss_tot = ((y_te - y_te.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return float((1 - ss_res / ss_tot).mean())


def best_ridge_r2(x_tr, y_tr, x_te, y_te, lams=(1.0, 10.0, 100.0, 1000.0)) -> float:
    """Best over a small grid (chosen on the held-out demos: an upper bound, the same for every row)."""
    return max(ridge_r2(x_tr, y_tr, x_te, y_te, lam) for lam in lams)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="metaworld")
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--demos", default="runs/policy/demos")
    ap.add_argument("--cache", default="runs/policy/cache")
    ap.add_argument("--num-demos", type=int, default=50)
    ap.add_argument("--held-out", type=int, default=10, help="last demos scored, the others fit")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--output", default="fused")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT")
    ap.add_argument("--out", default=None, help="markdown file to write (and .json beside it)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    suite = get_bench_suite(args.suite)
    tasks = args.tasks or list(suite.tasks)
    settings = EncoderSettings(stride=args.stride, output=args.output)
    specs = [RowSpec("frozen backbone alone", "backbone")]
    for m in args.model:
        name, _, path = m.partition("=")
        specs.append(RowSpec(name, "roboact", path))
    cache = DemoFeatureCache(args.cache)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for spec in specs:
        enc = build_encoder(spec, settings)
        results[spec.name] = {}
        for task in tasks:
            src = open_demos(suite, task, args.demos, args.num_demos, 0)
            data = load_demo_set(enc, src, suite, cache)
            tr = data.episode < args.num_demos - args.held_out
            x = data.inputs(torch.arange(len(data))).flatten(1).double()   # tokens: probed concatenated
            targets = {"expert action": data.actions.double()}
            if args.suite == "metaworld":
                state = torch.cat([torch.from_numpy(read_fields(src, k, ["obs/object_state"])["obs/object_state"])
                                   for k in src.keys]).double()
                targets.update({name: state[:, sl] for name, sl in METAWORLD_TARGETS.items()})
            results[spec.name][task] = {t: round(best_ridge_r2(x[tr], y[tr], x[~tr], y[~tr]), 3)
                                        for t, y in targets.items()}
            print(spec.name, task, results[spec.name][task], file=sys.stderr)

    target_names = list(next(iter(next(iter(results.values())).values())))
    lines = [f"# Linear probes of the policy inputs ({args.suite}, output `{args.output}`, stride {args.stride})", "",
             f"Held-out R^2 of ridge regression from each row's per-step embedding (fit on demos 0-"
             f"{args.num_demos - args.held_out - 1}, scored on the last {args.held_out}; best of a 4-value "
             "ridge grid). Command: `.venv/bin/python " + shlex.join(["benchmarks/probe_policy_features.py", *sys.argv[1:]])
             + "`", ""]
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
        from pathlib import Path

        from roboact.utils.io import atomic_write_text

        atomic_write_text(Path(args.out), text + "\n")
        atomic_write_json(Path(args.out).with_suffix(".json"), {"args": vars(args), "r2": results})


if __name__ == "__main__":
    main()

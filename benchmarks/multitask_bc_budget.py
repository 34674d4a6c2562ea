"""How many BC steps does the multi-task policy need? Held-out demo loss against training steps.

Issue 14's grid first trained each multi-task policy for 20,000 steps of batch 32 - on 14 tasks (ten LIBERO-Goal
tasks and the chain's four stages), i.e. ~1,400 steps per task, where issue 12's one-task policies had 10,000.
This trains the same policy (the same rows, conditions, demos and cached features as `roboact policy
--multitask`, built by the same code) on all but the last `--holdout` demos of every task and reports, at each
step count, the MSE on those held-out demos and on a fixed sample of the training steps. No rollouts: nothing
here reads a success rate, so the step count is not tuned on the benchmark's tasks.

    .venv/bin/python benchmarks/multitask_bc_budget.py --steps 20000 60000 100000 140000 \\
        --json docs/results/study14/bc_budget_backbone_sentence.json -- <the grid's roboact policy flags>

The flags after `--` are `roboact policy`'s (scripts/study14/run.sh `grid`); `--row` picks the row (0: the first
that runs) and `--condition` one of the config's conditions.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch


def held_out_masks(sets, holdout: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train mask, held-out mask) over the concatenated steps: each task's last `holdout` demos held out."""
    train, held = [], []
    for s in sets:
        last = int(s.episode.max())
        h = s.episode > last - holdout
        train.append(~h)
        held.append(h)
    return torch.cat(train), torch.cat(held)


@torch.no_grad()
def mse(policy, data, idx: torch.Tensor, cond: torch.Tensor) -> float:
    policy.eval()
    total, n = 0.0, 0
    for chunk in idx.split(4096):
        _, loss = policy(data.inputs(chunk), data.proprio[chunk], data.actions[chunk], cond=cond[chunk])
        total += float(loss) * len(chunk)
        n += len(chunk)
    return total / max(n, 1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, policy_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", required=True, help="step counts to report (ascending)")
    ap.add_argument("--holdout", type=int, default=5, help="last demos of every task held out (default 5)")
    ap.add_argument("--row", type=int, default=0, help="index among the rows that run (default 0)")
    ap.add_argument("--condition", default=None, help="one of the config's conditions (default its first usable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a grid worker has)")
    args = ap.parse_args(ours)
    torch.set_num_threads(args.threads)
    if sorted(args.steps) != args.steps or args.steps[0] <= 0:
        ap.error("--steps must be positive and ascending")

    from roboact.cli import build_parser
    from roboact.policy import benchmark as bm
    from roboact.policy.cli import build_config
    from roboact.policy.conditioning import condition_vectors, unavailable
    from roboact.policy.data import DemoFeatureCache, DemoSet, load_demo_set, open_demos
    from roboact.policy.multitask import concat_sets, multitask_tasks
    from roboact.policy.suites import get_bench_suite
    from roboact.policy.train import make_policy, train_steps

    cfg = build_config(build_parser().parse_args(["policy", *policy_args]))
    if not cfg.multitask:
        ap.error("give the grid's `roboact policy --multitask ...` flags after --")
    suite = get_bench_suite(cfg.suite)
    tasks = [suite.canonical(t) for t in cfg.tasks]
    train_tasks, _, instructions = multitask_tasks(cfg, suite, tasks)
    rows = [r for r in bm.prepare_rows(cfg, tasks) if r.status == "ok"]
    row = rows[args.row]
    cond = args.condition or next(c for c in cfg.conditions if not unavailable(c, row.spec.kind))
    if unavailable(cond, row.spec.kind):
        ap.error(f"condition {cond} does not apply to row {row.spec.name}")
    cache = DemoFeatureCache(cfg.cache_dir)
    sources = {t: open_demos(suite, t, cfg.demos_dir, cfg.num_demos, cfg.rollouts) for t in train_tasks}
    sets = [load_demo_set(row.encoder, sources[t], suite, cache) for t in train_tasks]
    data, task_ids = concat_sets(sets)
    train_mask, held_mask = held_out_masks(sets, args.holdout)
    text = [instructions[t] for t in train_tasks]
    ckpt = row.spec.path if row.spec.kind == "roboact" else None
    vectors = condition_vectors(cond, text, text, cfg.encoder, ckpt)
    cond_per_step = vectors[task_ids]

    # training draws only from the kept steps: a view of the set restricted to them
    keep = train_mask.nonzero().squeeze(1)
    held = held_mask.nonzero().squeeze(1)
    sub = DemoSet(data.embeddings if data.windows is not None else data.embeddings[keep], data.proprio[keep],
                  data.actions[keep], data.episode[keep], data.source,
                  data.windows[keep] if data.windows is not None else None)
    train_cfg = dataclasses.replace(cfg.train, seed=args.seed)
    policy = make_policy(sub, train_cfg, cond_dim=int(vectors.shape[1]))
    opt = torch.optim.Adam(policy.parameters(), lr=train_cfg.lr)
    gen = torch.Generator().manual_seed(args.seed)
    sample = keep[torch.randperm(len(keep), generator=torch.Generator().manual_seed(1))[:len(held)]]
    rows_out, done, t0 = [], 0, time.perf_counter()
    for at in args.steps:
        loss = train_steps(policy, opt, sub, at - done, train_cfg.batch_size, gen, (task_ids[keep], vectors))
        done = at
        rows_out.append({"step": at, "train_loss_running": loss, "train_mse": mse(policy, data, sample, cond_per_step),
                         "heldout_mse": mse(policy, data, held, cond_per_step),
                         "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows_out[-1]), flush=True)
    out = {"command": "benchmarks/multitask_bc_budget.py " + " ".join(argv), "row": row.spec.name,
           "condition": cond, "train_tasks": train_tasks, "holdout_demos_per_task": args.holdout,
           "train_steps_kept": len(keep), "heldout_steps": len(held), "batch_size": train_cfg.batch_size,
           "lr": train_cfg.lr, "seed": args.seed, "rows": rows_out}
    if args.json:
        from roboact.utils.io import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

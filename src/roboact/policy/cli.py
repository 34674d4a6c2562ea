"""`roboact policy`: behaviour cloning on frozen encoders in simulation -> the paper's Tables II and III.

    roboact policy --suite metaworld --mode smoke --make-demos --model RoboAct-CLIP=runs/.../full/final
    roboact policy --suite libero_goal --mode full --demos data/demos --model RoboAct-CLIP=... \\
        --model "ablation 1=.../no_temporal/final" --model "ablation 2=.../no_disentangle/final"
    roboact policy --exclude-tasks --suite metaworld --manifest corpus/manifest.jsonl --manifest-out m.jsonl
"""
from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "policy", help="behaviour cloning on frozen encoders in simulation (paper Tables II and III)",
        description="Train R3M-style behaviour-cloning policies (BatchNorm + MLP(256, 256) on the frozen "
                    "embedding with proprioception, MSE) on scripted demonstrations, roll them out from fixed "
                    "initial states and write Tables II and III (markdown + JSON), a bar chart and rollout "
                    "videos. Rows: the frozen backbone alone, every --model checkpoint (its role - RoboAct-CLIP, "
                    "ablation 1 or 2 - is read from its config), and R3M / MPI / real CLIP when given weights "
                    "(otherwise listed as 'not run'). Resumable: rerun the same command.")
    _rows_and_encoders(p)
    _protocol(p)
    g = p.add_argument_group("pretraining without the evaluation tasks (writes a manifest and exits)")
    g.add_argument("--exclude-tasks", nargs="*", default=None, metavar="TASK",
                   help="write --manifest without these tasks' clips (no TASK: the suite's four) to --manifest-out")
    g.add_argument("--manifest", help="source manifest for --exclude-tasks")
    g.add_argument("--manifest-out", help="filtered manifest to write")
    p.set_defaults(func=run)


def _rows_and_encoders(p) -> None:
    p.add_argument("--suite", choices=("metaworld", "libero_goal"), default="metaworld")
    p.add_argument("--mode", choices=("smoke", "full", "custom"), default="smoke",
                   help="smoke: 1 task, 2 demos, 2 short rollouts (CI); full: 4 tasks, 50 demos, >= 3 seeds x "
                        ">= 20 rollouts (hours on CPU); custom: full's defaults without its minimums")
    p.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT",
                   help="a RoboAct-CLIP checkpoint folder as a row (repeatable)")
    p.add_argument("--no-backbone-row", action="store_true", help="leave out the frozen-backbone-alone row")
    p.add_argument("--backbone", default="lite0-minilm", help="frozen backbone shared by every row")
    p.add_argument("--backbone-path", default=None)
    p.add_argument("--output", choices=("fused", "subject", "action", "object"), default="fused",
                   help="which RoboAct-CLIP output the policy sees (default fused)")
    p.add_argument("--window", type=int, default=None, help="RoboAct stream window (default: checkpoint's n)")
    p.add_argument("--stride", type=int, default=1,
                   help="control steps between the RoboAct window's frames (default 1: the last n frames)")
    p.add_argument("--r3m", default=None, metavar="PATH", help="R3M folder with model.pt")
    p.add_argument("--mpi", default=None, metavar="PATH", help="MPI checkpoint folder")
    p.add_argument("--clip", default=None, metavar="PATH", help="local CLIP folder (transformers layout)")


def _protocol(p) -> None:
    p.add_argument("--tasks", nargs="+", default=None, metavar="TASK")
    p.add_argument("--demos", default="data/demos", help="roboact demos output folder (<suite>/<task>_demo.hdf5)")
    p.add_argument("--make-demos", action="store_true", help="generate missing demos with the scripted experts")
    p.add_argument("--num-demos", type=int, default=None)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--rollouts", type=int, default=None, help="rollouts per task, seed and evaluation")
    p.add_argument("--max-steps", type=int, default=None, help="episode cap (full: 200, the paper's)")
    p.add_argument("--steps", type=int, default=None, help="BC training steps")
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N training steps")
    p.add_argument("--videos", type=int, default=None, help="rollout videos per row and task")
    p.add_argument("--min-expert-success", type=float, default=0.8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--parallel", type=int, default=1,
                   help="envs per process rolled out in lockstep, one batched encoder call per step (default 1: "
                        "on one CPU thread batching lite0 frames saves at most ~20%%; with --device cuda it pays: "
                        "~4 ms per frame alone vs 0.2 ms in batches of 20 on an H100)")
    p.add_argument("--device", default="cpu",
                   help="where the frozen encoders run: cpu (default) or cuda[:i]; the BC policy and the "
                        "simulators stay on the CPU. Results do not depend on it beyond float rounding")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per process (default 1, fastest on a shared CPU; 0: torch default)")
    p.add_argument("-o", "--out", default=None, help="default runs/policy/<suite>-<mode>")
    p.add_argument("--cache", default="runs/policy/cache", help="demo feature cache (shared across runs)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from roboact.utils.config import ConfigError

    try:
        if args.exclude_tasks is not None:
            return _exclude(args)
        return _bench(args)
    except ConfigError as e:
        raise ValueError(f"invalid option: {e}") from None


def _exclude(args) -> int:
    from roboact.data.manifest_ops import exclude_tasks
    from roboact.policy.corpus import task_key
    from roboact.policy.suites import get_bench_suite

    if not args.manifest or not args.manifest_out:
        raise ValueError("--exclude-tasks needs --manifest IN and --manifest-out OUT")
    tasks = args.exclude_tasks or list(get_bench_suite(args.suite).tasks)
    res = exclude_tasks(args.manifest, tasks, args.manifest_out, key=task_key)
    print(f"wrote {res['out']}: {res['kept']} clips kept; dropped {res['dropped'] or 'none'}")
    print(f"next: roboact train --manifest {res['out']} --cache <feature cache of {args.manifest}> "
          f"--out runs/models/no_eval_tasks")
    return 0


def parse_models(items: list[str]):
    from roboact.policy.encoders import RowSpec

    rows = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--model expects NAME=CHECKPOINT, got {item!r}")
        rows.append(RowSpec(name.strip(), "roboact", path.strip()))
    return rows


def build_config(args):
    """argparse namespace -> BenchmarkConfig: the mode's preset, then every flag that was given."""
    import dataclasses

    from roboact.policy.benchmark import BenchmarkConfig, preset
    from roboact.policy.encoders import EncoderSettings, RowSpec

    base = preset(args.mode, args.suite)
    train = dataclasses.replace(base.pop("train"), **{k: v for k, v in (("steps", args.steps),
                                                                           ("eval_every", args.eval_every))
                                                       if v is not None})
    if args.steps is not None and args.eval_every is None:
        train = dataclasses.replace(train, eval_every=min(train.eval_every, train.steps))
    given = {k: v for k, v in (("tasks", args.tasks), ("num_demos", args.num_demos), ("seeds", args.seeds),
                               ("rollouts", args.rollouts), ("max_steps", args.max_steps),
                               ("videos", args.videos)) if v is not None}
    rows = [] if args.no_backbone_row else [RowSpec(f"frozen backbone alone ({args.backbone})", "backbone")]
    rows += parse_models(args.model)
    rows += [RowSpec("R3M", "r3m", args.r3m), RowSpec("MPI", "mpi", args.mpi),
             RowSpec("CLIP (real)", "clip", args.clip)]
    return BenchmarkConfig(
        suite=args.suite, mode=args.mode, rows=rows, train=train, demos_dir=args.demos, make_demos=args.make_demos,
        encoder=EncoderSettings(args.backbone, args.backbone_path, args.output, args.window, args.stride,
                                args.device),
        min_expert_success=args.min_expert_success, workers=args.workers, parallel=args.parallel, threads=args.threads,
        out=args.out or f"runs/policy/{args.suite}-{args.mode}", cache_dir=args.cache,
        command=" ".join(["roboact", *map(shlex.quote, sys.argv[1:])]), progress=not args.no_progress,
        **{**base, **given})


def _bench(args) -> int:
    from roboact.policy.benchmark import run_benchmark

    cfg = build_config(args)
    report = run_benchmark(cfg)
    print("expert: " + ", ".join(f"{t} {r['successes']}/{r['episodes']}" for t, r in report["expert"].items()))
    for r in report["rows"]:
        if r["status"] != "ok":
            print(f"{r['name']}: {r['status']}")
            continue
        b, f = r["overall"]["best"], r["overall"]["final"]
        print(f"{r['name']}: best {b['mean']:.1f}%, final {f['mean']:.1f}% (overall, {b['n']} seed(s))")
    print(f"tables: {cfg.out}/table2.md, {cfg.out}/table3.md (+ .json), chart: {cfg.out}/success.png")
    return 0

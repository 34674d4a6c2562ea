"""`roboact policy`: behaviour cloning on frozen encoders in simulation -> the paper's Tables II and III.

    roboact policy --suite metaworld --mode smoke --make-demos --model RoboAct-CLIP=runs/.../full/final
    roboact policy --suite libero_goal --mode full --demos data/demos --model RoboAct-CLIP=... \\
        --model "ablation 1=.../no_temporal/final" --model "ablation 2=.../no_disentangle/final"
    roboact policy --suite libero_goal --mode full --multitask --model RoboAct-CLIP=... \
        --condition roboact-text sentence onehot       # one policy for all ten tasks, per condition
    roboact policy --exclude-tasks --suite metaworld --manifest corpus/manifest.jsonl --manifest-out m.jsonl
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from roboact.backbones.runtime import RUNTIME_HELP, RUNTIMES
from roboact.policy.conditioning import CONDITIONS
from roboact.policy.encoders import BACKBONE_OUTPUTS, OUTPUTS


def register(subparsers) -> None:
    from roboact.utils.config import add_config_options

    p = subparsers.add_parser(
        "policy", help="behaviour cloning on frozen encoders in simulation (paper Tables II and III)",
        description="Train R3M-style behaviour-cloning policies (BatchNorm + MLP(256, 256) on the frozen "
                    "embedding with proprioception, MSE) on scripted demonstrations, roll them out from fixed "
                    "initial states and write Tables II and III (markdown + JSON), a bar chart and rollout "
                    "videos. Rows: the frozen backbone alone, every --model checkpoint (its role - RoboAct-CLIP, "
                    "ablation 1 or 2 - is read from its config), and R3M / MPI / real CLIP when given weights "
                    "(otherwise listed as 'not run'). Resumable: rerun the same command. The effective config "
                    "is saved as OUT/config.json (roboact.policy.benchmark.BenchmarkConfig); --config of it "
                    "reruns the same benchmark.")
    add_config_options(p, "roboact.policy.benchmark.BenchmarkConfig")
    _rows_and_encoders(p)
    _protocol(p)
    m = p.add_argument_group(
        "multi-task mode: one policy for all tasks, told apart by the instruction (LIBERO-Goal: all ten tasks, "
        "300-step episodes)")
    m.add_argument("--multitask", action="store_true", default=None,
                   help="train one language-conditioned policy per row, condition and seed on every task's demos "
                        "(default tasks: every LIBERO-Goal task with an expert; smoke: two) and evaluate it on "
                        "each task with that task's instruction")
    m.add_argument("--condition", nargs="+", choices=CONDITIONS, default=None, metavar="{" + ",".join(CONDITIONS) + "}",
                   help="how the instruction reaches the policy, one table row per value and image row (default "
                        "all three): roboact-text = the RoboAct-CLIP checkpoint's text branch (subject/object/"
                        "action MLPs; RoboAct rows only), sentence = the backbone's text tower, onehot = a task "
                        "one-hot (cannot generalise)")
    m.add_argument("--holdout-tasks", nargs="+", default=None, metavar="TASK",
                   help="tasks evaluated with their instruction but never trained on (marked unseen)")
    c = p.add_argument_group("the instruction chain (multi-task LIBERO-Goal; docs/policy.md)")
    c.add_argument("--chain", action="store_true", default=None,
                   help="also train on the chain's four stages (chained demos from `roboact chain demos -o DEMOS`) and "
                        "run each policy through the chain: open the top drawer -> pick up the black bowl -> place it "
                        "on the table -> close the drawer, CALVIN-style table")
    c.add_argument("--chain-episodes", type=int, default=None, metavar="N",
                   help="chain initial states per seed (default 20; smoke 1)")
    c.add_argument("--chain-switch", nargs="+", choices=("oracle", "judge"), default=None,
                   help="who switches the instruction: the simulator's predicate and/or the RoboAct-CLIP judge "
                        "(default both)")
    c.add_argument("--chain-starts", default=None, metavar="FILE",
                   help="the chain's evaluation initial states (default data/chain/chain_starts_eval.json, from "
                        "`roboact chain starts`)")
    g = p.add_argument_group("pretraining without the evaluation tasks (writes a manifest and exits)")
    g.add_argument("--exclude-tasks", nargs="*", default=None, metavar="TASK",
                   help="write --manifest without these tasks' clips (no TASK: the suite's four) to --manifest-out")
    g.add_argument("--manifest", help="source manifest for --exclude-tasks")
    g.add_argument("--manifest-out", help="filtered manifest to write")
    p.add_argument("--allow-seen-tasks", action="store_true", default=None,
                   help="run RoboAct-CLIP checkpoints whose pretraining corpus holds an evaluated task, or cannot "
                        "be read (refused by default); every table marks those rows")
    p.set_defaults(func=run)


# Flags default to None ("not given"): they override --config/--set only when given; the defaults in the help
# are BenchmarkConfig's or the mode's preset (policy.benchmark.preset), filled in by `build_config`.
def _rows_and_encoders(p) -> None:
    p.add_argument("--suite", choices=("metaworld", "libero_goal"), help="default metaworld")
    p.add_argument("--mode", choices=("smoke", "full", "custom"),
                   help="smoke: 1 task, 2 demos, 2 short rollouts (CI); full: 4 tasks, 50 demos, >= 3 seeds x "
                        ">= 20 rollouts (hours on CPU); custom: full's defaults without its minimums (default "
                        "smoke)")
    p.add_argument("--model", action="append", default=None, metavar="NAME=DIR[,DIR...]",
                   help="a RoboAct-CLIP row: its checkpoint folder (a training run folder works too: its final/ "
                        "is used), or one folder per pretraining seed, comma-separated, as many as --seeds: "
                        "pretraining seed i trains policy seed i (the same syntax as roboact eval); repeatable")
    p.add_argument("--no-backbone-row", action="store_true", default=None,
                   help="leave out the frozen-backbone-alone row")
    p.add_argument("--backbone", help="frozen backbone shared by every row (default lite0-minilm)")
    p.add_argument("--backbone-path", default=None)
    p.add_argument("--output", choices=OUTPUTS,
                   help="which RoboAct-CLIP output the policy sees (default fused, the paper's; fused+frame: "
                        "the fused embedding beside the current frame's backbone feature; tokens: the Temporal "
                        "Diff-Transformer's per-frame states, pooled by a learned attention head in the policy; "
                        "labelled in the tables)")
    p.add_argument("--backbone-output", nargs="+", choices=BACKBONE_OUTPUTS, default=None, metavar="{frame,tokens}",
                   help="the frozen-backbone rows, one per value (default frame: the current frame's feature; "
                        "tokens: the features of the same window of frames as RoboAct's, attention-pooled like "
                        "--output tokens). `--backbone-output frame tokens` gives both rows in one run")
    p.add_argument("--window", type=int, default=None,
                   help="window of frames: RoboAct's stream (default: the checkpoint's n) and the backbone tokens "
                        "row's (default 16)")
    p.add_argument("--stride", type=int,
                   help="control steps between the RoboAct window's frames (default 1: the last n frames)")
    p.add_argument("--r3m", default=None, metavar="PATH", help="R3M folder with model.pt")
    p.add_argument("--mpi", default=None, metavar="PATH", help="MPI checkpoint folder")
    p.add_argument("--clip", default=None, metavar="PATH", help="local CLIP folder (transformers layout)")


def _protocol(p) -> None:
    p.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                   help="tasks to evaluate (default: the suite's four; `all`: every task with a scripted expert)")
    p.add_argument("--demos", help="roboact demos output folder (<suite>/<task>_demo.hdf5; default data/demos)")
    p.add_argument("--make-demos", action="store_true", default=None,
                   help="generate missing demos with the scripted experts")
    p.add_argument("--num-demos", type=int, default=None)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--rollouts", type=int, default=None, help="rollouts per task, seed and evaluation")
    p.add_argument("--max-steps", type=int, default=None, help="episode cap (full: 200, the paper's)")
    p.add_argument("--steps", type=int, default=None, help="BC training steps")
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N training steps")
    p.add_argument("--videos", type=int, default=None, help="rollout videos per row and task")
    p.add_argument("--min-expert-success", type=float, help="default 0.8")
    p.add_argument("--workers", type=int, help="default 1")
    p.add_argument("--parallel", type=int,
                   help="envs per process rolled out in lockstep, one batched encoder call per step (default 1: "
                        "on one CPU thread batching lite0 frames saves at most ~20%%; with --device cuda it pays: "
                        "~4 ms per frame alone vs 0.2 ms in batches of 20 on an H100)")
    p.add_argument("--device",
                   help="where the frozen encoders run: cpu (default) or cuda[:i]; the BC policy and the "
                        "simulators stay on the CPU. Results do not depend on it beyond float rounding")
    p.add_argument("--runtime", choices=RUNTIMES, help=RUNTIME_HELP + " (default: default)")
    p.add_argument("--threads", type=int,
                   help="torch threads per process (default 1, fastest on a shared CPU; 0: torch default)")
    p.add_argument("-o", "--out", default=None, help="default runs/policy/<suite>-<mode>")
    p.add_argument("--cache", help="demo feature cache (shared across runs; default runs/policy/cache)")
    p.add_argument("--no-progress", action="store_true", default=None)


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
    tasks = args.exclude_tasks or list(get_bench_suite(args.suite or "metaworld").tasks)
    res = exclude_tasks(args.manifest, tasks, args.manifest_out, key=task_key)
    print(f"wrote {res['out']}: {res['kept']} clips kept; dropped {res['dropped'] or 'none'}")
    print(f"next: roboact train --manifest {res['out']} --cache <feature cache of {args.manifest}> "
          f"--out runs/models/no_eval_tasks")
    return 0


def parse_models(items: list[str]):
    """--model NAME=DIR or NAME=D0,D1,... (one checkpoint per pretraining seed, paired with policy seeds)."""
    from roboact.models.checkpoints import parse_model_spec
    from roboact.policy.encoders import RowSpec

    rows = []
    for item in items:
        name, paths = parse_model_spec(item)
        rows.append(RowSpec(name, "roboact", paths[0], seed_paths=tuple(paths) if len(paths) > 1 else ()))
    return rows


ROW_FLAGS = ("model", "r3m", "mpi", "clip", "no_backbone_row", "backbone_output")


def build_config(args):
    """BenchmarkConfig from --config, --set and the flags that were given (flags win), over the mode's
    preset. The rows come from the row flags (--model, --r3m, --mpi, --clip, --no-backbone-row,
    --backbone-output) when any is given or the config names none; the frozen-backbone rows are named after the
    effective --backbone (and, for tokens, window and stride)."""
    from roboact.policy.benchmark import BenchmarkConfig
    from roboact.utils.config import deep_merge, from_dict, layered

    user = layered(BenchmarkConfig, args.config, args.overrides, {
        "suite": args.suite, "mode": args.mode, "tasks": args.tasks, "num_demos": args.num_demos,
        "seeds": args.seeds, "rollouts": args.rollouts, "max_steps": args.max_steps, "videos": args.videos,
        "train.steps": args.steps, "train.eval_every": args.eval_every, "demos_dir": args.demos,
        "make_demos": args.make_demos, "encoder.backbone": args.backbone,
        "encoder.backbone_path": args.backbone_path, "encoder.output": args.output, "encoder.window": args.window,
        "encoder.stride": args.stride, "encoder.device": args.device, "encoder.runtime": args.runtime,
        "min_expert_success": args.min_expert_success, "workers": args.workers, "parallel": args.parallel,
        "threads": args.threads, "out": args.out, "cache_dir": args.cache,
        "progress": False if args.no_progress else None,
        "allow_seen_tasks": True if args.allow_seen_tasks else None,
        "multitask": args.multitask, "conditions": args.condition, "holdout_tasks": args.holdout_tasks,
        "chain.enabled": args.chain, "chain.episodes": args.chain_episodes, "chain.switches": args.chain_switch,
        "chain.starts": args.chain_starts,
        "command": " ".join(["roboact", *map(shlex.quote, sys.argv[1:])])})
    if "rows" not in user or any(getattr(args, f) is not None for f in ROW_FLAGS):
        user["rows"] = [dataclasses.asdict(r) for r in _rows(args, user.get("encoder", {}))]
    return from_dict(BenchmarkConfig, deep_merge(policy_defaults(user), user))


def policy_defaults(user: dict) -> dict:
    """What a field not given anywhere defaults to: the mode's preset (smoke unless asked), an output folder
    named after suite and mode, and - when only --steps is given - evaluation no later than the last step."""
    from roboact.policy.benchmark import preset

    suite, mode = user.get("suite", "metaworld"), user.get("mode", "smoke")
    base = preset(mode, suite, bool(user.get("multitask")))
    if user.get("tasks") == ["all"]:
        from roboact.sim.suites import get_suite

        user["tasks"] = get_suite(suite).all_tasks()
    train = dataclasses.asdict(base.pop("train"))
    given = user.get("train", {})
    if "steps" in given and "eval_every" not in given:
        train["eval_every"] = min(train["eval_every"], given["steps"])
    return {**base, "train": train, "mode": mode, "out": f"runs/policy/{suite}-{mode}"}


def _rows(args, encoder: dict):
    """The rows the flags ask for; `encoder`: the EncoderSettings fields given so far (flags, --set, --config)."""
    from roboact.policy.encoders import RowSpec

    outputs = [] if args.no_backbone_row else list(dict.fromkeys(args.backbone_output or ["frame"]))
    rows = [RowSpec(backbone_row_name(o, encoder), "backbone", output=None if o == "frame" else o) for o in outputs]
    rows += parse_models(args.model or [])
    return rows + [RowSpec("R3M", "r3m", args.r3m), RowSpec("MPI", "mpi", args.mpi),
                   RowSpec("CLIP (real)", "clip", args.clip)]


def backbone_row_name(output: str, encoder: dict) -> str:
    """The frame row keeps the name (so the cell folders) it always had; the tokens row says what it sees."""
    from roboact.policy.encoders import EncoderSettings, backbone_window

    backbone = encoder.get("backbone", EncoderSettings.backbone)
    if output == "frame":
        return f"frozen backbone alone ({backbone})"
    n, stride = backbone_window(encoder.get("window")), encoder.get("stride", 1)
    spacing = f", stride {stride}" if stride != 1 else ""
    return f"frozen backbone alone ({backbone}; tokens: {n} frames{spacing}, attention pooling)"


def _bench(args) -> int:
    from roboact.policy.benchmark import run_benchmark

    cfg = build_config(args)
    report = run_benchmark(cfg)
    print("expert: " + ", ".join(f"{t} {r['successes']}/{r['episodes']}" for t, r in report["expert"].items()))
    for r in report["rows"]:
        if r["status"] != "ok":
            print(f"{r['name']}: {r['status']}")
            continue
        b, f = r["overall"]["best"], r["overall"]["final"]  # multi-task: the mean over every evaluated task
        print(f"{r['name']}: best {b['mean']:.1f}%, final {f['mean']:.1f}% (overall, {b['n']} seed(s))")
    print(f"tables: {cfg.out}/table2.md, {cfg.out}/table3.md (+ .json), chart: {cfg.out}/success.png")
    return 0

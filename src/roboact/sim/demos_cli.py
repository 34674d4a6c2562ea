"""`roboact demos`: scripted demonstrations (LIBERO-Goal, Meta-World) in LIBERO's HDF5 layout, plus videos
and a clip manifest; with `--evaluate-experts`, the experts' success table over LIBERO's fixed initial states.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys

log = logging.getLogger(__name__)

# DemosConfig's output folder; the expert table goes there too unless told (ExpertEvalConfig's own is results/)
OUTPUT_DIR = "data/demos"


def register(subparsers) -> None:
    from roboact.utils.config import add_config_options

    p = subparsers.add_parser(
        "demos", help="generate scripted demonstrations (HDF5 + mp4 + manifest), or evaluate the experts",
        description="Generate N successful scripted demonstrations per task in LIBERO's/robomimic's HDF5 "
                    "layout (<out>/<suite>/<task>_demo.hdf5), one mp4 per demo and a clip manifest "
                    "(<out>/manifest.jsonl). Resumable: rerun the same command after an interruption. "
                    "With --evaluate-experts, instead run each expert from LIBERO's fixed initial states and "
                    "write <out>/expert_success_<suite>.{md,json}. The effective config is saved as "
                    "<out>/demos_config.json (or expert_eval_config.json).")
    add_config_options(p, "roboact.sim.demo_gen.DemosConfig; with --evaluate-experts "
                          "roboact.sim.expert_eval.ExpertEvalConfig")
    # Flags default to None ("not given") so they override --config/--set only when given; the defaults
    # named in the help are DemosConfig's (ExpertEvalConfig's with --evaluate-experts).
    p.add_argument("--suite", choices=("libero_goal", "metaworld"), help="default libero_goal")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="task names, or 'all' for every task with a scripted expert (libero_goal: all ten; "
                        "metaworld: the labelled tasks, or with --evaluate-experts every scripted expert); "
                        "default: libero_goal the paper's four, metaworld the label table (with "
                        "--evaluate-experts: every scripted expert)")
    p.add_argument("-n", "--num-demos", type=int, help="successful demos per task (default 50)")
    p.add_argument("--workers", type=int, help="parallel simulator processes (default 1)")
    p.add_argument("--seed", type=int, help="attempt k of a task uses placement seed SEED+k (default 0)")
    p.add_argument("--image-size", type=int, help="default 128")
    p.add_argument("--cameras", nargs="+", metavar="CAM",
                   help="cameras to record (default agentview; libero also robot0_eye_in_hand, ~2x slower)")
    p.add_argument("--post-success-steps", type=int, help="steps recorded after success (default 5)")
    p.add_argument("--no-video", action="store_true", default=None, help="skip mp4s (and so the manifest)")
    p.add_argument("--format", choices=("hdf5", "lerobot"),
                   help="hdf5 (default): LIBERO/robomimic files only; lerobot: also a LeRobot v3.0 dataset of "
                        "the suite's demos in <out>/lerobot/<suite>/ (rerun on a finished folder to convert it "
                        "without simulating again)")
    p.add_argument("-o", "--output-dir", help=f"default {OUTPUT_DIR}")
    p.add_argument("--evaluate-experts", action="store_true",
                   help="evaluate the experts over fixed initial states instead of generating demos")
    p.add_argument("--init-states", type=int, help="with --evaluate-experts: first N scenes (LIBERO: fixed initial states; Meta-World: "
                   "the scenes of a default corpus's first N episodes; default 50)")
    p.add_argument("--max-steps", type=int,
                   help="episode cap; demos: default each task's own (libero_goal 200, but 300 for "
                        "open_the_top_drawer_and_put_the_bowl_inside; metaworld the env's), recorded in each "
                        "demo's attributes; with --evaluate-experts: default 200, and another cap writes "
                        "expert_success_<suite>_<cap>.* beside the 200-step table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from roboact.utils.config import ConfigError

    try:
        if args.evaluate_experts:
            return _evaluate(args)
        return _generate(args)
    except ConfigError as e:
        raise ValueError(f"invalid option: {e}") from None


def expert_eval_config(args: argparse.Namespace):
    """ExpertEvalConfig from --config, --set and the flags that were given (flags win)."""
    from roboact.sim.expert_eval import ExpertEvalConfig
    from roboact.utils.config import load_config

    return load_config(ExpertEvalConfig, args.config, args.overrides, {
        "suite": args.suite, "tasks": args.tasks, "init_states": args.init_states, "max_steps": args.max_steps,
        "workers": args.workers, "output_dir": args.output_dir,
        "command": " ".join(["roboact", *map(shlex.quote, sys.argv[1:])])},
        defaults={"output_dir": OUTPUT_DIR})


def demos_config(args: argparse.Namespace):
    """DemosConfig from --config, --set and the flags that were given (flags win)."""
    from roboact.sim.demo_gen import DemosConfig
    from roboact.utils.config import load_config

    return load_config(DemosConfig, args.config, args.overrides, {
        "suite": args.suite, "tasks": args.tasks, "num_demos": args.num_demos, "output_dir": args.output_dir,
        "workers": args.workers, "seed": args.seed, "image_size": args.image_size, "cameras": args.cameras,
        "post_success_steps": args.post_success_steps, "video": False if args.no_video else None,
        "format": args.format, "max_steps": args.max_steps})


def _evaluate(args) -> int:
    from roboact.sim.expert_eval import evaluate_experts
    from roboact.utils.config import save_config

    cfg = expert_eval_config(args)
    table = evaluate_experts(cfg)
    save_config(cfg, cfg.config_path)
    for r in table["tasks"]:
        print(f"{r['task']}: {r['successes']}/{r['episodes']}")
    print(f"wrote {cfg.stem}.md and .json")
    return 0


def _generate(args) -> int:
    from pathlib import Path

    from roboact.sim.demo_gen import generate_demos
    from roboact.utils.config import save_config

    cfg = demos_config(args)
    summaries = generate_demos(cfg)
    save_config(cfg, Path(cfg.output_dir) / "demos_config.json")
    for s in summaries:
        print(f"{s.task}: {s.demos}/{cfg.num_demos} demos, {s.attempts} attempts "
              f"({s.failed} failed, {s.errors} errors) -> {s.path}")
    if cfg.format == "lerobot":
        from roboact.sim.demos_lerobot import lerobot_dir

        print(f"LeRobot v3.0 dataset: {lerobot_dir(cfg.output_dir, cfg.suite)}")
    incomplete = [s.task for s in summaries if not s.complete]
    if incomplete:
        log.error("too few successful demos for: %s (see attempts.jsonl in each task's folder)",
                  ", ".join(incomplete))
        return 1
    return 0

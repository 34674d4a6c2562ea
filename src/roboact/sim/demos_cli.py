"""`roboact demos`: scripted demonstrations (LIBERO-Goal, Meta-World) in LIBERO's HDF5 layout, plus videos
and a clip manifest; with `--evaluate-experts`, the experts' success table over LIBERO's fixed initial states.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demos", help="generate scripted demonstrations (HDF5 + mp4 + manifest), or evaluate the experts",
        description="Generate N successful scripted demonstrations per task in LIBERO's/robomimic's HDF5 "
                    "layout (<out>/<suite>/<task>_demo.hdf5), one mp4 per demo and a clip manifest "
                    "(<out>/manifest.jsonl). Resumable: rerun the same command after an interruption. "
                    "With --evaluate-experts, instead run each expert from LIBERO's fixed initial states and "
                    "write <out>/expert_success_<suite>.{md,json}.")
    p.add_argument("--suite", choices=("libero_goal", "metaworld"), default="libero_goal")
    p.add_argument("--tasks", nargs="+", default=[], metavar="TASK",
                   help="task names (default: the suite's tasks with experts; libero_goal: the paper's four)")
    p.add_argument("-n", "--num-demos", type=int, default=50, help="successful demos per task (default 50)")
    p.add_argument("--workers", type=int, default=1, help="parallel simulator processes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="attempt k of a task uses placement seed SEED+k")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--cameras", nargs="+", default=[], metavar="CAM",
                   help="cameras to record (default agentview; libero also robot0_eye_in_hand, ~2x slower)")
    p.add_argument("--post-success-steps", type=int, default=5, help="steps recorded after success (default 5)")
    p.add_argument("--no-video", action="store_true", help="skip mp4s (and so the manifest)")
    p.add_argument("-o", "--output-dir", default="data/demos")
    p.add_argument("--evaluate-experts", action="store_true",
                   help="evaluate the experts over fixed initial states instead of generating demos")
    p.add_argument("--init-states", type=int, default=50, help="with --evaluate-experts: first N fixed states")
    p.add_argument("--max-steps", type=int, default=200, help="with --evaluate-experts: episode cap")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from roboact.utils.config import ConfigError

    try:
        if args.evaluate_experts:
            return _evaluate(args)
        return _generate(args)
    except ConfigError as e:
        raise ValueError(f"invalid option: {e}") from None


def _evaluate(args) -> int:
    from roboact.sim.expert_eval import ExpertEvalConfig, evaluate_experts

    cfg = ExpertEvalConfig(suite=args.suite, tasks=list(args.tasks), init_states=args.init_states,
                           max_steps=args.max_steps, workers=args.workers, output_dir=args.output_dir,
                           command=" ".join(["roboact", *map(shlex.quote, sys.argv[1:])]))
    table = evaluate_experts(cfg)
    for r in table["tasks"]:
        print(f"{r['task']}: {r['successes']}/{r['episodes']}")
    print(f"wrote {cfg.stem}.md and .json")
    return 0


def _generate(args) -> int:
    from roboact.sim.demo_gen import DemosConfig, generate_demos

    cfg = DemosConfig(suite=args.suite, tasks=list(args.tasks), num_demos=args.num_demos,
                      output_dir=args.output_dir, workers=args.workers, seed=args.seed,
                      image_size=args.image_size, cameras=list(args.cameras),
                      post_success_steps=args.post_success_steps, video=not args.no_video)
    summaries = generate_demos(cfg)
    for s in summaries:
        print(f"{s.task}: {s.demos}/{cfg.num_demos} demos, {s.attempts} attempts "
              f"({s.failed} failed, {s.errors} errors) -> {s.path}")
    incomplete = [s.task for s in summaries if not s.complete]
    if incomplete:
        log.error("too few successful demos for: %s (see attempts.jsonl in each task's folder)",
                  ", ".join(incomplete))
        return 1
    return 0

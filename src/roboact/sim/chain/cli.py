"""`roboact chain`: the instruction chain's initial states, the experts' table over them, chained demos."""
from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "chain", help="LIBERO-Goal instruction chain: initial states, expert table, chained demos",
        description="The paper's sequential task in LIBERO-Goal (open the top drawer, pick up the black bowl, "
                    "place it on the table, close the drawer; docs/libero.md). Every step is resumable: rerun "
                    "the same command after an interruption.")
    sub = p.add_subparsers(dest="chain_command", metavar="STEP", required=True)

    s = sub.add_parser("starts", help="build the chain's initial states (bowl in the closed top drawer)")
    s.add_argument("--split", choices=("eval", "train"), default="eval",
                   help="eval: from LIBERO's fixed initial states (default); train: from sampled placements")
    s.add_argument("--count", type=int, default=50, help="base scenes to build from (default 50)")
    s.add_argument("-o", "--output-dir", default="data/chain", help="default data/chain")
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=run_starts)

    e = sub.add_parser("experts", help="run the scripted experts through the chain from each initial state")
    e.add_argument("--starts", default="data/chain/chain_starts_eval.json", help="chain initial states file")
    e.add_argument("--limit", type=int, default=0, help="the first N initial states (default 0: all)")
    e.add_argument("-o", "--output-dir", default="data/chain", help="default data/chain")
    e.add_argument("--workers", type=int, default=1)
    e.set_defaults(func=run_experts)

    d = sub.add_parser("demos", help="chained expert demos, one demo file per stage (roboact demos' layout)")
    d.add_argument("--starts", default="data/chain/chain_starts_train.json",
                   help="chain initial states file (the train split; the eval split is refused)")
    d.add_argument("-n", "--num-demos", type=int, default=30, help="episodes to keep (default 30)")
    d.add_argument("-o", "--output-dir", default="data/chain_demos", help="default data/chain_demos")
    d.add_argument("--image-size", type=int, default=128)
    d.add_argument("--cameras", nargs="+", default=["agentview"], metavar="CAM")
    d.add_argument("--no-video", action="store_true", help="no mp4 of each chained episode")
    d.add_argument("--workers", type=int, default=1)
    d.set_defaults(func=run_demos)


def _command() -> str:
    return " ".join(["roboact", *map(shlex.quote, sys.argv[1:])])


def _config(build):
    from roboact.utils.config import ConfigError

    try:
        return build()
    except ConfigError as e:
        raise ValueError(f"invalid option: {e}") from None


def run_starts(args: argparse.Namespace) -> int:
    from roboact.sim.chain.starts import StartsConfig, build_starts

    cfg = _config(lambda: StartsConfig(split=args.split, count=args.count, output_dir=args.output_dir))
    out = build_starts(cfg, command=_command(), workers=args.workers)
    print(f"{out['built']}/{out['base_scenes']} chain initial states built, {len(out['dropped'])} dropped "
          f"-> {cfg.path}")
    for d in out["dropped"]:
        print(f"  dropped base scene {d['base']}: {d['reason']}")
    return 0


def run_experts(args: argparse.Namespace) -> int:
    from roboact.sim.chain.rollout import ChainEvalConfig, evaluate_chain_experts

    cfg = _config(lambda: ChainEvalConfig(starts=args.starts, output_dir=args.output_dir, limit=args.limit,
                                          workers=args.workers, command=_command()))
    table = evaluate_chain_experts(cfg)
    for k, s in enumerate(table["stages"], 1):
        print(f"stage {k} ({s['instruction']}): {s['succeeded']}/{s['attempted']}")
    print("completed in a row: " + ", ".join(f"{k}: {v:.2f}" for k, v in enumerate(table["in_a_row"], 1)))
    print(f"wrote {cfg.stem}.md and .json")
    return 0


def run_demos(args: argparse.Namespace) -> int:
    from roboact.sim.chain.demos import ChainDemosConfig, generate_chain_demos

    cfg = _config(lambda: ChainDemosConfig(starts=args.starts, num_demos=args.num_demos, output_dir=args.output_dir,
                                           image_size=args.image_size, cameras=list(args.cameras),
                                           workers=args.workers, video=not args.no_video))
    s = generate_chain_demos(cfg)
    print(f"{s['kept']}/{cfg.num_demos} chained episodes kept from {s['attempted']} attempted, "
          f"{len(s['dropped'])} dropped, {s['errors']} errors")
    for f in s["files"]:
        print(f"  {f['path']}: {f['demos']} demos, {f['steps_min']}-{f['steps_max']} steps")
    return 0 if s["kept"] >= cfg.num_demos else 1

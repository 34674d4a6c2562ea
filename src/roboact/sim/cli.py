"""`roboact simulate <simulator>`: build a simulated atomic-action corpus.

Each simulator is one `add_<name>(simulators)` function below that adds its sub-subcommand and sets
`func`; adding LIBERO means writing `add_libero` (in its own module if it likes) and listing it in
`SIMULATORS`. Heavy imports stay inside the `run_*` functions so `roboact --help` stays fast.
"""
from __future__ import annotations

import argparse
from typing import Callable


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_metaworld(simulators) -> None:
    p = simulators.add_parser(
        "metaworld", help="Meta-World scripted experts -> videos + episode records + manifest",
        description="Roll out Meta-World's scripted experts on seeded random scenes and keep the successful "
                    "episodes as one clip per camera. Rerunning the same command resumes.")
    p.add_argument("--out", help="output folder (manifest.jsonl, videos/, episodes/); required unless --list-tasks")
    p.add_argument("--tasks", type=_csv, default=[], help="comma-separated Meta-World tasks "
                   "(default: every task of the atomic-action table; see --list-tasks)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per task (default 20)")
    p.add_argument("--cameras", type=_csv, default=["corner", "corner3", "corner4"],
                   help="comma-separated cameras (default corner,corner3,corner4)")
    p.add_argument("--image-size", type=int, default=128, help="square frame size in pixels (default 128)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes, one render thread each")
    p.add_argument("--seed", type=int, default=0, help="corpus seed; episode scenes derive from it")
    p.add_argument("--frames-after-success", type=int, default=4, help="frames kept after success (default 4)")
    p.add_argument("--max-steps", type=int, default=200, help="steps allowed to reach success (default 200)")
    p.add_argument("--heldout-pairs", type=int, default=3,
                   help="(action, object) pairs held out in manifest_compositional.jsonl (default 3; 0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-tasks", action="store_true", help="print the task -> (action, object) table and exit")
    p.set_defaults(func=run_metaworld)


# One entry per simulator; a LIBERO helper adds `add_libero` here.
SIMULATORS: list[Callable] = [add_metaworld]


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="generate simulated atomic-action corpora",
                              description="Generate a simulated atomic-action video corpus.")
    simulators = p.add_subparsers(dest="simulator", metavar="SIMULATOR")
    for add in SIMULATORS:
        add(simulators)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def metaworld_config(args: argparse.Namespace):
    from roboact.sim.corpus import CorpusConfig

    return CorpusConfig(out_dir=args.out, tasks=args.tasks, episodes_per_task=args.episodes,
                        cameras=args.cameras, image_size=args.image_size, workers=args.workers,
                        seed=args.seed, frames_after_success=args.frames_after_success,
                        max_steps=args.max_steps, heldout_pairs=args.heldout_pairs,
                        progress=not args.no_progress)


def run_metaworld(args: argparse.Namespace) -> int:
    if args.list_tasks:
        from roboact.sim.metaworld import ATOMIC_TASKS

        for task, lab in ATOMIC_TASKS.items():
            print(f"{task:26s} {lab.action:9s} {lab.object}")
        return 0
    if not args.out:
        raise ValueError("--out is required (the corpus folder)")
    from roboact.sim.corpus import build_corpus

    summary = build_corpus(metaworld_config(args))
    print(format_summary(summary, args.out))
    return 0 if summary["episodes_kept"] else 1


def format_summary(s: dict, out: str) -> str:
    lines = [f"{s['episodes_kept']} episodes kept ({s['clips']} clips), {s['episodes_failed']} failed, "
             f"{s['episodes_error']} errors; {s['episodes_simulated_now']} simulated now, "
             f"{s['episodes_skipped_done']} already done; {s['seconds']} s"]
    lines += [f"  {t}: kept {c['kept']}, failed {c['failed']}" + (f", errors {c['error']}" if c["error"] else "")
              for t, c in s["per_task"].items() if c["failed"] or c["error"]]
    lines += [f"  error: {e}" for e in s["errors"]]
    if s.get("heldout_pairs"):
        lines.append("  compositional test pairs: " + "; ".join(f"{a} {o}" for a, o in s["heldout_pairs"]))
    lines.append(f"manifest: {out}/manifest.jsonl  summary: {out}/summary.json")
    return "\n".join(lines)

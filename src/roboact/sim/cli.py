"""`roboact simulate <simulator>`: build a simulated atomic-action corpus.

Each simulator is one `add_<name>(simulators)` function below that adds its sub-subcommand and sets
`func`. LIBERO clips come from `roboact demos --suite libero_goal` (its demos double as clips); `merge`
joins such manifests into one corpus. Heavy imports stay inside the `run_*` functions so `roboact --help`
stays fast.
"""
from __future__ import annotations

import argparse
from typing import Callable


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_metaworld(simulators) -> None:
    from roboact.utils.config import add_config_options

    p = simulators.add_parser(
        "metaworld", help="Meta-World scripted experts -> videos + episode records + manifest",
        description="Roll out Meta-World's scripted experts on seeded random scenes and keep the successful "
                    "episodes as one clip per camera. Rerunning the same command resumes. The effective "
                    "config is saved as OUT/config.json (roboact.sim.corpus.CorpusConfig).")
    add_config_options(p, "roboact.sim.corpus.CorpusConfig")
    # Flags default to None ("not given") so they override --config/--set only when given; the defaults
    # named in the help are CorpusConfig's.
    p.add_argument("--out", help="output folder (manifest.jsonl, videos/, episodes/); required unless --list-tasks")
    p.add_argument("--tasks", type=_csv, help="comma-separated Meta-World tasks (default: every task of the "
                   "atomic-action table that may be pretrained on; see --list-tasks). The policy benchmark's "
                   "tasks and the reserve tasks are refused, near-duplicates of them unless "
                   "--include-near-duplicates")
    p.add_argument("--include-near-duplicates", action="store_true", default=None,
                   help="let in tasks labelled like a benchmark or reserve task (e.g. plate-slide-side-v3, "
                        "'push plate' like plate-slide-v3); the summary lists them")
    p.add_argument("--episodes", type=int, help="episodes per task (default 20)")
    p.add_argument("--cameras", type=_csv, help="comma-separated cameras (default corner,corner3,corner4)")
    p.add_argument("--image-size", type=int, help="square frame size in pixels (default 128)")
    p.add_argument("--workers", type=int, help="parallel processes, one render thread each (default 1)")
    p.add_argument("--seed", type=int, help="corpus seed; episode scenes derive from it (default 0)")
    p.add_argument("--frames-after-success", type=int, help="frames kept after success (default 4)")
    p.add_argument("--max-steps", type=int, help="steps allowed to reach success (default 200)")
    p.add_argument("--heldout-pairs", type=int,
                   help="(action, object) pairs held out in manifest_compositional.jsonl (default 3; 0: none)")
    p.add_argument("--randomize", type=_csv, metavar="KINDS",
                   help="per-episode scene variation, comma-separated from camera,light,table "
                        "(camera: orbit/zoom each camera; light: direction and intensity; table: table and "
                        "floor colour). Default: none")
    p.add_argument("--video-frames", type=int, metavar="N",
                   help="keep about N frames per video (>= N, one uniform stride ending on the last frame) and "
                        "render only those: 2-6x faster for N=32 (default 0: every control step)")
    p.add_argument("--no-progress", action="store_true", default=None, help="no progress bar")
    p.add_argument("--list-tasks", action="store_true",
                   help="print the task -> (action, object) table, with why a task stays out of the corpus, "
                        "and exit")
    p.set_defaults(func=run_metaworld)


def add_merge(simulators) -> None:
    p = simulators.add_parser(
        "merge", help="merge clip manifests (e.g. Meta-World + LIBERO) into one corpus with fresh splits",
        description="Write one manifest from several (e.g. `roboact simulate metaworld` and `roboact demos "
                    "--suite libero_goal` outputs): paths rewritten relative to --out, nothing copied; "
                    "episode splits and compositional held-out pairs recomputed over the union. Fails on a "
                    "clip_id that occurs in two inputs.")
    p.add_argument("manifests", nargs="+", help="manifest.jsonl files, or folders holding one")
    p.add_argument("--out", required=True, help="output folder (manifest.jsonl, manifest_compositional.jsonl, "
                   "merge_summary.json); must not be a source's folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out pair choice (default 0)")
    p.add_argument("--heldout-pairs", type=int, default=3,
                   help="(action, object) pairs held out in manifest_compositional.jsonl (default 3; 0: none)")
    p.add_argument("--subjects", choices=("keep", "embodiment"), default="keep",
                   help="keep each clip's subject (default; simulated clips say 'Robot'), or name the arm "
                        "(Sawyer, Panda) and rebuild the captions, so a cross-embodiment corpus has two subjects")
    p.set_defaults(func=run_merge)


# One entry per simulator (and the merge of their outputs).
SIMULATORS: list[Callable] = [add_metaworld, add_merge]


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
    """CorpusConfig from --config, --set and the flags that were given (flags win)."""
    from roboact.sim.corpus import CorpusConfig
    from roboact.utils.config import load_config

    return load_config(CorpusConfig, args.config, args.overrides, {
        "out_dir": args.out, "tasks": args.tasks, "episodes_per_task": args.episodes, "cameras": args.cameras,
        "image_size": args.image_size, "workers": args.workers, "seed": args.seed,
        "frames_after_success": args.frames_after_success, "max_steps": args.max_steps,
        "heldout_pairs": args.heldout_pairs, "progress": False if args.no_progress else None,
        "randomize": args.randomize, "include_near_duplicates": args.include_near_duplicates,
        "video_frames": args.video_frames})


def run_metaworld(args: argparse.Namespace) -> int:
    if args.list_tasks:
        from roboact.data.heldout import pretraining_exclusions
        from roboact.sim.metaworld import ATOMIC_TASKS, label_pairs

        excluded = pretraining_exclusions("metaworld", label_pairs())
        for task, lab in ATOMIC_TASKS.items():
            why = f"  [not pretrained on: {excluded[task]}]" if task in excluded else ""
            print(f"{task:29s} {lab.action:8s} {lab.object:15s}{why}".rstrip())
        return 0
    from roboact.sim.corpus import build_corpus

    cfg = metaworld_config(args)
    summary = build_corpus(cfg)
    print(format_summary(summary, cfg.out_dir))
    return 0 if summary["episodes_kept"] else 1


def run_merge(args: argparse.Namespace) -> int:
    from roboact.data.merge import MergeConfig, merge_manifests

    s = merge_manifests(MergeConfig(manifests=args.manifests, out_dir=args.out, seed=args.seed,
                                    heldout_pairs=args.heldout_pairs, subjects=args.subjects))
    print(f"{s['clips']} clips ({', '.join(f'{k} {v}' for k, v in s['embodiments'].items())}); "
          f"splits {s['splits']}")
    if s.get("heldout_pairs"):
        print("  compositional test pairs: " + "; ".join(f"{a} {o}" for a, o in s["heldout_pairs"]))
    print(f"manifest: {args.out}/manifest.jsonl  summary: {args.out}/merge_summary.json")
    return 0


def format_summary(s: dict, out: str) -> str:
    lines = [f"{s['episodes_kept']} episodes kept ({s['clips']} clips), {s['episodes_failed']} failed, "
             f"{s['episodes_error']} errors; {s['episodes_simulated_now']} simulated now, "
             f"{s['episodes_skipped_done']} already done; {s['seconds']} s"]
    lines += [f"  {t}: kept {c['kept']}, failed {c['failed']}" + (f", errors {c['error']}" if c["error"] else "")
              for t, c in s["per_task"].items() if c["failed"] or c["error"]]
    lines += [f"  error: {e}" for e in s["errors"]]
    if s.get("excluded_tasks"):
        lines.append(f"  left out (never pretrained on): {', '.join(s['excluded_tasks'])}; reasons in "
                     f"{out}/excluded_tasks.json")
    if s.get("near_duplicates_included"):
        lines.append(f"  near-duplicates let in: {', '.join(s['near_duplicates_included'])}")
    if s.get("heldout_pairs"):
        lines.append("  compositional test pairs: " + "; ".join(f"{a} {o}" for a, o in s["heldout_pairs"]))
    lines.append(f"manifest: {out}/manifest.jsonl  summary: {out}/summary.json")
    return "\n".join(lines)

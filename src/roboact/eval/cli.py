"""`roboact eval`: score checkpoints on a split and write report.md, report.json and plots."""
from __future__ import annotations

from roboact.backbones.runtime import RUNTIME_HELP, RUNTIMES
from roboact.eval.config import EVAL_SUITES


def register(sub) -> None:
    from roboact.utils.config import add_config_options

    p = sub.add_parser("eval", help="retrieval, zero-shot, compositional, disentanglement, time-reversal and "
                            "unseen-viewpoint metrics of checkpoints",
                       description="Evaluate one or more RoboAct-CLIP checkpoints on cached features of a split; "
                                   "one table row per --model (mean ± 95% t-interval when it names one "
                                   "checkpoint per seed), one table per suite. A missing checkpoint is "
                                   "reported as 'not run'. The effective config is saved as OUT/eval_config.json. "
                                   "Metric definitions: docs/eval.md.")
    add_config_options(p, "roboact.eval.config.EvalConfig")
    # Flags default to None ("not given") so they override --config/--set only when given; the defaults
    # named in the help are EvalConfig's.
    p.add_argument("--manifest", help="clip manifest (JSONL); required (here or in the config)")
    p.add_argument("--cache", help="feature-cache root (roboact extract --out); required")
    p.add_argument("--model", dest="models", action="append", default=None, metavar="NAME=DIR[,DIR...]",
                   help="a table row: its name and checkpoint folder (a run folder works too: its final/ is used); "
                        "several comma-separated folders (one per training seed) make the row mean ± 95%% "
                        "t-interval over seeds; repeat for several rows; at least one (here or in the config)")
    p.add_argument("--suites", help=f"comma-separated, from {','.join(EVAL_SUITES)} (default: every suite that "
                                    "applies to the data; naming one that cannot apply is an error)")
    p.add_argument("--split", help="split that is scored (default: test)")
    p.add_argument("--train-split", help="split the leakage probes train on and that defines "
                                         "seen pairs (default: train)")
    p.add_argument("--out", help="report folder; required")
    p.add_argument("--heldout-pair", dest="heldout_pairs", action="append", metavar="ACTION,OBJECT",
                   help="a pair never seen in training (repeatable); default: every pair of --split absent "
                        "from --train-split")
    p.add_argument("--backbone", help="frozen backbone name (default: the checkpoints')")
    p.add_argument("--backbone-path", help="weights folder for hf-clip (default: the checkpoints')")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--device", help="default cpu")
    p.add_argument("--runtime", choices=RUNTIMES,
                   help="the image-tower runtime the cache must have been extracted with (default: whatever it "
                        "was; eval reads cached features and runs no image tower itself). " + RUNTIME_HELP)
    p.add_argument("--threads", type=int, help="CPU threads for torch and BLAS (default: unchanged)")
    p.add_argument("--batch-size", type=int, help="default 512")
    p.add_argument("--probe-max-train", type=int, help="train clips encoded for the probes (default 20000)")
    p.add_argument("--no-plots", action="store_true", default=None)
    p.add_argument("--no-progress", action="store_true", default=None)
    p.set_defaults(func=run)


def parse_model(s: str) -> tuple[str, str | list[str]]:
    """'full=DIR' -> ('full', 'DIR'); 'full=D0,D1,D2' -> ('full', ['D0', 'D1', 'D2']), one per seed."""
    from roboact.models.checkpoints import parse_model_spec

    name, parts = parse_model_spec(s)
    return name, parts[0] if len(parts) == 1 else parts


def parse_suites(s: str | None) -> list[str] | None:
    if s is None:
        return None
    names = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in names if x not in EVAL_SUITES]
    if bad or not names:
        raise ValueError(f"--suites {s!r}: expected a comma-separated list of {', '.join(EVAL_SUITES)}")
    return names


def parse_pair(s: str) -> tuple[str, str]:
    action, sep, obj = s.partition(",")
    if not sep or not action.strip() or not obj.strip():
        raise ValueError(f"--heldout-pair {s!r}: expected ACTION,OBJECT")
    return action.strip(), obj.strip()


def build_config(args):
    """EvalConfig from --config, --set and the flags that were given (flags win)."""
    from roboact.eval.config import EvalConfig
    from roboact.utils.config import load_config

    return load_config(EvalConfig, args.config, args.overrides, {
        "manifest": args.manifest, "cache": args.cache, "out": args.out,
        "models": [parse_model(m) for m in args.models] if args.models else None,
        "backbone": args.backbone, "backbone_path": args.backbone_path, "split": args.split,
        "train_split": args.train_split,
        "heldout_pairs": [parse_pair(p) for p in args.heldout_pairs] if args.heldout_pairs else None,
        "seed": args.seed, "device": args.device, "runtime": args.runtime, "threads": args.threads, "batch_size": args.batch_size,
        "probe_max_train": args.probe_max_train, "suites": parse_suites(args.suites),
        "plots": False if args.no_plots else None, "progress": False if args.no_progress else None})


def run(args) -> int:
    from pathlib import Path

    from roboact.eval.report import markdown_table
    from roboact.eval.runner import evaluate
    from roboact.utils.config import save_config

    cfg = build_config(args)
    report = evaluate(cfg)
    save_config(cfg, Path(cfg.out) / "eval_config.json")
    print(markdown_table(report))
    print(f"report: {cfg.out}/report.md, {cfg.out}/report.json")
    return 0

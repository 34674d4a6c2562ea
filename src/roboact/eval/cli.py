"""`roboact eval`: score checkpoints on a split and write report.md, report.json and plots."""
from __future__ import annotations

from roboact.backbones.runtime import RUNTIME_HELP, RUNTIMES
from roboact.eval.config import EVAL_SUITES


def register(sub) -> None:
    p = sub.add_parser("eval", help="retrieval, zero-shot, compositional, disentanglement, time-reversal and "
                            "unseen-viewpoint metrics of checkpoints",
                       description="Evaluate one or more RoboAct-CLIP checkpoints on cached features of a split; "
                                   "one table row per --model (mean ± 95% t-interval when it names one "
                                   "checkpoint per seed), one table per suite. A missing checkpoint is "
                                   "reported as 'not run'. "
                                   "Metric definitions: docs/eval.md.")
    p.add_argument("--manifest", required=True, help="clip manifest (JSONL)")
    p.add_argument("--cache", required=True, help="feature-cache root (roboact extract --out)")
    p.add_argument("--model", dest="models", action="append", default=[], metavar="NAME=DIR[,DIR...]",
                   required=True,
                   help="a table row: its name and checkpoint folder (a run folder works too: its final/ is used); "
                        "several comma-separated folders (one per training seed) make the row mean ± 95%% "
                        "t-interval over seeds; repeat for several rows")
    p.add_argument("--suites", help=f"comma-separated, from {','.join(EVAL_SUITES)} (default: every suite that "
                                    "applies to the data; naming one that cannot apply is an error)")
    p.add_argument("--split", default="test", help="split that is scored (default: test)")
    p.add_argument("--train-split", default="train", help="split the leakage probes train on and that defines "
                                                           "seen pairs (default: train)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--heldout-pair", dest="heldout_pairs", action="append", metavar="ACTION,OBJECT",
                   help="a pair never seen in training (repeatable); default: every pair of --split absent "
                        "from --train-split")
    p.add_argument("--backbone", help="frozen backbone name (default: the checkpoints')")
    p.add_argument("--backbone-path", help="weights folder for hf-clip (default: the checkpoints')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runtime", default=None, choices=RUNTIMES,
                   help="the image-tower runtime the cache must have been extracted with (default: whatever it "
                        "was; eval reads cached features and runs no image tower itself). " + RUNTIME_HELP)
    p.add_argument("--threads", type=int, help="CPU threads for torch and BLAS (default: unchanged)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--probe-max-train", type=int, default=20000, help="train clips encoded for the probes")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")
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


def run(args) -> int:
    from roboact.eval.runner import EvalConfig, evaluate
    from roboact.eval.report import markdown_table

    cfg = EvalConfig(manifest=args.manifest, cache=args.cache, out=args.out,
                     models=[parse_model(m) for m in args.models], backbone=args.backbone,
                     backbone_path=args.backbone_path, split=args.split, train_split=args.train_split,
                     heldout_pairs=[parse_pair(p) for p in args.heldout_pairs] if args.heldout_pairs else None,
                     seed=args.seed, device=args.device, runtime=args.runtime, threads=args.threads, batch_size=args.batch_size,
                     probe_max_train=args.probe_max_train, suites=parse_suites(args.suites),
                     plots=not args.no_plots, progress=not args.no_progress)
    report = evaluate(cfg)
    print(markdown_table(report))
    print(f"report: {args.out}/report.md, {args.out}/report.json")
    return 0

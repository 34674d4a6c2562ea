"""`roboact train`: RoboAct-CLIP heads on a frame-feature cache (torchrun-ready)."""
from __future__ import annotations


def register(sub) -> None:
    from roboact.utils.config import add_config_options

    p = sub.add_parser("train", help="train RoboAct-CLIP heads on a feature cache",
                       description="Config from --config (JSON) with --set overrides, e.g. "
                                   "--set optim.steps=2000 model.temporal=false, or the optional terms "
                                   "model.lambda_tcn=0.5 model.lambda_frame=0.5 (docs/model.md). Launch with "
                                   "`torchrun --nproc_per_node N -m roboact.cli train ...` for data parallelism.")
    add_config_options(p, "roboact.train.config.TrainConfig")
    p.add_argument("--manifest", help="shortcut for --set data.manifest=...")
    p.add_argument("--cache", help="shortcut for --set data.cache=...")
    p.add_argument("--out", help="shortcut for --set out=...")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from roboact.train.config import load_train_config
    from roboact.train.loop import train

    cfg = load_train_config(args.config, args.overrides,
                            {"data.manifest": args.manifest, "data.cache": args.cache, "out": args.out})
    if not cfg.data.manifest or not cfg.data.cache:
        raise ValueError("data.manifest and data.cache are required (--manifest, --cache)")
    res = train(cfg, resume=args.resume)
    print(f"trained {res.steps} steps; final heads: {res.final}")
    return 0

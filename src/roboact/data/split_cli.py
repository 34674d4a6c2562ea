"""`roboact split`: re-split an existing manifest, so one corpus (and one feature cache, keyed by clip id)
serves every generalization test without simulating or extracting again.

    roboact split corpus/manifest.jsonl --by camera --cameras corner3 --out corpus/manifest_camera.jsonl
    roboact split corpus/manifest.jsonl --by compositional --pairs "close:drawer,pull:plate" --out ...
    roboact split corpus/manifest.jsonl --by compositional --heldout-pairs 3 --seed 1 --out ...
    roboact split corpus/manifest.jsonl --by episode --val-fraction 0.1 --test-fraction 0.1 --out ...

Each split is checked against its promise before it is written (roboact.data.manifest_ops.resplit, the
library function behind this command); paths are rewritten relative to the new manifest's folder. The
request can also come from --config FILE and --set KEY=VALUE
(roboact.data.split_config.SplitConfig; flags win over --set over the file).
"""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    from roboact.utils.config import add_config_options

    p = subparsers.add_parser("split", help="re-split a manifest: by episode, compositional pairs, or camera",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Flags and the positional default to None ("not given") so they override --config/--set only when
    # given; the defaults named in the help are SplitConfig's.
    p.add_argument("manifest", nargs="?", help="input clip manifest (JSONL); required (here or in the config)")
    add_config_options(p, "roboact.data.split_config.SplitConfig")
    p.add_argument("--by", choices=("episode", "compositional", "camera"), help="required")
    p.add_argument("--out", help="output manifest (JSONL); must differ from the input; required")
    p.add_argument("--cameras", help="camera split: comma-separated held-out cameras")
    p.add_argument("--pairs", help="compositional: held-out pairs 'action:object,...'")
    p.add_argument("--heldout-pairs", type=int, help="compositional: pairs to choose when --pairs "
                                                      "is not given (default 3)")
    p.add_argument("--seed", type=int, help="compositional: which pairs are chosen (default 0)")
    p.add_argument("--val-fraction", type=float, help="default 0.1")
    p.add_argument("--test-fraction", type=float,
                   help="episode split: 0.1 by default; camera split: episodes whose held-out-camera clips "
                        "are test, 0.2 by default")
    p.add_argument("--salt", help="changes which episodes fall in val/test")
    p.set_defaults(func=run)


def split_config(args: argparse.Namespace):
    """SplitConfig from --config, --set and the flags that were given (flags win)."""
    from roboact.data.split_config import SplitConfig
    from roboact.utils.config import load_config

    return load_config(SplitConfig, args.config, args.overrides, {
        "manifest": args.manifest, "out": args.out, "by": args.by,
        "cameras": None if args.cameras is None else [c.strip() for c in args.cameras.split(",") if c.strip()],
        "pairs": _pairs(args.pairs) if args.pairs else None, "heldout_pairs": args.heldout_pairs,
        "seed": args.seed, "val_fraction": args.val_fraction, "test_fraction": args.test_fraction,
        "salt": args.salt})


def run(args: argparse.Namespace) -> int:
    from roboact.data.manifest import ManifestError
    from roboact.data.manifest_ops import ManifestOpError, resplit
    from roboact.data.splits import SplitError

    try:
        cfg = split_config(args)  # --pairs is parsed here: a malformed pair is reported like the others
        info = resplit(cfg.manifest, cfg.out, cfg.by, cameras=cfg.cameras, pairs=cfg.pairs,
                       heldout_pairs=cfg.heldout_pairs, seed=cfg.seed, val_fraction=cfg.val_fraction,
                       test_fraction=cfg.test_fraction, salt=cfg.salt)
    except (SplitError, ManifestError, ManifestOpError) as e:
        print(f"roboact split: {e}")
        return 2
    print(json.dumps(info))
    return 0


def _pairs(text: str) -> list[tuple[str, str]]:
    """'close:drawer, pull:plate' -> [('close', 'drawer'), ('pull', 'plate')]; SplitError naming a bad one."""
    from roboact.data.splits import SplitError

    pairs = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        if item.count(":") != 1 or not all(p.strip() for p in item.split(":")):
            raise SplitError(f"--pairs: {item!r} is not 'action:object'")
        a, o = (p.strip() for p in item.split(":"))
        pairs.append((a, o))
    return sorted(set(pairs))

"""`roboact split`: re-split an existing manifest, so one corpus (and one feature cache, keyed by clip id)
serves every generalization test without simulating or extracting again.

    roboact split corpus/manifest.jsonl --by camera --cameras corner3 --out corpus/manifest_camera.jsonl
    roboact split corpus/manifest.jsonl --by compositional --pairs "close:drawer,pull:plate" --out ...
    roboact split corpus/manifest.jsonl --by compositional --heldout-pairs 3 --seed 1 --out ...
    roboact split corpus/manifest.jsonl --by episode --val-fraction 0.1 --test-fraction 0.1 --out ...

Each split is checked against its promise before it is written (roboact.data.splits); paths are rewritten
relative to the new manifest's folder. The request can also come from --config FILE and --set KEY=VALUE
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
    from pathlib import Path

    from roboact.data import splits as S
    from roboact.data.manifest import ManifestError, read_manifest, rebase, write_manifest

    try:
        cfg = split_config(args)  # --pairs is parsed here: a malformed pair is reported like the others
        src, out = Path(cfg.manifest), Path(cfg.out)
        if out.resolve() == src.resolve():
            raise S.SplitError(f"--out {out} is the input manifest; write the new split to another file")
        rows = read_manifest(src)
        if cfg.by == "episode":
            new = S.assign_episode_splits(rows, cfg.val_fraction, 0.1 if cfg.test_fraction is None
                                          else cfg.test_fraction, cfg.salt)
            S.check_no_episode_leakage(new)
            info = {}
        elif cfg.by == "compositional":
            pairs = cfg.pairs or S.choose_heldout_pairs(rows, cfg.heldout_pairs, cfg.seed)
            missing = sorted(set(pairs) - S.pairs_of(rows))
            if missing:
                raise S.SplitError(f"--pairs: {missing[0]} has no clip in {src}")
            new = S.compositional_split(rows, pairs, cfg.val_fraction, cfg.salt)
            S.check_compositional(new, pairs)
            info = {"heldout_pairs": [list(p) for p in pairs]}
        else:
            cams = cfg.cameras
            have = sorted({r.camera for r in rows})
            bad = [c for c in cams if c not in have]
            if not cams or bad:
                raise S.SplitError(f"--cameras: {'unknown camera ' + repr(bad[0]) if bad else 'none given'}; "
                                   f"cameras in {src}: {', '.join(have)}")
            if set(cams) == set(have):
                raise S.SplitError(f"--cameras: holding out every camera ({', '.join(have)}) leaves none to train on")
            new = S.camera_split(rows, cams, cfg.val_fraction, 0.2 if cfg.test_fraction is None
                                 else cfg.test_fraction, cfg.salt)
            S.check_camera_split(new, cams)
            info = {"heldout_cameras": cams, "dropped_rows": len(rows) - len(new)}
    except (S.SplitError, ManifestError) as e:
        print(f"roboact split: {e}")
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(out, rebase(new, src, out))
    print(json.dumps({"out": str(out), "by": cfg.by, "splits": S.split_counts(new), **info}))
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

"""`roboact split`: re-split an existing manifest, so one corpus (and one feature cache, keyed by clip id)
serves every generalization test without simulating or extracting again.

    roboact split corpus/manifest.jsonl --by camera --cameras corner3 --out corpus/manifest_camera.jsonl
    roboact split corpus/manifest.jsonl --by compositional --pairs "close:drawer,pull:plate" --out ...
    roboact split corpus/manifest.jsonl --by compositional --heldout-pairs 3 --seed 1 --out ...
    roboact split corpus/manifest.jsonl --by episode --val-fraction 0.1 --test-fraction 0.1 --out ...

Each split is checked against its promise before it is written (roboact.data.splits); paths are rewritten
relative to the new manifest's folder. The work is `roboact.data.manifest_ops.resplit`; this module parses
the flags and prints.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("split", help="re-split a manifest: by episode, compositional pairs, or camera",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="input clip manifest (JSONL)")
    p.add_argument("--by", required=True, choices=("episode", "compositional", "camera"))
    p.add_argument("--out", required=True, help="output manifest (JSONL); must differ from the input")
    p.add_argument("--cameras", default="", help="camera split: comma-separated held-out cameras")
    p.add_argument("--pairs", default="", help="compositional: held-out pairs 'action:object,...'")
    p.add_argument("--heldout-pairs", type=int, default=3, help="compositional: pairs to choose when --pairs "
                                                                 "is not given (default 3)")
    p.add_argument("--seed", type=int, default=0, help="compositional: which pairs are chosen")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=None,
                   help="episode split: 0.1 by default; camera split: episodes whose held-out-camera clips "
                        "are test, 0.2 by default")
    p.add_argument("--salt", default="", help="changes which episodes fall in val/test")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from roboact.data.manifest import ManifestError
    from roboact.data.manifest_ops import ManifestOpError, resplit
    from roboact.data.splits import SplitError

    try:
        res = resplit(args.manifest, args.out, args.by, cameras=_csv(args.cameras),
                      pairs=_pairs(args.pairs) if args.by == "compositional" else (),
                      heldout_pairs=args.heldout_pairs, seed=args.seed, val_fraction=args.val_fraction,
                      test_fraction=args.test_fraction, salt=args.salt)
    except (SplitError, ManifestError, ManifestOpError) as e:
        print(f"roboact split: {e}")
        return 2
    print(json.dumps(res))
    return 0


def _csv(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _pairs(text: str) -> list[tuple[str, str]]:
    """'close:drawer,pull:plate' -> [('close', 'drawer'), ('pull', 'plate')]."""
    from roboact.data.splits import SplitError

    pairs = []
    for item in _csv(text):
        if item.count(":") != 1 or not all(p.strip() for p in item.split(":")):
            raise SplitError(f"--pairs: {item!r} is not 'action:object'")
        a, o = (p.strip() for p in item.split(":"))
        pairs.append((a, o))
    return sorted(set(pairs))

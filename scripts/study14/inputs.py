"""Fingerprints of the grid's inputs: every demo file's sha256 and every RoboAct-CLIP checkpoint's digest.

The grid takes many sessions and a session's machine is not always kept, so its inputs may be rebuilt from
scratch (scripts/study12/run.sh corpus-new, scripts/study14/run.sh demos chain-demos). The results kept in git
(scripts/study14/keep.py) only apply where the rebuilt inputs are the same, since a cell's folder is named by
their hash; this file says which input differs when they are not.

    python scripts/study14/inputs.py --demos runs/libero10/demos --model DIR ... --json docs/results/study14/grid_inputs.json
    python scripts/study14/inputs.py --demos runs/libero10/demos --model DIR ... --check docs/results/study14/grid_inputs.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def fingerprints(demos: Path, models: list[str]) -> dict:
    from roboact.policy.encoders import checkpoint_digest
    from roboact.utils.io import sha256_file

    files = sorted(demos.glob("*/*_demo.hdf5"))
    return {"demos": {str(f.relative_to(demos)): sha256_file(f) for f in files},
            "models": {m: checkpoint_digest(m) for m in models}}


def differences(kept: dict, now: dict) -> list[str]:
    out = []
    for part in ("demos", "models"):
        a, b = kept.get(part, {}), now.get(part, {})
        out += [f"{part}: {k} missing here" for k in sorted(set(a) - set(b))]
        out += [f"{part}: {k} is new here" for k in sorted(set(b) - set(a))]
        out += [f"{part}: {k} differs ({a[k][:12]} kept, {b[k][:12]} here)" for k in sorted(set(a) & set(b))
                if a[k] != b[k]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demos", type=Path, required=True, help="the grid's demo folder (SUITE/TASK_demo.hdf5)")
    ap.add_argument("--model", action="append", default=[], help="a RoboAct-CLIP checkpoint folder (repeat)")
    out = ap.add_mutually_exclusive_group(required=True)
    out.add_argument("--json", type=Path, help="write the fingerprints here")
    out.add_argument("--check", type=Path, help="compare with fingerprints written before; exit 1 if they differ")
    a = ap.parse_args()
    if not a.demos.is_dir():
        ap.error(f"--demos {a.demos}: not a folder")
    for m in a.model:
        if not (Path(m) / "model.safetensors").is_file():
            ap.error(f"--model {m}: no model.safetensors there")
    now = fingerprints(a.demos, a.model)
    if a.json:
        from roboact.utils.io import atomic_write_json

        atomic_write_json(a.json, now)
        print(f"{len(now['demos'])} demo files, {len(now['models'])} checkpoints -> {a.json}")
        return
    diff = differences(json.loads(a.check.read_text(encoding="utf-8")), now)
    print("\n".join(diff) if diff else f"the same inputs as {a.check}")
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()

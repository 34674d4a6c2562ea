"""Keep a multi-task grid's finished results in git, and lay them back into a new run folder.

A session's machine is not always kept: the grid's run folder (demos, feature caches, training states,
videos: gigabytes) can be gone at the next session, and the grid takes many sessions. What a rerun needs to skip
finished work is small JSON: each task evaluation, each chain run, each finished cell's result, the expert
check and the judge's calibrations. `save` copies those into a folder under docs/results (committed); `restore`
copies back the ones the run folder lacks, before the grid resumes.

Safe by construction: a cell's folder name is the hash of everything that decides its result (demo files'
sha256, the checkpoint's digest, the settings), so restored files only land where the rebuilt inputs are the
same; and every evaluation names the policy it rolled out (`policy_sha256`), so a cell retrained on another
machine keeps only the evaluations its own policy made (roboact.policy.multitask.kept_result).

    python scripts/study14/keep.py save    runs/libero10/policy docs/results/study14/grid
    python scripts/study14/keep.py restore runs/libero10/policy docs/results/study14/grid
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

# what is kept, relative to the run folder; never the training state (state/), the policy weights, videos
PATTERNS = ("expert_check.json", "judge/calibration-*.json", "cells/*/*/result.json",
            "cells/*/*/evals/step*/*.json", "cells/*/*/chain/*.json")


def kept_files(root: Path) -> list[Path]:
    """The files under `root` that are kept, relative to it: readable JSON only (a torn file is never copied)."""
    out = []
    for pattern in PATTERNS:
        for f in sorted(root.glob(pattern)):
            if f.name.endswith(".stale.json") or f.name.startswith("."):
                continue
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            out.append(f.relative_to(root))
    return out


def copy_missing(src: Path, dst: Path, overwrite: bool) -> list[str]:
    """Copy the kept files of `src` into `dst` (atomically, each file); with `overwrite` False only those `dst`
    lacks. Returns what was copied."""
    done = []
    for rel in kept_files(src):
        target = dst / rel
        if target.exists() and (not overwrite or target.read_bytes() == (src / rel).read_bytes()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        shutil.copyfile(src / rel, tmp)
        os.replace(tmp, target)
        done.append(str(rel))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("save", "restore"))
    ap.add_argument("run", type=Path, help="the grid's run folder (roboact policy -o)")
    ap.add_argument("keep", type=Path, help="the kept copy in the repository")
    a = ap.parse_args()
    if a.action == "save":
        if not a.run.is_dir():
            ap.error(f"{a.run}: no run folder to save from")
        done = copy_missing(a.run, a.keep, overwrite=True)   # the run folder is the newer of the two
    else:
        if not a.keep.is_dir():
            print(f"nothing kept yet in {a.keep}")
            return
        done = copy_missing(a.keep, a.run, overwrite=False)  # never over a file the run folder already has
    print(f"{a.action}: {len(done)} file(s) copied ({a.run} {'->' if a.action == 'save' else '<-'} {a.keep})")


if __name__ == "__main__":
    main()

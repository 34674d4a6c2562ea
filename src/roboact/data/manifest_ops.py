"""Operations on whole clip manifests, as library functions that raise: the standard split manifests of a corpus,
re-splitting an existing manifest, and dropping the clips of given tasks. (Merging several manifests is
`roboact.data.merge`.) The commands that expose them (`roboact simulate`, `roboact split`, `roboact simulate
merge`, `roboact policy --exclude-tasks`) only parse arguments and print; every output path is rewritten
relative to the new manifest's folder (`manifest.rebase`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path

from roboact.data.manifest import ClipRecord, ManifestError, read_manifest, rebase, write_manifest
from roboact.data.splits import (SplitError, assign_episode_splits, camera_split, check_camera_split,
                                 check_compositional, check_no_episode_leakage, choose_heldout_pairs,
                                 compositional_split, pairs_of, split_counts)

log = logging.getLogger(__name__)

TASK_PREFIXES = ("metaworld/", "libero_goal/")
SPLIT_KINDS = ("episode", "compositional", "camera")


def write_split_manifests(out_dir: str | os.PathLike, rows: list[ClipRecord], val_fraction: float,
                          test_fraction: float, heldout_pairs: int, seed: int,
                          split_units: list[str] | None = None) -> dict:
    """manifest.jsonl (split by episode) and manifest_compositional.jsonl (held-out pairs as test) in `out_dir`.

    `split_units[i]`, when given, replaces row i's episode as the unit a split keeps together (merge: the
    episode path relative to its own corpus, and one unit per demo of a multi-demo LIBERO file); the rows
    are written with their own `episode`.
    """
    out = Path(out_dir)
    originals = rows
    if split_units is not None:
        rows = [dataclasses.replace(r, episode=u) for r, u in zip(rows, split_units, strict=True)]

    def written(split_rows: list[ClipRecord]) -> list[ClipRecord]:
        if split_units is None:
            return split_rows
        return [dataclasses.replace(o, split=r.split) for o, r in zip(originals, split_rows, strict=True)]

    rows = assign_episode_splits(rows, val_fraction, test_fraction)
    check_no_episode_leakage(rows)
    write_manifest(out / "manifest.jsonl", written(rows))
    (out / "manifest_compositional.jsonl").unlink(missing_ok=True)  # never leave one from an older run
    info: dict = {"manifest": "manifest.jsonl", "splits": split_counts(rows), "heldout_pairs": []}
    if heldout_pairs == 0 or not rows:
        return info
    try:
        held = choose_heldout_pairs(rows, heldout_pairs, seed=seed)
    except SplitError as e:
        log.warning("no compositional manifest: %s", e)
        info["compositional_error"] = str(e)
        return info
    comp = compositional_split(rows, held, val_fraction)
    check_compositional(comp, held)
    write_manifest(out / "manifest_compositional.jsonl", written(comp))
    info.update(manifest_compositional="manifest_compositional.jsonl", heldout_pairs=[list(p) for p in held],
                compositional_splits=split_counts(comp))
    return info


def resplit(manifest: str | os.PathLike, out: str | os.PathLike, by: str, *, cameras: list[str] | None = None,
            pairs: list[tuple[str, str]] | None = None, heldout_pairs: int = 3, seed: int = 0,
            val_fraction: float = 0.1, test_fraction: float | None = None, salt: str = "") -> dict:
    """Re-split `manifest` into `out`, checked against the split's promise before it is written.

    by="episode": val/test by episode (test 0.1 by default); "compositional": the held-out (action, object)
    `pairs` (or `heldout_pairs` chosen with `seed`) only in test; "camera": clips of the held-out `cameras`
    only in test (test_fraction of episodes, 0.2 by default). Raises SplitError or ManifestError.
    """
    src, out = Path(manifest), Path(out)
    if by not in SPLIT_KINDS:
        raise SplitError(f"by must be one of {', '.join(SPLIT_KINDS)}, got {by!r}")
    if out.resolve() == src.resolve():
        raise SplitError(f"--out {out} is the input manifest; write the new split to another file")
    rows = read_manifest(src)
    info: dict = {}
    if by == "episode":
        new = assign_episode_splits(rows, val_fraction, 0.1 if test_fraction is None else test_fraction, salt)
        check_no_episode_leakage(new)
    elif by == "compositional":
        pairs = sorted(set(pairs)) if pairs else choose_heldout_pairs(rows, heldout_pairs, seed)
        missing = sorted(set(pairs) - pairs_of(rows))
        if missing:
            raise SplitError(f"--pairs: {missing[0]} has no clip in {src}")
        new = compositional_split(rows, pairs, val_fraction, salt)
        check_compositional(new, pairs)
        info = {"heldout_pairs": [list(p) for p in pairs]}
    else:
        cams = list(cameras or [])
        have = sorted({r.camera for r in rows})
        bad = [c for c in cams if c not in have]
        if not cams or bad:
            raise SplitError(f"--cameras: {'unknown camera ' + repr(bad[0]) if bad else 'none given'}; "
                             f"cameras in {src}: {', '.join(have)}")
        if set(cams) == set(have):
            raise SplitError(f"--cameras: holding out every camera ({', '.join(have)}) leaves none to train on")
        new = camera_split(rows, cams, val_fraction, 0.2 if test_fraction is None else test_fraction, salt)
        check_camera_split(new, cams)
        info = {"heldout_cameras": cams, "dropped_rows": len(rows) - len(new)}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(out, rebase(new, src, out))
    return {"out": str(out), "by": by, "splits": split_counts(new), **info}


def task_key(task: str) -> str:
    """'metaworld/drawer-open-v3', 'libero_goal/turn_on_the_stove' -> the bare task name."""
    t = task.strip()
    for p in TASK_PREFIXES:
        t = t.removeprefix(p)
    return t.replace(" ", "_")


def exclude_tasks(manifest: str | os.PathLike, tasks: list[str], out: str | os.PathLike) -> dict:
    """Write `out`: `manifest` without the clips of `tasks` (for pretraining that never sees the evaluation
    tasks). Returns what was dropped per task. Raises ManifestError."""
    if not tasks:
        raise ManifestError("exclude_tasks: no tasks given")
    manifest, out = Path(manifest), Path(out)
    if out.resolve() == manifest.resolve():
        raise ManifestError(f"{out}: refusing to overwrite the source manifest; choose another output path")
    drop = {task_key(t) for t in tasks}
    rows = read_manifest(manifest)
    kept, dropped = [], Counter()
    for r in rows:
        if task_key(r.task) in drop:
            dropped[task_key(r.task)] += 1
            continue
        kept.append(r)
    if not kept:
        raise ManifestError(f"{manifest}: excluding {sorted(drop)} leaves no clips")
    write_manifest(out, rebase(kept, manifest, out))
    for t in sorted(drop - set(dropped)):
        log.warning("exclude_tasks: no clip of task %r in %s", t, manifest)
    return {"source": str(manifest), "out": str(out), "kept": len(kept), "dropped": dict(dropped),
            "excluded": sorted(drop)}


__all__ = ["SPLIT_KINDS", "TASK_PREFIXES", "exclude_tasks", "resplit", "task_key", "write_split_manifests"]

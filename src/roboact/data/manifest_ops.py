"""Operations that turn clip manifests into new ones: split (by episode, compositional pairs, camera),
exclude tasks, and the pair of manifests every corpus gets. Merging several corpora is `data/merge.py`.

Each is a library function that raises a clear error (ManifestOpError, SplitError, ManifestError) naming
what is wrong and where; the commands (`roboact split`, `roboact simulate metaworld`/`merge`,
`roboact policy --exclude-tasks`) only parse their flags and print. Rows are never changed beyond their
`split` and, when written to another folder, their relative paths (`manifest.rebase`), so one feature
cache, keyed by clip id, serves every manifest derived from a corpus. Every split is checked against its
promise (`data.splits`) before anything is written.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

from roboact.data.manifest import ClipRecord, read_manifest, rebase, write_manifest
from roboact.data.splits import (Pair, SplitError, assign_episode_splits, camera_split, check_camera_split,
                                 check_compositional, check_no_episode_leakage, choose_heldout_pairs,
                                 compositional_split, pairs_of, split_counts)

log = logging.getLogger(__name__)

SPLIT_KINDS = ("episode", "compositional", "camera")


class ManifestOpError(ValueError):
    """A manifest operation cannot be done as asked (output over its input, nothing left, unknown camera);
    the message says which file and what."""


def check_new_output(source: str | os.PathLike, out: str | os.PathLike) -> None:
    """A derived manifest must not replace the one it is derived from (the corpus would lose its splits)."""
    if Path(out).resolve() == Path(source).resolve():
        raise ManifestOpError(f"{out} is the input manifest; refusing to overwrite it, write to another file")


# --- checked splits of rows ----------------------------------------------------------------------------

def split_by_episode(rows: Iterable[ClipRecord], val_fraction: float, test_fraction: float,
                     salt: str = "") -> list[ClipRecord]:
    new = assign_episode_splits(rows, val_fraction, test_fraction, salt)
    check_no_episode_leakage(new)
    return new


def split_compositional(rows: Iterable[ClipRecord], held_out: Sequence[Pair], val_fraction: float,
                        salt: str = "") -> list[ClipRecord]:
    new = compositional_split(rows, held_out, val_fraction, salt)
    check_compositional(new, held_out)
    return new


def split_by_camera(rows: Sequence[ClipRecord], cameras: Sequence[str], val_fraction: float, test_fraction: float,
                    salt: str = "", where: str = "the manifest") -> list[ClipRecord]:
    """Held-out `cameras` as test on test episodes only; the rows that would leak are dropped."""
    have = sorted({r.camera for r in rows})
    bad = [c for c in cameras if c not in have]
    if not cameras or bad:
        raise SplitError(f"cameras: {'unknown camera ' + repr(bad[0]) if bad else 'none given'}; "
                         f"cameras in {where}: {', '.join(have)}")
    if set(cameras) == set(have):
        raise SplitError(f"cameras: holding out every camera ({', '.join(have)}) leaves none to train on")
    new = camera_split(rows, cameras, val_fraction, test_fraction, salt)
    check_camera_split(new, cameras)
    return new


# --- manifest files ------------------------------------------------------------------------------------

def resplit(manifest: str | os.PathLike, out: str | os.PathLike, by: str, *, cameras: Sequence[str] = (),
            pairs: Sequence[Pair] = (), heldout_pairs: int = 3, seed: int = 0, val_fraction: float = 0.1,
            test_fraction: float | None = None, salt: str = "") -> dict:
    """Write `out`: `manifest` split anew, paths rewritten relative to `out`'s folder.

    by="episode": val/test episodes by hash (test_fraction 0.1 by default); "compositional": `pairs` (or
    `heldout_pairs` chosen with `seed`) are test; "camera": `cameras` are test on test episodes
    (test_fraction 0.2 by default). Returns what was written and the split counts.
    """
    src, out = Path(manifest), Path(out)
    if by not in SPLIT_KINDS:
        raise ManifestOpError(f"by: must be one of {', '.join(SPLIT_KINDS)}, got {by!r}")
    check_new_output(src, out)
    rows = read_manifest(src)
    if by == "episode":
        new = split_by_episode(rows, val_fraction, 0.1 if test_fraction is None else test_fraction, salt)
        info: dict = {}
    elif by == "compositional":
        held = sorted(set(map(tuple, pairs))) or choose_heldout_pairs(rows, heldout_pairs, seed)
        missing = sorted(set(held) - pairs_of(rows))
        if missing:
            raise SplitError(f"pairs: {missing[0]} has no clip in {src}")
        new = split_compositional(rows, held, val_fraction, salt)
        info = {"heldout_pairs": [list(p) for p in held]}
    else:
        cams = list(cameras)
        new = split_by_camera(rows, cams, val_fraction, 0.2 if test_fraction is None else test_fraction, salt,
                              where=str(src))
        info = {"heldout_cameras": cams, "dropped_rows": len(rows) - len(new)}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(out, rebase(new, src, out))
    return {"out": str(out), "by": by, "splits": split_counts(new), **info}


def write_split_manifests(out_dir: str | os.PathLike, rows: list[ClipRecord], val_fraction: float,
                          test_fraction: float, heldout_pairs: int, seed: int,
                          split_units: list[str] | None = None) -> dict:
    """A corpus's two manifests: manifest.jsonl (split by episode) and manifest_compositional.jsonl
    (`heldout_pairs` (action, object) pairs chosen with `seed` as test; none when 0 or when the pairs do
    not allow it, which is logged and returned as `compositional_error`).

    `split_units[i]`, when given, replaces row i's episode as the unit a split keeps together (a merge: the
    episode path relative to its own corpus, one unit per demo of a multi-demo file); the rows are written
    with their own `episode`. Returns the split counts and held-out pairs, for the corpus's summary.
    """
    out = Path(out_dir)
    originals = rows
    if split_units is not None:
        rows = [dataclasses.replace(r, episode=u) for r, u in zip(rows, split_units, strict=True)]

    def written(split_rows: list[ClipRecord]) -> list[ClipRecord]:
        if split_units is None:
            return split_rows
        return [dataclasses.replace(o, split=r.split) for o, r in zip(originals, split_rows, strict=True)]

    rows = split_by_episode(rows, val_fraction, test_fraction)
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
    comp = split_compositional(rows, held, val_fraction)
    write_manifest(out / "manifest_compositional.jsonl", written(comp))
    info.update(manifest_compositional="manifest_compositional.jsonl", heldout_pairs=[list(p) for p in held],
                compositional_splits=split_counts(comp))
    return info


def exclude_tasks(manifest: str | os.PathLike, tasks: Sequence[str], out: str | os.PathLike,
                  key: Callable[[str], str] = str.strip) -> dict:
    """Write `out`: `manifest` without the clips of `tasks` (paths rewritten to stay valid from `out`'s
    folder). `key` maps a row's task and a given task to the name they are compared by (e.g. without a
    suite prefix). Returns the counts kept and dropped per task; a task with no clip is logged."""
    if not tasks:
        raise ManifestOpError("exclude_tasks: no tasks given")
    manifest, out = Path(manifest), Path(out)
    check_new_output(manifest, out)
    drop = {key(t) for t in tasks}
    kept, dropped = [], Counter()
    for r in read_manifest(manifest):
        if key(r.task) in drop:
            dropped[key(r.task)] += 1
        else:
            kept.append(r)
    if not kept:
        raise ManifestOpError(f"{manifest}: excluding {sorted(drop)} leaves no clips")
    write_manifest(out, rebase(kept, manifest, out))
    for t in sorted(drop - set(dropped)):
        log.warning("exclude_tasks: no clip of task %r in %s", t, manifest)
    return {"source": str(manifest), "out": str(out), "kept": len(kept), "dropped": dict(dropped),
            "excluded": sorted(drop)}

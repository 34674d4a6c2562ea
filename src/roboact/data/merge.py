"""One corpus from several clip manifests, e.g. Meta-World Sawyer clips (`roboact simulate metaworld`) and
LIBERO-Goal Panda clips (`roboact demos --suite libero_goal`), for cross-embodiment training.

Nothing is copied: the merged manifests point at the source files, with paths rewritten relative to the
output folder. Splits are recomputed over the union so that they are consistent across sources:
- by episode, keyed by the episode path *relative to its own corpus*, so a Meta-World clip keeps the split
  it had in its own manifest (same key, same fractions), wherever the merged folder is;
- a LIBERO demo file holds a task's 50 demos, so there the unit is (file, demo), not the file, else every
  demo of a task would fall in one split;
- compositional held-out pairs are chosen again over the union's (action, object) pairs.
The manifest rows keep their own `episode` (the file path); the split unit is only used for splitting.

The merged manifest is a pretraining corpus, so clips of a task on the never-list (roboact.data.heldout:
the policy benchmark's tasks, the reserve tasks) are dropped, whatever an input holds (e.g. a `roboact
demos` folder whose manifest predates the list), and counted in the summary. Each input's exclusion record
(`excluded_tasks.json`) is carried forward into the merged one, less any task another input does hold.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from roboact.data.heldout import never_pretrain, read_record, task_key, write_record
from roboact.data.captions import atomic_caption
from roboact.data.manifest import ClipRecord, read_manifest, rebase, resolve
from roboact.data.manifest_ops import ManifestOpError, write_split_manifests
from roboact.utils.config import check
from roboact.utils.io import atomic_write_json


# Subject of a clip when subjects are named by embodiment (the `embodiment` field of the manifest rows).
EMBODIMENT_SUBJECTS = {"sawyer": "Sawyer", "panda": "Panda"}


class MergeError(ManifestOpError):
    """Manifests cannot be merged as asked (clip id collision, missing file, output over a source)."""


@dataclass
class MergeConfig:
    manifests: list[str]            # manifest files, or folders holding a manifest.jsonl
    out_dir: str
    seed: int = 0                   # seeds the choice of held-out (action, object) pairs
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    heldout_pairs: int = 3
    subjects: Literal["keep", "embodiment"] = "keep"   # "embodiment": the subject names the arm (Sawyer, Panda)

    def __post_init__(self) -> None:
        check(bool(self.manifests), "manifests", "give at least one manifest to merge")
        check(self.subjects in ("keep", "embodiment"), "subjects",
              f"must be 'keep' or 'embodiment', got {self.subjects!r}")
        self.manifests = [str(m) for m in self.manifests]
        check(all(m.strip() for m in self.manifests), "manifests", "contains an empty path")
        check(bool(str(self.out_dir).strip()), "out_dir", "must be a folder path")
        check(0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1,
              "val_fraction", "val_fraction and test_fraction must be >= 0 and sum to less than 1")
        check(self.heldout_pairs >= 0, "heldout_pairs", "must be >= 0")


def manifest_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / "manifest.jsonl" if p.is_dir() else p


def split_unit(row: ClipRecord) -> str:
    """What one split keeps together (roboact.data.splits.episode_key: one demo of a multi-demo file)."""
    from roboact.data.splits import episode_key

    return episode_key(row)


def _check_files(manifest: Path, r: ClipRecord) -> None:
    """A merged manifest must not point at nothing: every clip's video (and episode record) must exist."""
    for rel in (r.path, r.episode):
        if rel and not resolve(manifest, rel).is_file():
            raise MergeError(f"{manifest}: clip {r.clip_id!r} names {rel!r}, which does not exist "
                             f"({resolve(manifest, rel)})")


def subject_from_embodiment(r: ClipRecord, manifest: Path) -> ClipRecord:
    """The row with its subject naming its arm and the caption rebuilt (MergeError for an unknown arm)."""
    subject = EMBODIMENT_SUBJECTS.get((r.embodiment or "").lower())
    if subject is None:
        raise MergeError(f"{manifest}: clip {r.clip_id!r} has embodiment {r.embodiment!r}, which has no subject "
                         f"name (known: {', '.join(sorted(EMBODIMENT_SUBJECTS))}); merge with subjects='keep'")
    return replace(r, subject=subject, caption=atomic_caption(subject, r.action, r.object))


def merge_manifests(cfg: MergeConfig) -> dict:
    """Write `out_dir`/manifest.jsonl (+ manifest_compositional.jsonl, merge_summary.json); returns the summary."""
    out = Path(cfg.out_dir)
    sources = [manifest_file(m) for m in cfg.manifests]
    for src in sources:
        if out.resolve() == src.parent.resolve():
            raise MergeError(f"{out}: is the folder of source manifest {src}; the merged manifest would "
                             f"overwrite it. Choose another --out")
    if len({s.resolve() for s in sources}) != len(sources):
        raise MergeError("the same manifest is listed twice")
    rows: list[ClipRecord] = []
    units: list[str] = []
    first_seen: dict[str, Path] = {}
    per_source = []
    never = {task_key(t): why for t, why in never_pretrain().items()}
    carried: dict[str, str] = {}
    near_in: set[str] = set()
    dropped: Counter = Counter()
    for src in sources:
        record = read_record(src) or {}
        for t, why in record.get("excluded_tasks", {}).items():
            carried.setdefault(t, why)
        near_in.update(record.get("near_duplicates_included", []))
        all_rows = read_manifest(src)
        src_rows = [r for r in all_rows if task_key(r.task) not in never]
        dropped.update(r.task for r in all_rows if task_key(r.task) in never)
        for r in src_rows:
            if r.clip_id in first_seen:
                raise MergeError(f"clip_id {r.clip_id!r} is in both {first_seen[r.clip_id]} and {src}; "
                                 f"merge corpora with distinct clip ids (e.g. different tasks or episodes)")
            first_seen[r.clip_id] = src
            units.append(split_unit(r))
            _check_files(src, r)
        if cfg.subjects == "embodiment":
            src_rows = [subject_from_embodiment(r, src) for r in src_rows]
        rows += rebase(src_rows, src, out / "manifest.jsonl")
        per_source.append({"manifest": str(src), "clips": len(src_rows),
                           "dropped_never_pretrain": len(all_rows) - len(src_rows),
                           "sources": sorted({r.source for r in src_rows}),
                           "embodiments": sorted({r.embodiment for r in src_rows})})
    if not rows:
        raise MergeError(f"every clip of {', '.join(map(str, sources))} is of a task that never enters "
                         f"pretraining ({', '.join(sorted(dropped))}); nothing to merge")
    present = {task_key(r.task) for r in rows}
    excluded = {t: why for t, why in carried.items() if task_key(t) not in present}
    excluded.update({t: never[task_key(t)] for t in dropped})
    out.mkdir(parents=True, exist_ok=True)
    info = write_split_manifests(out, rows, cfg.val_fraction, cfg.test_fraction, cfg.heldout_pairs, cfg.seed,
                                 split_units=units)
    summary = {"clips": len(rows), "inputs": per_source,
               "embodiments": dict(sorted(Counter(r.embodiment for r in rows).items())),
               "subjects": dict(sorted(Counter(r.subject for r in rows).items())), **info,
               "excluded_tasks": dict(sorted(excluded.items())), "dropped_clips": dict(sorted(dropped.items())),
               "near_duplicates_included": sorted(near_in), "config": asdict(cfg)}
    write_record(out, excluded, near_duplicates_included=sorted(near_in), dropped_clips=summary["dropped_clips"])
    atomic_write_json(out / "merge_summary.json", summary)
    return summary

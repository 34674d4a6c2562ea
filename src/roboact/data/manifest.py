"""The clip manifest: one row per single-atomic-action video, shared by simulate, curate, extract, train, eval.

Stored as JSON Lines (one `ClipRecord` per line) so that writers can append and readers can stream. Paths
inside a manifest are relative to the manifest's folder, so a corpus can be moved or copied as a whole.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from roboact.data.captions import atomic_caption
from roboact.utils.io import atomic_path

SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest file or row is malformed; the message names the file, line and field."""


@dataclass
class ClipRecord:
    clip_id: str
    path: str                 # video file, relative to the manifest folder (or absolute)
    subject: str              # "Robot" / "Human"
    action: str               # verb lemma, e.g. "open", "turn on"
    object: str               # e.g. "drawer"
    caption: str = ""         # filled from the paper's template when empty
    task: str = ""            # source task name (e.g. "drawer-open-v3", RH20T "task_0001")
    camera: str = ""
    seed: int = -1
    num_frames: int = 0
    fps: float = 0.0
    split: str = "train"
    source: str = ""          # "metaworld", "libero", "rh20t", "manifest"
    embodiment: str = ""      # "sawyer", "panda", "human", ...
    episode: str = ""         # optional: record of states/proprio/actions, relative path
    instruction: str = ""     # original language instruction, when curated
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("clip_id", "path", "subject", "action", "object"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ManifestError(f"field '{name}' must be a non-empty string, got {v!r}")
        if self.split not in SPLITS:
            raise ManifestError(f"field 'split' must be one of {SPLITS}, got {self.split!r}")
        if not self.caption:
            self.caption = atomic_caption(self.subject, self.action, self.object)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


_FIELDS = {f.name for f in dataclasses.fields(ClipRecord)}


def parse_row(obj: dict, where: str) -> ClipRecord:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - _FIELDS
    known = {k: v for k, v in obj.items() if k in _FIELDS}
    if unknown:  # keep foreign columns instead of dropping them silently
        known.setdefault("extra", {}).update({k: obj[k] for k in sorted(unknown)})
    try:
        return ClipRecord(**known)
    except TypeError as e:
        raise ManifestError(f"{where}: {e}") from None
    except ManifestError as e:
        raise ManifestError(f"{where}: {e}") from None


def read_manifest(path: str | os.PathLike, check_unique: bool = True) -> list[ClipRecord]:
    """Read every row; raise ManifestError naming the line of the first bad row or duplicate clip id."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    rows: list[ClipRecord] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ManifestError(f"{path}:{lineno}: not UTF-8") from None
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            rec = parse_row(obj, f"{path}:{lineno}")
            if check_unique and rec.clip_id in seen:
                raise ManifestError(f"{path}:{lineno}: duplicate clip_id {rec.clip_id!r} "
                                    f"(first on line {seen[rec.clip_id]})")
            seen[rec.clip_id] = lineno
            rows.append(rec)
    if not rows:
        raise ManifestError(f"{path}: manifest is empty")
    return rows


def write_manifest(path: str | os.PathLike, rows: Iterable[ClipRecord]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(r.to_json() + "\n")


def resolve(manifest_path: str | os.PathLike, rel: str) -> Path:
    """Path of a file named in a manifest row (relative to the manifest's folder)."""
    p = Path(rel)
    return p if p.is_absolute() else Path(manifest_path).parent / p


def rebase(rows: Iterable[ClipRecord], manifest_path: str | os.PathLike,
           new_manifest_path: str | os.PathLike) -> list[ClipRecord]:
    """Copies of `rows` (read from `manifest_path`) whose relative `path` and `episode` still name the same
    files when the rows are written to `new_manifest_path` (absolute paths stay absolute)."""
    folder = Path(new_manifest_path).parent.resolve()

    def moved(rel: str) -> str:
        if not rel or Path(rel).is_absolute():
            return rel
        return os.path.relpath(resolve(manifest_path, rel).resolve(), folder)

    return [dataclasses.replace(r, path=moved(r.path), episode=moved(r.episode)) for r in rows]

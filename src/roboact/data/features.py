"""The frozen-feature cache: every sampled frame of every clip encoded once by the frozen backbone.

Training and most evaluation read features from here instead of running the image tower, which is what
makes them cheap. Layout of one cache (one folder per backbone under a common root):

    <root>/<backbone>/identity.json          what made these features (backbone spec, n, preprocessing, ...)
    <root>/<backbone>/shards/r000-00000.safetensors   features float16 [R, n, d], frame_indices int64 [R, n],
                                                       num_frames int64 [R]; clip ids in the header metadata
    <root>/<backbone>/shards/r000-00000.json          sidecar: sha256, rows, clip ids, rejected clips
    <root>/<backbone>/index.json             clip id -> [shard, row], per-shard sha256, identity
    <root>/<backbone>/rejections.jsonl       one row per clip that could not be used, with the reason

A shard counts as finished only once its sidecar exists; both are written atomically (shard first), so
an interrupted run leaves finished shards intact and at most one orphan shard, which is removed and
redone. The index is derived data: `build_index` rebuilds it from the sidecars at any time.

    cache = FeatureCache("cache", "lite0-minilm")
    x = cache.get("drawer-open-v3/0007")          # float32 [16, 1280]
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

from roboact.utils.io import atomic_path, atomic_write_json, atomic_write_text, read_json, sha256_file

log = logging.getLogger(__name__)

FORMAT = "roboact-feature-cache/1"
SAMPLING_RULE = ("uniform_indices: round(linspace(0, T-1, n)), first and last frame included; "
                 "clips shorter than n repeat frames at those positions")
RESIZE_RULE = "short side to image_size (bilinear, antialias), centre crop, then (x/255 - mean) / std"


class CacheError(ValueError):
    """A feature cache is missing, corrupt, or was made with another backbone / sampling; names the folder."""


# --- identity -------------------------------------------------------------------------------------

def cache_identity(backbone, n_frames: int) -> dict:
    """Everything that changes the numbers in a cache; two runs may share a cache only if this matches."""
    from roboact import __version__
    from roboact.backbones.runtime import runtime_identity

    return {
        "format": FORMAT,
        "backbone": _canonical_spec(backbone.spec()),
        "image_dim": int(backbone.image_dim),
        "n_frames": int(n_frames),
        "sampling": SAMPLING_RULE,
        "preprocessing": {"image_size": int(backbone.image_size), "mean": list(backbone.image_mean),
                          "std": list(backbone.image_std), "resize": RESIZE_RULE},
        "dtype": "float16",
        "roboact_version": __version__,
        **runtime_identity(getattr(backbone, "runtime", "eager")),
    }


def _canonical_spec(spec: dict) -> dict:
    # A weights folder named relatively in one run and absolutely in the next is the same backbone.
    path = spec.get("path")
    if isinstance(path, str) and Path(path).is_dir():
        spec = {**spec, "path": str(Path(path).resolve())}
    return spec


def identity_hash(identity: dict) -> str:
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_dir(root: str | os.PathLike, backbone: str) -> Path:
    """Folder of the cache for backbone `backbone` (its name, e.g. "lite0-minilm") under `root`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", backbone).strip("._")
    if not slug:
        raise CacheError(f"backbone name {backbone!r} gives an empty folder name")
    return Path(root) / slug


def claim_identity(folder: Path, identity: dict) -> None:
    """Record `identity` in a new cache folder, or check that an existing one was made the same way.

    Mixing features from two backbones, frame counts or preprocessing in one cache would silently
    corrupt training, so a mismatch is an error that names the differing fields.
    """
    path = folder / "identity.json"
    if not path.exists():
        atomic_write_json(path, identity)
        return
    old = read_json(path)
    if old != identity:
        diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        detail = "; ".join(f"{k}: cache has {old.get(k)!r}, this run has {identity.get(k)!r}" for k in diff)
        raise CacheError(f"{folder}: cache was made with different settings ({detail}); "
                         "use another --out folder or delete this one")


# --- shards ---------------------------------------------------------------------------------------

@dataclass
class ShardRecord:
    """The sidecar of one finished shard (also the unit of resume)."""
    name: str
    file: str | None                 # safetensors file name in shards/, None when every clip was rejected
    sha256: str | None
    bytes: int
    rows: int
    clip_ids: list[str]
    rejected: list[dict] = field(default_factory=list)   # {"clip_id", "path", "reason"}
    identity_hash: str = ""


def shards_dir(folder: Path) -> Path:
    return folder / "shards"


def write_shard(folder: Path, name: str, clip_ids: Sequence[str], features: torch.Tensor,
                frame_indices: torch.Tensor, num_frames: torch.Tensor, rejected: list[dict],
                id_hash: str) -> ShardRecord:
    """Write one shard and then its sidecar, each atomically; returns the sidecar record."""
    from safetensors.torch import save_file

    rows = len(clip_ids)
    if features.shape[0] != rows or frame_indices.shape[0] != rows or num_frames.shape[0] != rows:
        raise CacheError(f"shard {name}: {rows} clip ids but features {tuple(features.shape)}, "
                         f"frame_indices {tuple(frame_indices.shape)}, num_frames {tuple(num_frames.shape)}")
    file, digest, size = None, None, 0
    if rows:
        file = f"{name}.safetensors"
        tensors = {"features": features.to(torch.float16).contiguous(),          # (R, n, d)
                   "frame_indices": frame_indices.to(torch.int64).contiguous(),  # (R, n)
                   "num_frames": num_frames.to(torch.int64).contiguous()}        # (R,)
        meta = {"format": FORMAT, "identity_hash": id_hash, "clip_ids": json.dumps(list(clip_ids))}
        with atomic_path(shards_dir(folder) / file) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
            digest, size = sha256_file(tmp), tmp.stat().st_size
    rec = ShardRecord(name, file, digest, size, rows, list(clip_ids), list(rejected), id_hash)
    atomic_write_json(shards_dir(folder) / f"{name}.json", asdict(rec))
    return rec


def finished_shards(folder: Path) -> list[ShardRecord]:
    """Sidecars of all finished shards, sorted by name."""
    out = []
    for p in sorted(shards_dir(folder).glob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            out.append(ShardRecord(**read_json(p)))
        except TypeError as e:
            raise CacheError(f"{p}: not a shard sidecar ({e})") from None
    return out


def remove_unfinished(folder: Path) -> list[str]:
    """Delete shard files without a sidecar and temporary files left by a killed writer.

    Only safe while no other extraction writes into this folder (one extraction per cache at a time).
    """
    sd = shards_dir(folder)
    if not sd.is_dir():
        return []
    removed = []
    for p in sorted(sd.iterdir()):
        orphan = p.suffix == ".safetensors" and not p.with_suffix(".json").exists()
        if p.name.startswith(".") or orphan:
            p.unlink()
            removed.append(p.name)
    if removed:
        log.warning("%s: removed %d unfinished file(s): %s", folder, len(removed), ", ".join(removed[:5]))
    return removed


def next_shard_number(folder: Path, rank: int) -> int:
    """First unused shard number for rank `rank` (names are r{rank}-{k}), so resumed runs never collide."""
    nums = [int(m.group(1)) for p in shards_dir(folder).glob(f"r{rank:03d}-*.json")
            if (m := re.fullmatch(rf"r{rank:03d}-(\d+)\.json", p.name))]
    return max(nums, default=-1) + 1


def done_clip_ids(folder: Path) -> set[str]:
    """Clips already settled (encoded or rejected) by finished shards; resume skips them."""
    done: set[str] = set()
    for rec in finished_shards(folder):
        done.update(rec.clip_ids)
        done.update(r["clip_id"] for r in rec.rejected)
    return done


# --- index ----------------------------------------------------------------------------------------

def build_index(folder: Path, manifest: str | None = None) -> dict:
    """Merge all sidecars into index.json and rejections.jsonl (both atomic); returns the index.

    A clip kept in one shard and rejected in another (a retried bad file) counts as kept.
    """
    identity = read_json(folder / "identity.json")
    id_hash = identity_hash(identity)
    shards, clips, rejected = {}, {}, {}
    for rec in finished_shards(folder):
        if rec.identity_hash != id_hash:
            raise CacheError(f"{folder}: shard {rec.name} was made with other settings "
                             f"(identity {rec.identity_hash}, cache {id_hash})")
        if rec.file:
            shards[rec.name] = {"file": rec.file, "sha256": rec.sha256, "bytes": rec.bytes, "rows": rec.rows}
        for row, cid in enumerate(rec.clip_ids):
            if cid in clips:
                raise CacheError(f"{folder}: clip {cid!r} is in shards {clips[cid][0]} and {rec.name}")
            clips[cid] = [rec.name, row]
        rejected.update({r["clip_id"]: r for r in rec.rejected})
    rejections = [r for cid, r in sorted(rejected.items()) if cid not in clips]
    index = {"format": FORMAT, "identity": identity, "identity_hash": id_hash, "manifest": manifest,
             "num_clips": len(clips), "num_rejected": len(rejections), "shards": shards, "clips": clips}
    atomic_write_text(folder / "rejections.jsonl", "".join(json.dumps(r) + "\n" for r in rejections))
    atomic_write_json(folder / "index.json", index)
    return index


# --- reading --------------------------------------------------------------------------------------

class FeatureCache:
    """Read access to a finished cache: `get(clip_id)` -> [n, d] features, float32 unless asked otherwise.

    Shards are opened lazily and memory-mapped (safetensors), so opening a cache costs one JSON read and
    `get` reads one row. Safe to use from DataLoader workers.
    """

    def __init__(self, root: str | os.PathLike, backbone: str | None = None,
                 dtype: torch.dtype | None = torch.float32):
        self.folder = Path(root) if backbone is None else cache_dir(root, backbone)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise CacheError(_missing_index_message(Path(root), self.folder))
        self.index = read_json(index_path)
        if self.index.get("format") != FORMAT:
            raise CacheError(f"{index_path}: not a {FORMAT} index (format {self.index.get('format')!r})")
        self.identity: dict = self.index["identity"]
        if backbone is not None and self.identity["backbone"]["name"] != backbone:
            raise CacheError(f"{self.folder}: cache holds backbone {self.identity['backbone']['name']!r}, "
                             f"not {backbone!r}")
        self.dtype = dtype
        self._clips: dict[str, list] = self.index["clips"]
        self._handles: dict[str, object] = {}

    # -- description
    @property
    def clip_ids(self) -> list[str]:
        return list(self._clips)

    @property
    def dim(self) -> int:
        return int(self.identity["image_dim"])

    @property
    def n_frames(self) -> int:
        return int(self.identity["n_frames"])

    @property
    def backbone_spec(self) -> dict:
        return dict(self.identity["backbone"])

    def __len__(self) -> int:
        return len(self._clips)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._clips

    def rejections(self) -> list[dict]:
        path = self.folder / "rejections.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- data
    def get(self, clip_id: str) -> torch.Tensor:
        """Features of one clip: [n_frames, dim]."""
        handle, row = self._locate(clip_id)
        x = handle.get_slice("features")[row:row + 1][0]                    # (n, d) float16
        return x if self.dtype is None else x.to(self.dtype)

    def get_many(self, clip_ids: Iterable[str]) -> torch.Tensor:
        """Features of several clips: [B, n_frames, dim]."""
        ids = list(clip_ids)
        if not ids:
            return torch.zeros(0, self.n_frames, self.dim, dtype=self.dtype or torch.float16)
        return torch.stack([self.get(c) for c in ids])                       # (B, n, d)

    def frame_indices(self, clip_id: str) -> torch.Tensor:
        """Which decoded frames were sampled: int64 [n_frames] (repeats mark a padded short clip)."""
        handle, row = self._locate(clip_id)
        return handle.get_slice("frame_indices")[row:row + 1][0]

    def num_frames(self, clip_id: str) -> int:
        """Decoded length of the clip's video."""
        handle, row = self._locate(clip_id)
        return int(handle.get_slice("num_frames")[row:row + 1][0])

    def _locate(self, clip_id: str):
        try:
            shard, row = self._clips[clip_id]
        except KeyError:
            raise KeyError(f"clip {clip_id!r} is not in the feature cache {self.folder} "
                           f"({len(self._clips)} clips; rejected clips are listed in rejections.jsonl)") from None
        return self._open(shard), row

    def _open(self, shard: str):
        if shard not in self._handles:
            from safetensors import safe_open

            path = shards_dir(self.folder) / self.index["shards"][shard]["file"]
            if not path.is_file():
                raise CacheError(f"{path}: shard file missing (run `roboact extract` again to redo it)")
            self._handles[shard] = safe_open(str(path), framework="pt")
        return self._handles[shard]

    # -- integrity
    def verify(self) -> int:
        """Check every shard against its sha256 and the index rows; returns the number checked.

        Raises CacheError listing every bad shard, so one call tells the whole story.
        """
        problems = []
        for name, meta in self.index["shards"].items():
            path = shards_dir(self.folder) / meta["file"]
            if not path.is_file():
                problems.append(f"{name}: file missing")
            elif sha256_file(path) != meta["sha256"]:
                problems.append(f"{name}: sha256 mismatch (file changed or corrupt)")
            else:
                problems += _check_rows(name, self._open(name), meta["rows"], self.n_frames, self.dim)
        problems += [f"clip {c}: row {r} outside shard {s}" for c, (s, r) in self._clips.items()
                     if s not in self.index["shards"] or r >= self.index["shards"][s]["rows"]]
        if problems:
            raise CacheError(f"{self.folder}: {len(problems)} problem(s): " + "; ".join(problems[:20]))
        return len(self.index["shards"])


def _check_rows(name: str, handle, rows: int, n: int, d: int) -> list[str]:
    shape = tuple(handle.get_slice("features").get_shape())
    if shape != (rows, n, d):
        return [f"{name}: features have shape {shape}, index says ({rows}, {n}, {d})"]
    return []


def _missing_index_message(root: Path, folder: Path) -> str:
    found = sorted(p.parent.name for p in root.glob("*/index.json")) if root.is_dir() else []
    hint = f" (caches under {root}: {', '.join(found)})" if found else " (run `roboact extract` first)"
    return f"{folder}: no feature cache index{hint}"

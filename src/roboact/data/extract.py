"""`roboact extract`: sample n frames per clip, encode them once with the frozen backbone, fill the cache.

Pipeline per rank: DataLoader workers decode videos and sample frames (`uniform_indices`) while the main
process encodes the previous batch, so decoding overlaps encoding. Clips are split across torchrun ranks;
each rank writes its own shards (names r{rank}-{k}); after a barrier rank 0 merges the sidecars into the
index. A bad video becomes a rejection row with its reason and the run goes on. A rerun (or a run after a
crash) skips every clip settled by a finished shard, so finished work is never redone.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from roboact import dist
from roboact.backbones.runtime import RUNTIMES
from roboact.data import features as fc
from roboact.data.manifest import ClipRecord, read_manifest, resolve
from roboact.utils.config import check
from roboact.utils.device import device_problem

log = logging.getLogger(__name__)


@dataclass
class ExtractConfig:
    manifest: str                       # JSONL of ClipRecord
    out_dir: str                        # cache root; this run fills out_dir/<backbone name>/
    backbone: str = "lite0-minilm"
    backbone_path: str | None = None    # weights folder (hf-clip)
    n_frames: int = 16                  # frames sampled per clip (the paper's n)
    shard_size: int = 256               # clips per shard (the unit of atomic write and resume)
    batch_size: int = 4                 # clips per DataLoader batch; batch_size * n_frames frames per encode
    num_workers: int = 2                # decoding processes; 0 decodes in the main process
    max_shards: int | None = None       # stop after this many new shards per rank (time-boxed jobs)
    device: str = "auto"                # auto = this rank's GPU if any, else CPU
    runtime: str = "default"            # image-tower runtime (backbones/runtime.py); recorded in the identity
    progress: bool = True

    def __post_init__(self) -> None:
        check(isinstance(self.manifest, str) and bool(self.manifest), "manifest", "must be a path")
        check(isinstance(self.out_dir, str) and bool(self.out_dir), "out_dir", "must be a path")
        check(self.n_frames >= 2, "n_frames", f"must be >= 2 (frame differences need two), got {self.n_frames}")
        check(self.shard_size >= 1, "shard_size", f"must be >= 1, got {self.shard_size}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.num_workers >= 0, "num_workers", f"must be >= 0, got {self.num_workers}")
        check(self.max_shards is None or self.max_shards >= 1, "max_shards", f"must be >= 1, got {self.max_shards}")
        problem = device_problem(self.device, allow_auto=True)
        check(problem is None, "device", problem or "")
        check(self.runtime in RUNTIMES, "runtime", f"must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")


@dataclass
class ExtractResult:
    cache_dir: Path
    kept: int            # clips encoded by this run (all ranks)
    rejected: int        # clips rejected by this run (all ranks)
    skipped: int         # clips already settled by an earlier run
    new_shards: int
    frames: int          # frames encoded by this run (all ranks)
    seconds: float       # decode + encode + write time of the slowest rank (no backbone loading, no merge)
    wall_seconds: float  # the whole call, backbone loading and index merge included
    complete: bool       # every manifest clip is now settled (kept or rejected)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# --- decoding (runs in DataLoader workers) ----------------------------------------------------------

def decode_clip(path: str, n: int, frame_range: tuple[int, int] | None = None,
                time_range: tuple[float, float] | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(frames uint8 [n, H, W, 3], sampled indices int64 [n], decoded length) for one video.

    Counts frames by demuxing, then decodes only up to the last wanted frame and keeps only the wanted
    ones, so memory stays at n frames whatever the video length. `frame_range` = [start, stop) limits
    sampling to a window of the video (curated human clips trimmed by their start/end times).
    `time_range` = [from, to) seconds is a clip that is one stretch of a longer video (a LeRobot v3.0
    episode): it is not counted, but sought to and decoded alone; its length is (to - from) * fps, the
    indices are the file's frame numbers and the decoded length is the clip's.
    Raises VideoError / BackboneError.
    """
    from roboact.backbones.base import check_frames
    from roboact.data.video import VideoError, count_frames, read_frames, uniform_indices

    if time_range is not None:
        return _decode_time_range(path, n, time_range)
    total, _ = count_frames(path)
    if frame_range is not None and not (isinstance(frame_range, (list, tuple)) and len(frame_range) == 2
                                        and all(isinstance(x, int) for x in frame_range)
                                        and 0 <= frame_range[0] < frame_range[1]):
        raise VideoError(f"{path}: extra.frame_range must be [start, stop) with 0 <= start < stop, got {frame_range!r}")
    start, stop = (0, total) if frame_range is None else (int(frame_range[0]), min(int(frame_range[1]), total))
    if stop - start < 1:
        raise VideoError(f"{path}: frame_range {list(frame_range)} holds no frame of the {total} decoded")
    idx = start + uniform_indices(stop - start, n)
    frames = check_frames(read_frames(path, idx))                         # (n, H, W, 3) uint8
    return frames, torch.from_numpy(idx), total


def _decode_time_range(path: str, n: int, time_range) -> tuple[torch.Tensor, torch.Tensor, int]:
    from roboact.backbones.base import check_frames
    from roboact.data.video import VideoError, read_frames_at, stream_fps, uniform_indices

    if not (isinstance(time_range, (list, tuple)) and len(time_range) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in time_range)
            and 0 <= time_range[0] < time_range[1]):
        raise VideoError(f"{path}: extra.time_range must be [from, to) seconds with 0 <= from < to, "
                         f"got {time_range!r}")
    fps = stream_fps(path)
    first = int(round(time_range[0] * fps))
    length = max(int(round((time_range[1] - time_range[0]) * fps)), 1)
    idx = first + uniform_indices(length, n)
    frames = check_frames(read_frames_at(path, idx / fps))
    return frames, torch.from_numpy(idx), length


class ClipFrames(Dataset):
    """Decoded, sampled frames of each clip; a clip that cannot be used comes back with its reason."""

    def __init__(self, clips: list[tuple], n: int):
        self.clips, self.n = clips, n  # (clip_id, path[, frame_range[, time_range]])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        clip_id, path, *rest = self.clips[i]
        item = {"clip_id": clip_id, "path": path, "frames": None, "indices": None, "num_frames": 0, "error": None}
        try:
            item["frames"], item["indices"], item["num_frames"] = decode_clip(path, self.n, *rest)
        except Exception as e:  # VideoError, BackboneError, or anything a broken file triggers in PyAV
            item["error"] = str(e) if isinstance(e, ValueError) else f"{path}: {type(e).__name__}: {e}"
        return item


def _collate(items: list[dict]) -> list[dict]:
    return items  # clips differ in frame size; grouping happens in encode_batch


def _worker_init(_: int) -> None:
    from roboact.utils.shutdown import install_worker_handlers

    torch.set_num_threads(1)  # decoding workers must not compete with the encoder for cores
    install_worker_handlers()  # SIGTERM, SIGINT or our death: exit (they write nothing)


# --- encoding (main process) -------------------------------------------------------------------------

def encode_batch(backbone, items: list[dict]) -> list[torch.Tensor | None]:
    """Features [n, d] for each decoded item (None for rejected ones); one encode call per frame size."""
    out: list[torch.Tensor | None] = [None] * len(items)
    groups: dict[tuple, list[int]] = {}
    for i, it in enumerate(items):
        if it["error"] is None:
            groups.setdefault(tuple(it["frames"].shape[1:]), []).append(i)
    for members in groups.values():
        frames = torch.cat([items[i]["frames"] for i in members])            # (k*n, H, W, 3)
        feats = backbone.encode_images(frames)                                # (k*n, d)
        feats = feats.view(len(members), -1, feats.shape[-1])                 # (k, n, d)
        for j, i in enumerate(members):
            out[i] = feats[j]
    return out


class _ShardWriter:
    """Collects settled clips in manifest order and writes a shard every `shard_size` clips."""

    def __init__(self, folder: Path, rank: int, id_hash: str, shard_size: int):
        self.folder, self.rank, self.id_hash, self.size = folder, rank, id_hash, shard_size
        self.number = fc.next_shard_number(folder, rank)
        self.written, self.kept, self.rejected, self.frames = 0, 0, 0, 0
        self._reset()

    def _reset(self) -> None:
        self.ids, self.feats, self.idx, self.lens, self.rej = [], [], [], [], []

    def add(self, item: dict, feats: torch.Tensor | None) -> bool:
        """Add one clip; returns True when this completed (and wrote) a shard."""
        half = None if feats is None else feats.to(torch.float16)
        if item["error"] is None and not torch.isfinite(half).all():
            item["error"] = f"{item['path']}: features overflow float16 or are not finite"
        if item["error"] is None:
            self.ids.append(item["clip_id"])
            self.feats.append(half)
            self.idx.append(item["indices"])
            self.lens.append(item["num_frames"])
        else:
            log.warning("rejected %s: %s", item["clip_id"], item["error"])
            self.rej.append({"clip_id": item["clip_id"], "path": item["path"], "reason": item["error"]})
        if len(self.ids) + len(self.rej) >= self.size:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        if not self.ids and not self.rej:
            return
        n_d = self.feats[0].shape if self.feats else (0, 0)
        feats = torch.stack(self.feats) if self.feats else torch.zeros(0, *n_d)          # (R, n, d)
        idx = torch.stack(self.idx) if self.idx else torch.zeros(0, 0, dtype=torch.int64)  # (R, n)
        name = f"r{self.rank:03d}-{self.number:05d}"
        fc.write_shard(self.folder, name, self.ids, feats, idx, torch.tensor(self.lens, dtype=torch.int64),
                       self.rej, self.id_hash)
        self.number += 1
        self.written += 1
        self.kept += len(self.ids)
        self.rejected += len(self.rej)
        self.frames += int(feats.shape[0] * feats.shape[1]) if self.feats else 0
        self._reset()
        from roboact.utils.shutdown import note

        note(f"{self.kept + self.rejected} clips settled in {self.written} new shard(s) by rank {self.rank}")


# --- orchestration ----------------------------------------------------------------------------------

def extract(cfg: ExtractConfig, backbone=None) -> ExtractResult:
    """Fill the cache for every clip of `cfg.manifest` not already in it; safe to rerun or resume.

    Under torchrun every rank calls this; clips are split across ranks. `backbone` (a FrozenBackbone)
    may be passed to reuse a loaded one; its name must match `cfg.backbone`.
    """
    t0 = time.perf_counter()
    di = dist.init()
    records = read_manifest(cfg.manifest)  # a bad manifest fails before the backbone loads
    backbone = _load_backbone(cfg, backbone, di)
    identity = fc.cache_identity(backbone, cfg.n_frames)
    folder = fc.cache_dir(cfg.out_dir, backbone.name)
    _prepare_folder(folder, identity)
    done = fc.done_clip_ids(folder)
    todo = [r for r in records if r.clip_id not in done]
    mine = [todo[i] for i in dist.shard_indices(len(todo))]
    dist.barrier()  # every rank has read the finished shards before anyone writes new ones
    writer = _ShardWriter(folder, di.rank, fc.identity_hash(identity), cfg.shard_size)
    t_run = time.perf_counter()
    _run(cfg, backbone, writer, _clip_paths(cfg.manifest, mine))
    t_run = time.perf_counter() - t_run
    totals = dist.all_gather_object((writer.kept, writer.rejected, writer.written, writer.frames, t_run))
    dist.barrier()  # all shards of this run are on disk
    complete = _on_main(lambda: _merge(folder, cfg.manifest, records))
    kept, rejected, shards, frames = (sum(t[i] for t in totals) for i in range(4))
    res = ExtractResult(folder, kept, rejected, len(records) - len(todo), shards, frames,
                        max(t[4] for t in totals), time.perf_counter() - t0, complete)
    if di.is_main:
        log.info("extract: %d clips encoded, %d rejected, %d already cached, %d shards, %.1f frames/s -> %s",
                 kept, rejected, res.skipped, shards, res.frames_per_s, folder)
    return res


def _load_backbone(cfg: ExtractConfig, backbone, di: dist.DistInfo):
    from roboact.backbones import load_backbone, on_device, private

    device = di.device if cfg.device == "auto" else torch.device(cfg.device)
    if backbone is None:
        kwargs = {"load_text": False} if cfg.backbone == "lite0-minilm" else {}
        return load_backbone(cfg.backbone, path=cfg.backbone_path, device=device, runtime=cfg.runtime, **kwargs)
    if backbone.name != cfg.backbone:
        raise ValueError(f"backbone: config names {cfg.backbone!r} but a {backbone.name!r} backbone was passed")
    backbone = on_device(backbone, device)
    if backbone.runtime_request != cfg.runtime:
        backbone = private(backbone).set_runtime(cfg.runtime)
    return backbone


def _on_main(fn):
    """Run `fn` on rank 0 only and hand its result - or its error - to every rank.

    A rank-0-only step that failed silently would leave the other ranks waiting in the next collective.
    """
    result, error = None, None
    if dist.is_main():
        try:
            result = fn()
        except (ValueError, OSError) as e:  # CacheError, ManifestError, JSON and file errors
            error = f"{type(e).__name__}: {e}" if not isinstance(e, fc.CacheError) else str(e)
    result, error = dist.broadcast_object((result, error))
    if error:
        raise fc.CacheError(error)
    return result


def _prepare_folder(folder: Path, identity: dict) -> None:
    """Rank 0 checks the cache identity and clears debris of a killed run; every rank gets the verdict."""
    def prepare() -> None:
        fc.claim_identity(folder, identity)
        fc.remove_unfinished(folder)

    _on_main(prepare)


def _merge(folder: Path, manifest: str, records: list[ClipRecord]) -> bool:
    """Write the index; True when every manifest clip is settled (kept or rejected)."""
    fc.build_index(folder, str(Path(manifest).resolve()))
    return {r.clip_id for r in records} <= fc.done_clip_ids(folder)


def _clip_paths(manifest: str, records: list[ClipRecord]) -> list[tuple]:
    """(clip id, video path, frame range or None, time range or None): curated clips may carry
    extra["frame_range"] = [start, stop) frames (trimmed RH20T human clips) or extra["time_range"] =
    [from, to) seconds (LeRobot v3.0 episodes, many to a file)."""
    return [(r.clip_id, str(resolve(manifest, r.path)), _extra(r, "frame_range"), _extra(r, "time_range"))
            for r in records]


def _extra(r: ClipRecord, key: str):
    """Passed through unchecked: a malformed range is rejected per clip in decode_clip, not fatal to the run."""
    return r.extra.get(key) if isinstance(r.extra, dict) else None


def _run(cfg: ExtractConfig, backbone, writer: _ShardWriter, clips: list[tuple[str, str]]) -> None:
    """Decode in workers, encode here, write shards; stops early after `max_shards` new shards."""
    from tqdm.auto import tqdm

    if not clips:
        return
    on_gpu = next(backbone.parameters()).device.type == "cuda"
    # spawn, not fork: PyAV >= 19 keeps a per-thread swscale context whose slice threads a forked worker
    # inherits without the threads, and freeing it there waits on them forever (seen as a hung extract).
    loader = DataLoader(ClipFrames(clips, cfg.n_frames), batch_size=cfg.batch_size, shuffle=False,
                        num_workers=cfg.num_workers, collate_fn=_collate, pin_memory=on_gpu,
                        worker_init_fn=_worker_init if cfg.num_workers else None,
                        prefetch_factor=4 if cfg.num_workers else None,
                        multiprocessing_context="spawn" if cfg.num_workers else None)
    bar = tqdm(total=len(clips), unit="clip", desc=f"extract (rank {writer.rank})",
               disable=not (cfg.progress and dist.is_main()))
    with bar:
        for items in loader:
            for item, feats in zip(items, encode_batch(backbone, items)):
                if writer.add(item, feats) and cfg.max_shards and writer.written >= cfg.max_shards:
                    log.info("rank %d: stopping after %d shard(s) (max_shards)", writer.rank, writer.written)
                    return
            bar.update(len(items))
    writer.flush()


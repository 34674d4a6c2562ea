"""End-to-end `roboact extract` throughput vs the raw backbone on the same frames (target ratio >= 0.8).

raw:  frames decoded and sampled beforehand, timed `backbone.encode_images` alone, in the same batches
      extract uses (batch_size clips x n frames per call).
e2e:  `extract()` on the same clips into a fresh cache: DataLoader workers decode + sample while the main
      process encodes, plus float16 shard writes (timed loop; backbone loading and index merge excluded,
      `wall` includes them).
Raw and e2e runs alternate (`--repeats`) and medians are reported. On a shared machine wall-clock
figures swing with the other load, so the decode cost is reported too (one process decoding every clip,
as one worker does): `shared_cores_ratio_bound` = encode / (encode + decode) time per sampled frame is the
ratio to expect when decoding and encoding compete for the same CPU cores (no idle core for the workers).

    python benchmarks/bench_extract.py                                  # synthetic 128 px clips, lite0-minilm
    python benchmarks/bench_extract.py --manifest data/mw/manifest.jsonl --clips 24
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synth_corpus(folder: Path, clips: int, frames: int, size: int) -> Path:
    """Clips shaped like the simulated corpus (128 px, ~100 frames): a textured scene with a moving block."""
    from roboact.data.manifest import ClipRecord, write_manifest
    from roboact.data.video import write_mp4

    rng = np.random.default_rng(0)
    rows = []
    for c in range(clips):
        scene = rng.integers(0, 255, (size, size, 3), dtype=np.uint8) // 4 + 64
        video = np.repeat(scene[None], frames, axis=0)
        for t in range(frames):
            y = int((size - 24) * t / max(frames - 1, 1))
            video[t, y:y + 24, size // 3:size // 3 + 24] = (220, 60 + c, 40)
        write_mp4(folder / "videos" / f"c{c:03d}.mp4", video)
        rows.append(ClipRecord(clip_id=f"c{c:03d}", path=f"videos/c{c:03d}.mp4", subject="Robot",
                               action="push", object="block"))
    write_manifest(folder / "manifest.jsonl", rows)
    return folder / "manifest.jsonl"


def decode_all(manifest: Path, n: int) -> tuple[list[torch.Tensor], float]:
    """Sampled frames of every clip, and the decode time per clip (one process, as in one worker)."""
    from roboact.data.extract import decode_clip
    from roboact.data.manifest import read_manifest, resolve

    rows = read_manifest(manifest)
    t = time.perf_counter()
    frames = [decode_clip(str(resolve(manifest, r.path)), n)[0] for r in rows]
    return frames, (time.perf_counter() - t) / len(rows)


def raw_throughput(backbone, clip_frames: list[torch.Tensor], batch_size: int) -> float:
    """Frames/s of encode_images alone, batched like extract (batch_size clips per call)."""
    n = sum(len(f) for f in clip_frames)
    t = time.perf_counter()
    for i in range(0, len(clip_frames), batch_size):
        backbone.encode_images(torch.cat(clip_frames[i:i + batch_size]))      # (B*n, d)
    return n / (time.perf_counter() - t)


def e2e_throughput(backbone, cfg_kwargs: dict) -> tuple[float, float]:
    """(frames/s of the extraction loop, frames/s of the whole call)."""
    from roboact.data.extract import ExtractConfig, extract

    with tempfile.TemporaryDirectory() as out:
        res = extract(ExtractConfig(out_dir=out, progress=False, **cfg_kwargs), backbone=backbone)
    return res.frames_per_s, res.frames / res.wall_seconds


def corpus(args: argparse.Namespace, tmp: Path) -> Path:
    """The benchmark's manifest: the first --clips rows of --manifest (absolute paths), or synthetic clips."""
    from roboact.data.manifest import read_manifest, resolve, write_manifest

    if not args.manifest:
        return synth_corpus(tmp, args.clips, args.frames, args.size)
    rows = read_manifest(args.manifest)[: args.clips]
    for r in rows:
        r.path = str(resolve(args.manifest, r.path).resolve())
    write_manifest(tmp / "manifest.jsonl", rows)
    return tmp / "manifest.jsonl"


def measure(args: argparse.Namespace, backbone, manifest: Path) -> dict:
    """Alternate raw and end-to-end runs; medians, every run, and the decode cost."""
    clip_frames, decode_s = decode_all(manifest, args.n_frames)
    backbone.encode_images(clip_frames[0])  # warm-up (allocator, kernels)
    cfg = dict(manifest=str(manifest), backbone=args.backbone, backbone_path=args.backbone_path,
               n_frames=args.n_frames, batch_size=args.batch_size, num_workers=args.num_workers,
               device=args.device, shard_size=64)
    raws, e2es, walls = [], [], []
    for _ in range(args.repeats):
        raws.append(raw_throughput(backbone, clip_frames, args.batch_size))
        e2e, wall = e2e_throughput(backbone, cfg)
        e2es.append(e2e)
        walls.append(wall)
    raw, e2e = statistics.median(raws), statistics.median(e2es)
    enc_ms, dec_ms = 1000 / raw, 1000 * decode_s / args.n_frames
    return {"clips": len(clip_frames), "frames_per_clip_video": "manifest" if args.manifest else args.frames,
            "n_frames": args.n_frames, "batch_size": args.batch_size, "num_workers": args.num_workers,
            "raw_frames_per_s": round(raw, 1), "e2e_frames_per_s": round(e2e, 1),
            "e2e_wall_frames_per_s": round(statistics.median(walls), 1), "ratio": round(e2e / raw, 3),
            "raw_runs": [round(x, 1) for x in raws], "e2e_runs": [round(x, 1) for x in e2es],
            "encode_ms_per_frame": round(enc_ms, 2), "decode_ms_per_clip": round(1000 * decode_s, 1),
            "decode_ms_per_sampled_frame": round(dec_ms, 2),
            "shared_cores_ratio_bound": round(enc_ms / (enc_ms + dec_ms), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", help="use this corpus instead of synthetic clips (first --clips rows)")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--frames", type=int, default=96, help="frames per synthetic clip")
    p.add_argument("--size", type=int, default=128, help="synthetic frame size")
    p.add_argument("--backbone", default="lite0-minilm")
    p.add_argument("--backbone-path", default=None)
    p.add_argument("--n-frames", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)

    from roboact import dist
    from roboact.backbones import load_backbone

    kwargs = {"load_text": False} if args.backbone == "lite0-minilm" else {}
    device = dist.device() if args.device == "auto" else torch.device(args.device)
    backbone = load_backbone(args.backbone, path=args.backbone_path, **kwargs).to(device)
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        result = measure(args, backbone, corpus(args, Path(tmp)))
    result.update(backbone=args.backbone, device=str(device), torch_threads=torch.get_num_threads(),
                  cpu=platform.processor() or platform.machine(),
                  gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the trainable heads (forward + backward on cached features) vs the frozen image backbone.

    .venv/bin/python benchmarks/bench_model.py [--batch 256] [--steps 10] [--threads 2] [--frame-batches 1 2 5 10]
    python benchmarks/bench_model.py --device cuda [--amp] [--backbone-batch 128]     # on a GPU machine

Why it matters: the backbone runs once per frame (then features are cached); the heads run every step
of every epoch. The ratio says how much of a clip's cost is the heads. `--frame-batches` also times the
backbone on frames arriving k at a time (ms per frame, median of repeated calls): what closed-loop
rollouts pay per control step with one env (k = 1) or k envs in lockstep (`roboact policy --parallel k`).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from roboact.backbones import load_backbone
from roboact.backbones.runtime import resolve_runtime
from roboact.models import RoboActCLIP, RoboActConfig


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_heads(cfg: RoboActConfig, batch: int, steps: int, device: str = "cpu", amp: bool = False) -> float:
    """Training steps of the heads as `roboact train` runs them (bf16 autocast with --amp, as on a GPU)."""
    torch.manual_seed(0)
    model = RoboActCLIP(cfg).to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch, cfg.n_frames, cfg.image_dim, device=device)
    t = torch.randn(batch, cfg.text_dim, device=device)
    labels = {f: torch.randint(0, cfg.num_classes(f), (batch,), device=device) for f in ("subject", "action", "object")}
    recomb_text = torch.randn(cfg.recomb_size, cfg.text_dim, device=device)

    def step(i):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.startswith("cuda")):
            out = model(x, t, labels, recomb=(trip, recomb_text[: len(trip)]) if len(trip) >= 2 else None)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        model.update_banks(out, labels, i)

    trip = torch.zeros(0, 3, dtype=torch.long, device=device)
    step(0)
    trip = model.sample_triplets(cfg.recomb_size)
    step(1)
    sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i + 2)
    sync(device)
    return batch * steps / (time.perf_counter() - t0)


def _backbone(device: str, batch: int | None):
    bb = load_backbone("lite0-minilm", load_text=False, cache=False, device=device)
    if batch:
        bb.batch_size = bb.gpu_batch_size = batch
    return bb


def bench_backbone(n_frames: int, size: int, device: str = "cpu", batch: int | None = None) -> float:
    """Frames per second through `encode_images` (features come back to the CPU, as extraction needs)."""
    bb = _backbone(device, batch)
    frames = np.random.default_rng(0).integers(0, 255, (n_frames, size, size, 3), dtype=np.uint8)
    chunk = bb.gpu_batch_size if device.startswith("cuda") else bb.batch_size
    bb.encode_images(frames[:chunk])  # warm-up at the chunk size the timed calls use
    ts = []
    for _ in range(3 if device.startswith("cuda") else 1):
        t0 = time.perf_counter()
        bb.encode_images(frames)
        ts.append(time.perf_counter() - t0)
    return n_frames / float(np.median(ts))


def bench_frame_batches(sizes: list[int], size: int, frames_per_size: int = 60,
                        device: str = "cpu") -> dict[int, float]:
    """{k: median ms per frame when `encode_images` gets k frames at a time}."""
    bb = _backbone(device, max(sizes))
    rng = np.random.default_rng(0)
    out = {}
    for k in sizes:
        x = rng.integers(0, 255, (k, size, size, 3), dtype=np.uint8)
        bb.encode_images(x)  # warm-up
        ts = []
        for _ in range(max(3, frames_per_size // k)):
            t = time.perf_counter()
            bb.encode_images(x)
            ts.append(time.perf_counter() - t)
        out[k] = round(1000 * float(np.median(ts)) / k, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--frames", type=int, default=128, help="frames for the backbone measurement")
    ap.add_argument("--size", type=int, default=128, help="input frame size (resized to 224 by the backbone)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast for the heads (what `roboact train` does on a GPU)")
    ap.add_argument("--backbone-batch", type=int, default=None,
                    help="frames per backbone call (default: the backbone's own, 16 on CPU, 128 on GPU)")
    ap.add_argument("--frame-batches", type=int, nargs="*", default=[],
                    help="also time the backbone on frames arriving k at a time, for each k given")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RoboActConfig(actions=[f"a{i}" for i in range(16)], objects=[f"o{i}" for i in range(16)],
                        subjects=["Robot", "Human"])
    clips_s = bench_heads(cfg, args.batch, args.steps, args.device, args.amp)
    frames_s = bench_backbone(args.frames, args.size, args.device, args.backbone_batch)
    heads_cost, bb_cost = 1.0 / clips_s, cfg.n_frames / frames_s
    res = {"threads": args.threads, "batch": args.batch, "heads_clips_per_s": round(clips_s, 1),
           "backbone_frames_per_s": round(frames_s, 1), "backbone_clips_per_s": round(frames_s / cfg.n_frames, 2),
           "heads_cost_over_backbone_cost_per_clip": round(heads_cost / bb_cost, 5),
           "torch": torch.__version__, "device": args.device, "amp": args.amp,
           "runtime": resolve_runtime("default", args.device),          # what _backbone's load_backbone runs
           "backbone_batch": args.backbone_batch or ("gpu default" if args.device.startswith("cuda") else "cpu default")}
    if args.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    if args.frame_batches:
        res["backbone_ms_per_frame_by_batch"] = bench_frame_batches(args.frame_batches, args.size,
                                                                    device=args.device)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

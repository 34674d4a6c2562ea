"""Per-step encoder latency for control: streaming (one new frame per step) vs the 16-frame window
encoded from scratch, with the offline lite0-minilm backbone, and the largest difference between the two
embeddings over the run.

    .venv/bin/python benchmarks/bench_streaming.py [--steps 40] [--size 128] [--threads 2] [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from roboact.backbones import load_backbone
from roboact.models import RoboActCLIP, RoboActConfig
from roboact.models.encoder import RoboActEncoder
from roboact.models.streaming import window_from_scratch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i] (backbone and heads both move there)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bb = load_backbone("lite0-minilm", load_text=False, cache=False)
    cfg = RoboActConfig(actions=["open", "close"], objects=["drawer"])
    enc = RoboActEncoder(RoboActCLIP(cfg), bb).to(args.device).eval()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    frames = np.random.default_rng(0).integers(0, 255, (args.steps, args.size, args.size, 3), dtype=np.uint8)
    stream, t_stream, t_scratch, max_diff = enc.stream(), [], [], 0.0
    for t in range(args.steps):
        sync()
        t0 = time.perf_counter()
        got = stream.step(frames[t])["fused"]
        sync()
        t1 = time.perf_counter()
        ref = window_from_scratch(enc, frames[: t + 1], cfg.n_frames)
        sync()
        t2 = time.perf_counter()
        t_stream.append(t1 - t0)
        t_scratch.append(t2 - t1)
        max_diff = max(max_diff, float((got - ref).abs().max()))
    s, f = np.median(t_stream[2:]), np.median(t_scratch[2:])
    print(json.dumps({"device": args.device, "runtime": bb.runtime, "threads": args.threads, "image_size": args.size,
                      "n_frames": cfg.n_frames,
                      "stream_ms_per_step": round(1000 * s, 1), "scratch_ms_per_step": round(1000 * f, 1),
                      "speedup": round(f / s, 1), "max_abs_embedding_diff": max_diff}, indent=2))


if __name__ == "__main__":
    main()

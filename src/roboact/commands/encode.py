"""`roboact encode`: encode a video (or a generated clip) and print the factor embeddings.

Without --checkpoint the heads are freshly initialised: the command then checks the install end to end
(backbone weights, decoding, every head), not what a trained model understands.
"""
from __future__ import annotations

import json

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("encode", help="encode a video clip into subject / action / object embeddings")
    p.add_argument("video", nargs="?", help="video file (mp4, ...); omit with --demo")
    p.add_argument("--demo", action="store_true", help="encode a generated clip (a block sliding across a table)")
    p.add_argument("--checkpoint", help="trained roboact checkpoint folder (default: untrained heads)")
    p.add_argument("--backbone", default="lite0-minilm", help="backbone when no checkpoint is given")
    p.add_argument("--backbone-path", default=None, help="weights folder for hf-clip")
    p.add_argument("--text", action="append", default=[], help="caption(s) to score against the clip")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def synthetic_clip(t: int = 24, size: int = 128, seed: int = 0) -> np.ndarray:
    """A red block sliding left to right over a textured table: [t, size, size, 3] uint8."""
    rng = np.random.default_rng(seed)
    base = (rng.integers(90, 140, size=(size, size, 3))).astype(np.uint8)
    frames = np.repeat(base[None], t, axis=0)
    side = size // 6
    for i in range(t):
        x = int((size - side) * i / max(t - 1, 1))
        frames[i, size // 2 - side // 2: size // 2 + side // 2, x:x + side] = (200, 30, 30)
    return frames


def build_encoder(args):
    from roboact.backbones import load_backbone
    from roboact.models.config import RoboActConfig
    from roboact.models.encoder import RoboActEncoder, load
    from roboact.models.roboact_clip import RoboActCLIP

    if args.checkpoint:
        return load(args.checkpoint)
    bb = load_backbone(args.backbone, path=args.backbone_path)
    cfg = RoboActConfig(backbone=bb.name, backbone_path=args.backbone_path, image_dim=bb.image_dim,
                        text_dim=bb.text_dim, actions=["push"], objects=["block"])
    return RoboActEncoder(RoboActCLIP(cfg), bb).eval()


def run(args) -> int:
    import torch

    from roboact.data.video import read_frames

    if not args.video and not args.demo:
        raise ValueError("give a video file or --demo")
    frames = synthetic_clip() if args.demo else read_frames(args.video)
    enc = build_encoder(args)
    torch.manual_seed(0)
    out = enc.encode_video(frames)
    report = {"frames": list(frames.shape), "backbone": enc.cfg.backbone, "trained": bool(args.checkpoint),
              "embeddings": {k: {"shape": list(v.shape), "norm": round(float(v.norm()), 4)} for k, v in out.items()}}
    if args.text:
        v = enc.encode_video(frames, normalize=True)["fused"]
        t = enc.encode_text(args.text, normalize=True)["fused"]
        report["similarity"] = {s: round(float(x), 4) for s, x in zip(args.text, (v @ t.T)[0])}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"clip {tuple(frames.shape)} -> backbone {report['backbone']} "
          f"({'trained' if report['trained'] else 'untrained'} heads)")
    for k, e in report["embeddings"].items():
        print(f"  {k:8s} shape {tuple(e['shape'])}  norm {e['norm']:.4f}")
    for s, x in report.get("similarity", {}).items():
        print(f"  cos(video, {s!r}) = {x:+.4f}")
    return 0

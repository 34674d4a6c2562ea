"""How much the antialias kernel changes an upsampled frame (docs/benchmarks.md, "Image-tower runtimes").

The compiled runtimes resize without torch's antialias kernel when upsampling (FrozenBackbone.resize with
antialias_upsampling=False): cheaper, and for upsampling bilinear interpolation with and without the kernel
should give the same pixels. This measures the largest pixel difference, on [0, 1] images, between the two on
frames of every size the package meets (LIBERO/Meta-World renders at 64, 128 and 256 px, non-square 128x160)
going to 224 px, and writes it as JSON:

    python benchmarks/resize_antialias.py --json docs/results/resize_antialias.json
"""
from __future__ import annotations

import argparse
import json
import platform

import torch


def measure(sizes, target: int = 224, n: int = 8, seed: int = 0) -> list[dict]:
    from roboact.backbones.base import FrozenBackbone

    class _Sized(FrozenBackbone):          # only resize() is used: no weights
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.image_size = target

    bb = _Sized()
    g = torch.Generator().manual_seed(seed)
    rows = []
    for h, w in sizes:
        frames = torch.randint(0, 256, (n, h, w, 3), generator=g, dtype=torch.uint8)
        with_aa = bb.resize(frames, antialias_upsampling=True)
        without = bb.resize(frames, antialias_upsampling=False)
        rows.append({"input": [h, w], "output": list(with_aa.shape[-2:]), "frames": n,
                     "upsampling": min(h, w) < target,
                     "max_abs_diff": float((with_aa - without).abs().max())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()
    rows = measure([(64, 64), (128, 128), (128, 160), (200, 200), (256, 256)])
    out = {"command": "python benchmarks/resize_antialias.py --json docs/results/resize_antialias.json",
           "torch": torch.__version__, "machine": platform.machine(), "rows": rows,
           "max_abs_diff_upsampling": max(r["max_abs_diff"] for r in rows if r["upsampling"])}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

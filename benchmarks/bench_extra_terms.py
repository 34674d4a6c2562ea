"""What the optional pretraining terms (model.lambda_tcn, model.lambda_frame; docs/model.md) cost per step, and
whether the fused vector then keeps more of the current frame.

    .venv/bin/python benchmarks/bench_extra_terms.py --manifest runs/demo/corpus/manifest_compositional.jsonl \
        --cache runs/demo/cache --run off=RUN0,RUN1 --run tcn=RUN2,RUN3 --run frame=RUN4,RUN5 --out result.json

Each --run is a table row: its name and the `roboact train` output folders of its seeds. Two measurements:
- step time: CPU time of forward + backward + AdamW of freshly built heads with each row's config (batch 32 of the
  run's own frame width and frame count, random inputs), rows interleaved over repeats so a shared CPU's
  load falls on all alike; the median over repeats of the mean step time.
- frame probe: R^2 of a ridge regression from the `fused` output to the clip's last frame feature
  (LayerNorm-ed, as `loss_frame` targets it), fit on the train split, the ridge strength chosen on val,
  scored on val (held-out episodes of seen pairs) and test (unseen pairs): how much of the current frame a
  linear reader (a probe, a small policy) still finds. `ridge_probe` says what R^2 is relative to.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

import roboact
from roboact.data.clipset import load_rows
from roboact.data.features import FeatureCache
from roboact.models import RoboActCLIP
from roboact.models.encoder import load_config
from roboact.models.checkpoints import resolve_checkpoint


def step_time(cfg, batch: int, steps: int) -> float:
    """Mean CPU seconds per training step of the heads with this config, one thread: process time, not wall
    time, so other jobs on a shared machine inflate it less (they still share caches and memory bandwidth)."""
    torch.manual_seed(0)
    model = RoboActCLIP(cfg).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch, cfg.n_frames, cfg.image_dim)
    t = torch.randn(batch, cfg.text_dim)
    labels = {f: torch.randint(0, max(1, cfg.num_classes(f)), (batch,)) for f in ("subject", "action", "object")}

    def one(i: int) -> None:
        out = model(x, t, labels, generator=torch.Generator().manual_seed(i))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    one(0)
    t0 = time.process_time()
    for i in range(steps):
        one(i + 1)
    return (time.process_time() - t0) / steps


def ridge_probe(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor],
                alphas=(1e-2, 1e-1, 1.0, 10.0, 100.0)) -> dict:
    """Ridge from x to y, fit on train (features standardised there), strength chosen on val. Per scored split,
    R^2 = 1 - SSE / SSE of predicting the train mean: the share of what the train mean misses that x recovers
    (a split's own variance is a poor yardstick here: the test split holds only three (action, object) pairs)."""
    mu, sd, ymu = x["train"].mean(0), x["train"].std(0) + 1e-6, y["train"].mean(0)
    a = (x["train"] - mu) / sd

    def fit(alpha):
        w = torch.linalg.solve(a.T @ a + alpha * torch.eye(a.shape[1], dtype=a.dtype), a.T @ (y["train"] - ymu))
        return lambda s: ((x[s] - mu) / sd) @ w + ymu

    def r2(pred, s):
        return float(1 - ((pred - y[s]) ** 2).sum() / ((ymu - y[s]) ** 2).sum())

    best = max(alphas, key=lambda al: r2(fit(al)("val"), "val"))
    return {"alpha": best, **{f"r2_{s}": r2(fit(best)(s), s) for s in ("train", "val", "test")}}


def frame_probe(folder: str, feats: dict[str, torch.Tensor]) -> dict:
    enc = roboact.load(folder)
    fused = {s: enc.encode_video(f)["fused"].double() for s, f in feats.items()}
    target = {s: F.layer_norm(f[:, -1].float(), f.shape[-1:]).double() for s, f in feats.items()}
    return ridge_probe(fused, target)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--backbone", default="lite0-minilm")
    ap.add_argument("--run", action="append", required=True, help="NAME=DIR[,DIR...] (one training per seed)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    runs = {name: folders.split(",") for name, folders in (r.split("=", 1) for r in args.run)}

    rows = load_rows(args.manifest)
    cache = FeatureCache(args.cache, args.backbone)
    feats = {s: cache.get_many([r.clip_id for r in rows if r.split == s and r.clip_id in cache]).float()
             for s in ("train", "val", "test")}

    cfgs = {name: load_config(resolve_checkpoint(folders[0])) for name, folders in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, cfg in cfgs.items():
            times[name].append(step_time(cfg, args.batch, args.steps))

    result = {"batch": args.batch, "steps_per_repeat": args.steps, "repeats": args.repeats, "threads": 1,
              "clips": {s: len(f) for s, f in feats.items()}, "rows": {}}
    for name, folders in runs.items():
        probes = [frame_probe(f, feats) for f in folders]
        result["rows"][name] = {
            "config": {k: getattr(cfgs[name], k) for k in ("lambda_tcn", "lambda_frame", "frame_targets")},
            "step_s_median": statistics.median(times[name]), "step_s_repeats": times[name],
            **{f"last_frame_r2_{s}_mean": statistics.mean(p[f"r2_{s}"] for p in probes) for s in ("val", "test")},
            "per_seed": dict(zip(folders, probes))}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({n: {k: v for k, v in r.items() if k.startswith(("step_s_median", "last_frame"))}
                      for n, r in result["rows"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

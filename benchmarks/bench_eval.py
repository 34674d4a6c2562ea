"""Wall time of `roboact eval` per 1,000 scored clips, on synthetic cached features of the real lite0 width.

    .venv/bin/python benchmarks/bench_eval.py [--clips 1000 4000] [--threads 1 2] [--rows 4]

Builds a manifest + feature cache of random float16 frame features [n=16, d=1280] under the real
`lite0-minilm` identity (the MiniLM text tower really runs, on the captions and the zero-shot grid),
saves `--rows` randomly initialised default-size heads (full, no temporal, no disentanglement, meanpool
baseline), and times `evaluate()` once per clip count. Timing does not depend on the weights being
trained; the metric values of random heads are meaningless and not reported. Prints one JSON line per
clip count: total seconds, seconds per 1,000 clips, and the split into data loading + text encoding,
per-row model work (encoding, retrieval, zero-shot, probes) and plots.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from roboact.data import features as fc
from roboact.data.manifest import ClipRecord, write_manifest

SUBJECTS = ["Robot", "Human"]
ACTIONS = ["open", "close", "push", "pull", "pick", "place", "turn on", "turn off", "slide", "lift", "wipe", "pour"]
OBJECTS = ["drawer", "door", "window", "plate", "bowl", "cup", "knob", "faucet", "button", "lid"]


def make_corpus(root: Path, backbone, n_eval: int, n_train: int, n: int = 16, seed: int = 0) -> tuple[Path, Path]:
    """Rows cycle through every (subject, action, object); features are random (timing only)."""
    g = torch.Generator().manual_seed(seed)
    combos = list(itertools.product(SUBJECTS, ACTIONS, OBJECTS))
    rows = [ClipRecord(clip_id=f"c{i:06d}", path=f"v/{i}.mp4", subject=s, action=a, object=o,
                       split="test" if i < n_eval else "train")
            for i, (s, a, o) in zip(range(n_eval + n_train), itertools.cycle(combos))]
    manifest = root / "manifest.jsonl"
    write_manifest(manifest, rows)
    folder = fc.cache_dir(root / "cache", backbone.name)
    folder.mkdir(parents=True)
    identity = fc.cache_identity(backbone, n)
    fc.claim_identity(folder, identity)
    for k in range(0, len(rows), 2000):
        part = rows[k:k + 2000]
        feats = torch.randn(len(part), n, backbone.image_dim, generator=g)          # (R, n, d)
        fc.write_shard(folder, f"r000-{k // 2000:05d}", [r.clip_id for r in part], feats,
                       torch.arange(n).repeat(len(part), 1), torch.full((len(part),), n), [],
                       fc.identity_hash(identity))
    fc.build_index(folder, str(manifest))
    return manifest, root / "cache"


def save_models(root: Path, backbone, n_rows: int) -> list[tuple[str, str]]:
    from roboact.models import RoboActCLIP, RoboActConfig
    from roboact.models.encoder import save_heads

    from roboact.models.variants import VARIANTS

    out = []
    for v in list(VARIANTS.values())[:n_rows]:
        torch.manual_seed(0)
        cfg = RoboActConfig(backbone=backbone.name, image_dim=backbone.image_dim, text_dim=backbone.text_dim,
                            subjects=SUBJECTS, actions=sorted(ACTIONS), objects=sorted(OBJECTS), **v.overrides)
        save_heads(RoboActCLIP(cfg).eval(), root / v.id)
        out.append((v.row_name, str(root / v.id)))
    return out


def bench(n_clips: int, n_rows: int, threads: int, backbone, work: Path) -> dict:
    from roboact.eval.runner import EvalConfig, evaluate

    root = work / f"n{n_clips}-t{threads}"
    manifest, cache = make_corpus(root, backbone, n_clips, n_clips)
    models = save_models(root, backbone, n_rows)
    cfg = EvalConfig(manifest=str(manifest), cache=str(cache), out=str(root / "eval"), models=models,
                     progress=False, threads=threads)
    t0 = time.perf_counter()
    rep = evaluate(cfg)
    total = time.perf_counter() - t0
    per_row = [r["details"]["seconds"] for r in rep["rows"]]
    t1 = time.perf_counter()
    evaluate(cfg)  # again, with the text features cached on disk
    warm = time.perf_counter() - t1
    return {"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "clips": n_clips,
            "train_clips_for_probes": n_clips, "rows": n_rows, "total_s": round(total, 2),
            "per_1000_clips_s": round(1000 * total / n_clips, 2), "rerun_total_s": round(warm, 2),
            "rows_s": [round(x, 2) for x in per_row],
            "data_text_plots_s": round(total - sum(per_row), 2), "grid_captions": rep["counts"]["grid_captions"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, nargs="+", default=[1000, 4000], help="scored clips (test split)")
    ap.add_argument("--rows", type=int, default=4, choices=range(1, 5))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch + BLAS threads (EvalConfig.threads)")
    args = ap.parse_args()
    from roboact.backbones import load_backbone

    backbone = load_backbone("lite0-minilm")
    work = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    try:
        for threads, n in itertools.product(args.threads, args.clips):
            print(json.dumps({"threads": threads, **bench(n, args.rows, threads, backbone, work)}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What a runtime does to what the encoder understands: the same checkpoints scored on features extracted with
each image-tower runtime (eager fp32 = the reference, openvino fp32, the lossy openvino-bf16).

Takes the output of `roboact demo` (its corpus and its four trained models), extracts the corpus once per
runtime into its own cache, then for every model and runtime: `roboact eval`'s standard metrics on the val and
test splits, and how far the embeddings move from eager's (cosine of the fused embedding, and whether each
clip's top-1 caption is the same as with eager features).

    .venv/bin/roboact demo --out runs/demo
    .venv/bin/python benchmarks/runtime_retrieval.py --demo runs/demo --out runs/runtime_retrieval \\
        --json docs/results/runtime_retrieval.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

METRICS = ("v2t_r1", "t2v_r1", "zs_action", "zs_object")


def extract_all(manifest: Path, out: Path, runtimes: list[str]) -> dict[str, Path]:
    from roboact.data.extract import ExtractConfig, extract

    roots = {}
    for rt in runtimes:
        root = out / f"cache-{rt}"
        res = extract(ExtractConfig(manifest=str(manifest), out_dir=str(root), runtime=rt, num_workers=1,
                                    progress=False))
        print(f"{rt}: {res.kept} clips encoded now ({res.skipped} cached before), {res.frames_per_s:.1f} frames/s")
        roots[rt] = root
    return roots


def eval_metrics(manifest: Path, cache: Path, models: dict[str, str], split: str, out: Path) -> dict:
    from roboact.eval.runner import EvalConfig, evaluate

    report = evaluate(EvalConfig(manifest=str(manifest), cache=str(cache), out=str(out), split=split,
                                 models=list(models.items()), suites=["standard"], plots=False, progress=False,
                                 threads=1))
    return {r["name"]: {m: r["seeds"][0]["metrics"].get(m) for m in METRICS} for r in report["rows"]
            if r["status"] == "ok"}


@torch.no_grad()
def agreement(models: dict[str, str], caches: dict[str, Path], captions: list[str]) -> dict:
    """Per model and runtime: mean / min cosine of fused clip embeddings to eager's, and top-1 caption
    agreement with eager, over every clip of the corpus."""
    import roboact
    from roboact.data.features import FeatureCache

    out = {}
    for name, folder in models.items():
        enc = roboact.load(folder, runtime="eager")
        text = enc.encode_text(captions, normalize=True)["fused"]
        ref_cache = FeatureCache(caches["eager"], "lite0-minilm")
        ids = ref_cache.clip_ids
        emb = {}
        for rt, root in caches.items():
            feats = FeatureCache(root, "lite0-minilm").get_many(ids)                 # (B, n, d)
            emb[rt] = enc.encode_video(feats, normalize=True)["fused"]
        out[name] = {}
        for rt, e in emb.items():
            cos = (e * emb["eager"]).sum(-1)
            same = ((e @ text.T).argmax(-1) == (emb["eager"] @ text.T).argmax(-1)).float().mean().item()
            out[name][rt] = {"cos_mean": round(cos.mean().item(), 6), "cos_min": round(cos.min().item(), 6),
                             "top1_caption_same_as_eager": round(same, 4), "clips": len(ids)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default="runs/demo", help="a `roboact demo --out` folder")
    p.add_argument("--out", default="runs/runtime_retrieval")
    p.add_argument("--runtimes", nargs="+", default=["eager", "openvino", "openvino-bf16"])
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    demo, out = Path(args.demo), Path(args.out)
    manifest = demo / "corpus" / "manifest_compositional.jsonl"
    names = {"full": "RoboAct-CLIP", "no_temporal": "ablation 1 (no temporal)",
             "no_disentangle": "ablation 2 (no disentanglement)", "frozen_baseline": "frozen backbone (mean-pool)"}
    models = {label: str(demo / "models" / v / "final") for v, label in names.items()
              if (demo / "models" / v / "final" / "config.json").is_file()}
    if "eager" not in args.runtimes or not models:
        raise SystemExit("needs the eager runtime (the reference) and a finished `roboact demo` folder")
    caches = extract_all(manifest, out, args.runtimes)
    result = {"demo": str(demo), "runtimes": args.runtimes, "metrics": {}, "agreement": {}}
    for split in ("val", "test"):
        result["metrics"][split] = {rt: eval_metrics(manifest, root, models, split, out / f"eval-{rt}-{split}")
                                    for rt, root in caches.items()}
    captions = sorted({json.loads(line)["caption"] for line in manifest.read_text().splitlines() if line.strip()})
    result["agreement"] = agreement(models, caches, captions)
    for split, by_rt in result["metrics"].items():
        print(f"\n{split}: " + " | ".join(METRICS))
        for model in models:
            print(f"  {model}: " + "; ".join(f"{rt} " + " ".join(f"{by_rt[rt][model][m]:.3f}"
                                                                   if by_rt[rt][model][m] is not None else "-"
                                                                   for m in METRICS) for rt in by_rt))
    print("\nagreement with eager (fused cosine mean/min, top-1 caption same):")
    for model, by_rt in result["agreement"].items():
        print(f"  {model}: " + "; ".join(f"{rt} {a['cos_mean']:.4f}/{a['cos_min']:.4f}, "
                                         f"{a['top1_caption_same_as_eager']:.3f}" for rt, a in by_rt.items()))
    if args.json:
        from roboact.utils.io import atomic_write_json

        result["command"] = "benchmarks/runtime_retrieval.py " + " ".join(argv or __import__("sys").argv[1:])
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

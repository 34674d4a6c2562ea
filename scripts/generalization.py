"""The generalization experiment of docs/RESULTS.md (issue 7): train the four rows (full model, ablation 1,
ablation 2, frozen mean-pool baseline) with several seeds on two splits of one corpus, then run the
`roboact eval` suites:

- compositional manifest (held-out (action, object) pairs): `val` (held-out episodes of seen pairs) for the
  standard table and time reversal, `test` (unseen pairs) for open-vocabulary composition;
- camera manifest (`roboact split --by camera`): `test` (held-out cameras, held-out episodes) for unseen
  viewpoint.

    .venv/bin/python scripts/generalization.py --corpus runs/results/corpus --cache runs/results/cache \
        --out runs/generalization --seeds 3 --steps 300 --camera corner3 [--set data.reverse_prob=0.5] \
        [--rows full,no_temporal,no_disentangle,frozen_baseline] [--workers 2]

Every model runs in its own one-thread process (`--workers` at a time); finished models are reused, so a
rerun only does what is missing. The merged report is OUT/report.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from roboact.models.variants import VARIANTS  # noqa: E402


def train_one(job: dict) -> tuple[str, float]:
    import torch

    torch.set_num_threads(1)
    from roboact.train.checkpoint import latest_checkpoint
    from roboact.train.config import load_train_config
    from roboact.train.loop import train

    t = time.perf_counter()  # _run_jobs only sends models whose final/ is missing
    cfg = load_train_config(None, job["overrides"])
    train(cfg, resume=latest_checkpoint(job["out"]) is not None)
    return job["out"], time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, help="folder with manifest.jsonl and manifest_compositional.jsonl")
    p.add_argument("--cache", required=True, help="feature cache of the corpus (roboact extract --out)")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--camera", default="corner3", help="held-out camera(s) of the viewpoint split, comma-separated")
    p.add_argument("--rows", default=",".join(VARIANTS))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="training override for every model (e.g. data.reverse_prob=0.5)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip", default="", help="comma-separated parts to skip: viewpoint, compositional")
    args = p.parse_args()

    from roboact.cli import main as roboact

    corpus, out = Path(args.corpus), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in VARIANTS]
    if bad:
        p.error(f"--rows: unknown {bad}; choose from {list(VARIANTS)}")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    manifests = {}
    if "compositional" not in skip:
        manifests["compositional"] = corpus / "manifest_compositional.jsonl"
    if "viewpoint" not in skip:
        cam = out / "manifest_camera.jsonl"
        if not cam.is_file() and roboact(["split", str(corpus / "manifest.jsonl"), "--by", "camera",
                                          "--cameras", args.camera, "--out", str(cam)]) != 0:
            return 2
        manifests["viewpoint"] = cam

    jobs = []
    for kind, manifest in manifests.items():
        for row in rows:
            for seed in range(args.seeds):
                run = out / "models" / kind / row / f"seed{seed}"
                ov = [f"data.manifest={manifest}", f"data.cache={args.cache}", f"out={run}", f"seed={seed}",
                      f"optim.steps={args.steps}", f"optim.batch_size={args.batch_size}", f"optim.lr={args.lr}",
                      f"optim.warmup_steps={min(30, args.steps // 10)}", f"checkpoint_every={max(50, args.steps // 4)}",
                      f"eval_every={max(50, args.steps // 4)}", "progress=false", "tensorboard=false",
                      f"model={json.dumps(VARIANTS[row].overrides)}", *args.overrides]
                jobs.append({"out": str(run), "overrides": ov})
    _run_jobs(jobs, args.workers)

    evals = []
    for kind, split, suites, title in (
            ("compositional", "val", "standard,reversal", "Held-out episodes of seen pairs: standard metrics and "
                                                          "time reversal"),
            ("compositional", "test", "openvocab", "Unseen (action, object) pairs: open-vocabulary composition"),
            ("viewpoint", "test", "standard,viewpoint", f"Unseen camera(s) {args.camera}: viewpoint")):
        if kind not in manifests:
            continue
        rep = out / "eval" / f"{kind}-{split}"
        models = [f"{VARIANTS[r].row_name}=" + ",".join(str(out / "models" / kind / r / f"seed{s}" / "final")
                                                  for s in range(args.seeds)) for r in rows]
        argv = ["eval", "--manifest", str(manifests[kind]), "--cache", args.cache, "--split", split,
                "--suites", suites, "--threads", "1", "--out", str(rep), "--no-progress"]
        for m in models:
            argv += ["--model", m]
        print(f"eval {kind}/{split} ({suites})", flush=True)
        if roboact(argv) != 0:
            return 2
        evals.append((title, rep))
    _merge(out, evals, args)
    print(f"report: {out / 'report.md'}")
    return 0


def _run_jobs(jobs: list[dict], workers: int) -> None:
    from tqdm import tqdm

    todo = [j for j in jobs if not (Path(j["out"]) / "final" / "model.safetensors").is_file()]
    print(f"{len(jobs)} models, {len(jobs) - len(todo)} already trained", flush=True)
    if not todo:
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool, \
            tqdm(total=len(todo), unit="model", dynamic_ncols=True) as bar:
        for fut in as_completed([pool.submit(train_one, j) for j in todo]):
            run, seconds = fut.result()
            bar.update(1)
            bar.set_postfix_str(f"{Path(run).relative_to(Path(run).parents[2])} {seconds:.0f} s")


def _merge(out: Path, evals: list, args) -> None:
    from roboact.eval.report import embed_report
    from roboact.utils.io import atomic_write_text

    cmd = "python scripts/generalization.py " + " ".join(sys.argv[1:])
    lines = ["# Generalization suites", "", f"Command: `{cmd}`", "",
             f"Rows: {', '.join(VARIANTS[r].row_name for r in args.rows.split(','))}; {args.seeds} training seeds each "
             "(mean ± half-width of the 95% Student-t interval over seeds).", ""]
    for title, rep in evals:
        md = (rep / "report.md").read_text(encoding="utf-8")
        lines += [f"## {title}", "", embed_report(md, rep.relative_to(out).as_posix() + "/"), ""]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

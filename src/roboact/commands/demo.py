"""`roboact demo`: the whole method, small, end to end, on a 2-core CPU in under 15 minutes.

simulate a Meta-World corpus -> extract frozen features -> train the full model, ablation 1, ablation 2
and the frozen-backbone baseline on the compositional manifest (held-out (action, object) pairs never
trained on) -> evaluate on held-out episodes of seen pairs and on the unseen pairs -> one report.
Every stage is resumable and skipped when its output exists, so a rerun (or a run after a crash) only
does what is missing.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from roboact.models.variants import VARIANTS
from roboact.utils.config import check

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    tasks: list[str] = field(default_factory=list)     # empty: every Meta-World task a corpus may hold
    episodes_per_task: int = 8
    cameras: list[str] = field(default_factory=lambda: ["corner"])
    heldout_pairs: int = 3
    workers: int = 2
    seed: int = 0
    steps: int = 400
    batch_size: int = 32
    lr: float = 1e-3
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    backbone: str = "lite0-minilm"
    backbone_path: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        check(self.episodes_per_task >= 3, "episodes_per_task", "needs >= 3 episodes per task for train/val/test")
        check(self.steps >= 1, "steps", "must be >= 1")
        bad = [v for v in self.variants if v not in VARIANTS]
        check(not bad, "variants", f"unknown {bad}; choose from {list(VARIANTS)}")


def register(sub) -> None:
    p = sub.add_parser("demo", help="simulate, extract, train (full + ablations + baseline), evaluate, report")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--episodes", type=int, default=8, help="episodes per task")
    p.add_argument("--tasks", default="",
                   help="comma-separated Meta-World tasks (default: all a pretraining corpus may hold)")
    p.add_argument("--cameras", default="corner")
    p.add_argument("--steps", type=int, default=400, help="training steps per model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = DemoConfig(out=args.out, episodes_per_task=args.episodes, cameras=_csv(args.cameras),
                     tasks=_csv(args.tasks), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     workers=args.workers, seed=args.seed,
                     variants=_csv(args.variants), progress=not args.no_progress)
    report = run_demo(cfg)
    print(f"\nreport: {report}")
    return 0


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


# --- stages -------------------------------------------------------------------------------------------
def run_demo(cfg: DemoConfig) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    corpus = simulate_stage(cfg, out)
    timings["simulate"] = time.perf_counter() - t
    t = time.perf_counter()
    extract_stage(cfg, out)
    timings["extract"] = time.perf_counter() - t
    t = time.perf_counter()
    ckpts = train_all(cfg, out, timings)
    timings["train (all variants, wall)"] = time.perf_counter() - t
    t = time.perf_counter()
    reports = eval_stage(cfg, out, ckpts)
    timings["evaluate"] = time.perf_counter() - t
    return write_demo_report(cfg, out, corpus, reports, timings)


def simulate_stage(cfg: DemoConfig, out: Path) -> dict:
    from roboact.sim.corpus import CorpusConfig, build_corpus

    print(f"[1/4] simulate: {cfg.episodes_per_task} episodes x {len(cfg.tasks) or 'all'} tasks x {cfg.cameras}")
    summary = build_corpus(CorpusConfig(out_dir=str(out / "corpus"), tasks=cfg.tasks,
                                        episodes_per_task=cfg.episodes_per_task, cameras=cfg.cameras,
                                        workers=cfg.workers, seed=cfg.seed, heldout_pairs=cfg.heldout_pairs,
                                        progress=cfg.progress))
    if not (out / "corpus" / "manifest_compositional.jsonl").is_file():
        raise RuntimeError(f"simulation made no compositional manifest: {summary.get('compositional_error')}")
    return summary


def extract_stage(cfg: DemoConfig, out: Path) -> None:
    from roboact.data.extract import ExtractConfig, extract

    print(f"[2/4] extract frozen {cfg.backbone} features (16 frames per clip)")
    res = extract(ExtractConfig(manifest=str(out / "corpus" / "manifest.jsonl"), out_dir=str(out / "cache"),
                                backbone=cfg.backbone, backbone_path=cfg.backbone_path,
                                num_workers=min(2, cfg.workers), progress=cfg.progress))
    if not res.complete:
        raise RuntimeError("feature extraction did not finish every clip; rerun `roboact demo` to resume")


def train_all(cfg: DemoConfig, out: Path, timings: dict[str, float]) -> dict[str, Path]:
    """Train the variants in `workers` processes of one torch thread each.

    Why not one process with every core: these models are small, and torch's intra-op threads spin-wait
    for each other; with one core taken by anything else, a 2-thread training step ran 28x slower here
    (0.1 s -> 2.8 s per step). One thread per process never waits on a busy core."""
    todo = [v for v in cfg.variants if not (out / "models" / v / "final" / "model.safetensors").is_file()]
    for v in cfg.variants:
        if v not in todo:
            print(f"[3/4] train {v}: done already ({out / 'models' / v / 'final'})")
    if todo:
        print(f"[3/4] train {', '.join(todo)} ({cfg.steps} steps each, {min(cfg.workers, len(todo))} at a time)")
    if cfg.workers <= 1 or len(todo) <= 1:
        for v in todo:
            timings[f"train {v}"] = _train_variant(cfg, out, v, progress=cfg.progress)[1]
    else:
        from concurrent.futures import as_completed

        from tqdm import tqdm

        from roboact.utils import shutdown

        with shutdown.worker_pool(min(cfg.workers, len(todo)), _one_thread) as pool:  # workers stop with us
            futs = {shutdown.submit(pool, _train_variant, cfg, out, v, False): v for v in todo}
            with tqdm(total=len(todo), desc="train variants", unit="model", disable=not cfg.progress,
                      dynamic_ncols=True) as bar:
                for fut in as_completed(futs):
                    _, seconds = fut.result()
                    timings[f"train {futs[fut]}"] = seconds
                    bar.update(1)
                    bar.set_postfix_str(f"{futs[fut]} done in {seconds:.0f} s")
    return {v: out / "models" / v / "final" for v in cfg.variants}


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _train_variant(cfg: DemoConfig, out: Path, variant: str, progress: bool) -> tuple[Path, float]:
    t = time.perf_counter()
    final = train_stage(cfg, out, variant, progress)
    return final, time.perf_counter() - t


def train_stage(cfg: DemoConfig, out: Path, variant: str, progress: bool | None = None) -> Path:
    from roboact.train.checkpoint import latest_checkpoint
    from roboact.train.config import DataConfig, OptimConfig, TrainConfig
    from roboact.train.loop import train

    run_dir = out / "models" / variant  # train_all skips variants whose final/ exists
    tc = TrainConfig(out=str(run_dir), seed=cfg.seed, progress=cfg.progress if progress is None else progress,
                     data=DataConfig(manifest=str(out / "corpus" / "manifest_compositional.jsonl"),
                                     cache=str(out / "cache"), backbone=cfg.backbone, backbone_path=cfg.backbone_path),
                     optim=OptimConfig(lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                                       warmup_steps=min(40, cfg.steps // 10)),
                     model=dict(VARIANTS[variant].overrides), checkpoint_every=max(50, cfg.steps // 4),
                     eval_every=max(50, cfg.steps // 4), log_every=10)
    res = train(tc, resume=latest_checkpoint(run_dir) is not None)
    return Path(res.final)


def eval_stage(cfg: DemoConfig, out: Path, ckpts: dict[str, Path]) -> dict[str, dict]:
    from roboact.eval.runner import EvalConfig, evaluate

    manifest = str(out / "corpus" / "manifest_compositional.jsonl")
    models = [(VARIANTS[v].row_name, str(p)) for v, p in ckpts.items()]
    reports = {}
    for key, split, title in (("episodes", "val", "held-out episodes of seen (action, object) pairs"),
                              ("compositional", "test", "unseen (action, object) pairs")):
        print(f"[4/4] evaluate on {title}")
        reports[key] = evaluate(EvalConfig(manifest=manifest, cache=str(out / "cache"), out=str(out / "eval" / key),
                                           models=models, split=split, train_split="train", seed=cfg.seed,
                                           threads=1, progress=cfg.progress))
        reports[key]["title"] = title
    return reports


def write_demo_report(cfg: DemoConfig, out: Path, corpus: dict, reports: dict, timings: dict) -> Path:
    from roboact.eval.report import embed_report
    from roboact.utils.io import atomic_write_json, atomic_write_text

    lines = ["# roboact demo report", "",
             f"Command: `roboact demo --out {cfg.out} --episodes {cfg.episodes_per_task} --cameras "
             f"{','.join(cfg.cameras)} --steps {cfg.steps} --batch-size {cfg.batch_size} --lr {cfg.lr} "
             f"--seed {cfg.seed}`", "",
             "Corpus: Meta-World scripted experts, one atomic action per clip "
             f"({corpus.get('clips')} clips; compositional manifest splits "
             f"{json.dumps(corpus.get('compositional_splits', {}))}; held-out (action, object) pairs: "
             f"{', '.join('(' + ', '.join(p) + ')' for p in corpus.get('heldout_pairs', []))}). Every model is "
             "trained on the compositional manifest's train split (held-out pairs never appear; `val` holds "
             f"held-out episodes of seen pairs), with the frozen `{cfg.backbone}` backbone.", ""]
    for key, rep in reports.items():
        md = Path(out / "eval" / key / "report.md")
        lines += [f"## {rep['title']}", "", embed_report(md.read_text(encoding="utf-8"), f"eval/{key}/"), ""]
    timings = _merge_timings(out / "timings.json", timings)
    lines += ["## Stage times (seconds, 2-core CPU unless stated)", "", "| stage | s |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in timings.items()]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_json(out / "report.json", {"config": asdict(cfg), "corpus": corpus, "timings": timings,
                                            "reports": reports})
    return path


def _merge_timings(path: Path, new: dict[str, float]) -> dict[str, float]:
    """A stage skipped on a rerun (output reused) keeps the time measured when it ran."""
    from roboact.utils.io import atomic_write_json, read_json

    old = read_json(path) if path.is_file() else {}
    merged = {k: (old[k] if v < 1.0 and k in old else v) for k, v in new.items()}
    atomic_write_json(path, merged)
    return merged

"""The policy benchmark: rows (frozen encoders) x tasks x seeds of behaviour cloning, then Tables II and III.

    run_benchmark(BenchmarkConfig(suite="metaworld", mode="full", rows=[...]))

Order of work, each step failing loudly before the next costs anything:
1. tasks resolved (unknown task: error), demo files opened and checked (missing, truncated, too few demos,
   seeds that collide with evaluation scenes: error), optionally generated first (`make_demos`);
2. rows built: checkpoints checked against the requested backbone (error), baselines without weights
   kept as "not run: ..." rows; a RoboAct-CLIP checkpoint whose pretraining corpus holds an evaluated task,
   or cannot be read, is refused before step 1 unless `allow_seen_tasks` (policy.corpus.refuse_seen_tasks);
3. the scripted experts rolled out from the very initial states the policies will face; any task below
   `min_expert_success` stops the run with the numbers — a broken simulator install never becomes a 0% row;
4. demo features computed once into the cache; cells (row, task, seed) trained and evaluated, each written
   atomically as soon as it finishes, so a rerun skips finished cells (the key includes every setting that
   changes the result, so changed settings never reuse stale cells);
5. tables (markdown + JSON), bar chart, rollout videos.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from roboact.policy.chain import ChainSettings
from roboact.policy.encoders import EncoderSettings, EncoderUnavailable, RowSpec, build_encoder, set_threads
from roboact.policy.suites import BenchSuite, PolicyError, get_bench_suite
from roboact.policy.train import BCTrainConfig
from roboact.utils.config import check

log = logging.getLogger(__name__)


# LIBERO-Goal's multi-task episodes: the cap of the public multi-task reference points (OpenVLA's LIBERO
# evaluation, arXiv 2406.09246: 300 steps for libero_goal); "open the top drawer and put the bowl inside" is
# two atomic actions and its expert needs more than the one-task tables' 200.
MULTITASK_MAX_STEPS = {"libero_goal": 300, "metaworld": 200}


def preset(mode: str, suite: str, multitask: bool = False) -> dict:
    """Defaults of a mode. smoke: one task, 2 demos, 2 short rollouts (CI, < 2 min on 2 cores);
    full: the paper's protocol (4 tasks, 50 demos, 200-step cap) with >= 3 seeds x >= 20 rollouts.
    Multi-task: every task of the suite with an expert (LIBERO-Goal: all ten; smoke: two), LIBERO-Goal
    episodes capped at 300 steps, 60k BC steps evaluated at 30k and 60k (each evaluation is every task): one
    policy learns 14 tasks, and on held-out demos its loss is lowest at ~60k for both image rows, 6-13% lower
    than at 20k (benchmarks/multitask_bc_budget.py, docs/results/study14/bc_budget_*.json)."""
    s = get_bench_suite(suite)
    if multitask:
        from roboact.sim.suites import get_suite

        every = get_suite(suite).all_tasks() if suite == "libero_goal" else list(s.tasks)
        if mode == "smoke":  # a smoke chain: one episode, 10 steps per stage
            return dict(tasks=list(s.smoke_multitask), num_demos=2, seeds=1, rollouts=2,
                        max_steps=s.smoke_max_steps, train=BCTrainConfig(steps=60, eval_every=60), videos=1,
                        chain={"episodes": 1, "stage_budget": 10})
        if mode in ("full", "custom"):
            return dict(tasks=every, num_demos=50, seeds=3, rollouts=20, max_steps=MULTITASK_MAX_STEPS[suite],
                        train=BCTrainConfig(steps=60000, eval_every=30000), videos=1, chain={"episodes": 20})
    if mode == "smoke":
        return dict(tasks=[s.smoke_task], num_demos=2, seeds=1, rollouts=2, max_steps=s.smoke_max_steps,
                    train=BCTrainConfig(steps=60, eval_every=60), videos=1)
    if mode in ("full", "custom"):
        return dict(tasks=list(s.tasks), num_demos=50, seeds=3, rollouts=20, max_steps=200,
                    train=BCTrainConfig(steps=20000, eval_every=5000), videos=2)
    raise PolicyError(f"mode must be smoke, full or custom, got {mode!r}")


@dataclass
class BenchmarkConfig:
    suite: str = "metaworld"
    mode: Literal["smoke", "full", "custom"] = "full"   # custom: full's defaults, without its minimums
    tasks: list[str] = field(default_factory=list)
    rows: list[RowSpec] = field(default_factory=list)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    demos_dir: str = "data/demos"
    make_demos: bool = False           # generate missing demos with the scripted experts first
    num_demos: int = 50
    seeds: int = 3
    rollouts: int = 20                 # per task, per seed, per evaluation
    max_steps: int = 200
    image_size: int = 128
    train: BCTrainConfig = field(default_factory=BCTrainConfig)
    min_expert_success: float = 0.8
    allow_seen_tasks: bool = False     # run RoboAct rows pretrained on an evaluated task (or on an unknown
                                       # corpus); every table then marks them
    videos: int = 2                    # rollout videos per row and task (seed 0's final evaluation)
    # One policy per (row, condition, seed) for all tasks, told apart by the instruction (policy/multitask.py)
    multitask: bool = False
    conditions: list[str] = field(default_factory=lambda: ["roboact-text", "sentence", "onehot"])
    holdout_tasks: list[str] = field(default_factory=list)  # multi-task: evaluated, never trained on (unseen)
    # Multi-task LIBERO-Goal: the instruction chain's stages as training-only tasks, and the chain run by each
    # cell's policy under the oracle and the judge switch (policy/chain.py)
    chain: ChainSettings = field(default_factory=ChainSettings)
    workers: int = 1                   # processes running cells in parallel
    parallel: int = 1                  # envs per process rolled out in lockstep (batched encoder; runner.py)
    threads: int = 1                   # torch threads per process (0: torch's default). One is fastest on a
                                       # shared CPU: oversubscribed OpenMP threads make lite0 10x slower
    out: str = "runs/policy"
    cache_dir: str = "runs/policy/cache"
    command: str = ""
    progress: bool = True

    def __post_init__(self) -> None:
        suite = get_bench_suite(self.suite)
        check(self.mode in ("smoke", "full", "custom"), "mode", f"must be smoke, full or custom, got {self.mode!r}")
        check(bool(self.tasks), "tasks", "at least one task")
        check(self.num_demos >= 1, "num_demos", f"must be >= 1, got {self.num_demos}")
        check(self.seeds >= 1, "seeds", f"must be >= 1, got {self.seeds}")
        check(self.rollouts >= 1, "rollouts", f"must be >= 1, got {self.rollouts}")
        check(suite.max_init_states is None or self.rollouts <= suite.max_init_states, "rollouts",
              f"{self.suite} has {suite.max_init_states} fixed initial states per task")
        check(1 <= self.max_steps <= 1000, "max_steps", f"must be in [1, 1000], got {self.max_steps}")
        check(0.0 <= self.min_expert_success <= 1.0, "min_expert_success", "must be in [0, 1]")
        check(self.videos >= 0 and self.workers >= 1 and self.threads >= 0, "videos/workers/threads",
              "videos >= 0, workers >= 1, threads >= 0")
        check(1 <= self.parallel <= 64, "parallel", f"must be in [1, 64], got {self.parallel}")
        from roboact.policy.conditioning import CONDITIONS

        bad = [c for c in self.conditions if c not in CONDITIONS]
        check(not bad and bool(self.conditions) and len(set(self.conditions)) == len(self.conditions), "conditions",
              f"give one or more distinct conditions of {', '.join(CONDITIONS)}, got {self.conditions}")
        check(self.multitask or not self.holdout_tasks, "holdout_tasks", "only with multitask (--multitask)")
        both = sorted(set(self.holdout_tasks) & set(self.tasks))
        check(not both, "holdout_tasks", f"{both} are also training tasks; a held-out task is never trained on")
        check(not self.multitask or len(self.tasks) >= 2 or bool(self.holdout_tasks) or self.chain.enabled, "tasks",
              "a multi-task policy needs at least two tasks (or a held-out one, or the chain's stages)")
        check(not self.chain.enabled or (self.multitask and self.suite == "libero_goal"), "chain.enabled",
              "the instruction chain runs in LIBERO-Goal's scene with the multi-task policy (--suite libero_goal "
              "--multitask)")
        if self.mode == "full":
            check(self.seeds >= 3, "seeds", f"full mode needs >= 3 seeds, got {self.seeds} (use --mode custom)")
            check(self.rollouts >= 20, "rollouts", f"full mode needs >= 20 rollouts, got {self.rollouts} "
                                                   "(use --mode custom)")
        names = [r.name for r in self.rows]
        dup = sorted({n for n in names if names.count(n) > 1} | {r.slug for r in self.rows
                                                                 if [x.slug for x in self.rows].count(r.slug) > 1})
        check(not dup, "rows", f"row names must be distinct (after slugging): {dup}")


# --- step 1: tasks and demos -----------------------------------------------------------------------------
def ensure_demos(cfg: BenchmarkConfig, suite: BenchSuite, tasks: list[str]) -> None:
    """Generate demos for tasks whose file is missing or short (the scripted experts; resumable)."""
    from roboact.policy.data import demo_path
    from roboact.sim.demo_gen import DemosConfig, generate_demos
    from roboact.sim.demos import DemoFile

    def short(t: str) -> bool:
        p = demo_path(cfg.demos_dir, suite.name, t)
        return not p.is_file() or len(DemoFile(p)) < cfg.num_demos

    todo = [t for t in tasks if short(t)]
    if todo:
        log.info("generating %d demos for %s", cfg.num_demos, ", ".join(todo))
        res = generate_demos(DemosConfig(suite=suite.name, tasks=todo, num_demos=cfg.num_demos,
                                         output_dir=cfg.demos_dir, workers=min(cfg.workers, 4),
                                         image_size=cfg.image_size, cameras=[suite.camera]))
        bad = [s.task for s in res if not s.complete]
        if bad:
            raise PolicyError(f"the scripted experts could not make {cfg.num_demos} demos for {bad}; see "
                              f"attempts.jsonl under {cfg.demos_dir}/{suite.name}/")


# --- step 2: rows ---------------------------------------------------------------------------------------
@dataclass
class Row:
    spec: RowSpec
    role: str
    status: str
    pretraining: dict
    encoder: object | None = None


def prepare_rows(cfg: BenchmarkConfig, tasks: list[str]) -> list[Row]:
    from roboact.models.variants import policy_role

    rows = []
    for spec in cfg.rows:
        model_cfg = None
        if spec.kind == "roboact":
            spec, model_cfg = _resolve_checkpoints(spec, cfg)
        try:
            enc, status = build_encoder(spec, cfg.encoder), "ok"
        except EncoderUnavailable as e:
            enc, status = None, e.status
        info = _pretraining(spec, tasks, cfg.encoder.backbone)
        rows.append(Row(spec, policy_role(spec.kind, model_cfg), status, info, enc))
        log.info("row %-40s %s", spec.name, status)
    if not any(r.status == "ok" for r in rows):
        raise PolicyError("no row can run: give at least one encoder (the frozen backbone row or --model)")
    return rows


def _resolve_checkpoints(spec: RowSpec, cfg: BenchmarkConfig):
    """The row with its checkpoint folders resolved (a run folder's final/), and seed 0's config. A row with
    one checkpoint per pretraining seed needs one per policy seed, all of one variant."""
    from roboact.models.variants import policy_role
    from roboact.policy.encoders import check_checkpoint

    if spec.seed_paths and len(spec.seed_paths) != cfg.seeds:
        raise PolicyError(f"row {spec.name!r}: {len(spec.seed_paths)} checkpoints (one per pretraining seed) but "
                          f"{cfg.seeds} policy seeds; pretraining seed i trains policy seed i, so give as many")
    checked = [check_checkpoint(p, cfg.encoder) for p in (spec.seed_paths or (spec.path,))]
    roles = sorted({policy_role("roboact", c) for _, c in checked})
    if len(roles) > 1:
        raise PolicyError(f"row {spec.name!r}: its checkpoints are different variants ({'; '.join(roles)}); "
                          "one row holds the seeds of one model")
    folders = tuple(str(f) for f, _ in checked)
    return dataclasses.replace(spec, path=folders[0], seed_paths=folders if spec.seed_paths else ()), checked[0][1]


def _pretraining(spec: RowSpec, tasks: list[str], backbone: str) -> dict:
    """What the row's encoder was pretrained on; for a multi-seed row, the first seed's corpus with the
    evaluation tasks any seed saw (so a leak in one seed is never hidden)."""
    from roboact.policy.corpus import pretraining_info

    infos = [pretraining_info(spec.kind, p, tasks, backbone) for p in (spec.seed_paths or (spec.path,))]
    info = dict(infos[0])
    if len(infos) > 1:
        seen = [i.get("eval_tasks_seen") for i in infos]
        info["eval_tasks_seen"] = None if any(s is None for s in seen) else sorted(set().union(*seen))
        info["checkpoints"] = list(spec.seed_paths)
    return info


def check_seen_tasks(cfg: BenchmarkConfig, tasks: list[str]) -> None:
    """Refuse, before any demo or encoder costs anything, a RoboAct-CLIP row pretrained on an evaluated task
    or on a corpus that cannot be read, unless `allow_seen_tasks`."""
    from roboact.policy.corpus import refuse_seen_tasks

    if cfg.allow_seen_tasks:
        return
    for spec in (s for s in cfg.rows if s.kind == "roboact"):
        spec, _ = _resolve_checkpoints(spec, cfg)
        refuse_seen_tasks(spec.name, list(spec.seed_paths or (spec.path,)),
                          _pretraining(spec, tasks, cfg.encoder.backbone))


# --- step 3: the experts ----------------------------------------------------------------------------------
_RUNNERS: dict[tuple, object] = {}


def runner_for(suite: str, task: str, rollouts: int, max_steps: int, image_size: int, parallel: int = 1):
    """One runner (its envs) per task per process, reused by the expert check and every cell."""
    from roboact.policy.runner import EnvRunner, RunnerConfig

    key = (suite, task, rollouts, max_steps, image_size)
    parallel = max(1, min(parallel, rollouts))
    if key not in _RUNNERS:
        _RUNNERS[key] = EnvRunner(RunnerConfig(suite, task, rollouts, max_steps, image_size, parallel))
    _RUNNERS[key].cfg.parallel = parallel
    return _RUNNERS[key]


def drop_runner(suite: str, task: str, rollouts: int, max_steps: int, image_size: int) -> None:
    """Close one task's envs (a multi-task cell evaluates ten tasks; LIBERO envs are heavy to keep)."""
    r = _RUNNERS.pop((suite, task, rollouts, max_steps, image_size), None)
    if r is not None:
        r.close()


def close_runners() -> None:
    for r in _RUNNERS.values():
        r.close()
    _RUNNERS.clear()


def expert_check(cfg: BenchmarkConfig, tasks: list[str], out: Path) -> dict:
    """Roll the scripted experts out from the benchmark's initial states; error if any task is too low.
    A passing result is kept in expert_check.json and reused by a rerun with the same settings; the file is
    written after every task, so a run stopped mid-check (ten LIBERO tasks take ~30 min) keeps the tasks done."""
    from roboact.policy.runner import ExpertAgent
    from roboact.utils.io import atomic_write_json, read_json

    path = out / "expert_check.json"
    old = read_json(path).get("tasks", {}) if path.is_file() else {}
    results = {}
    for t in tasks:
        key = [cfg.suite, t, cfg.rollouts, cfg.max_steps, cfg.image_size]
        if old.get(t, {}).get("key") == key and old[t]["success_rate"] >= cfg.min_expert_success:
            results[t] = old[t]
            continue
        runner = runner_for(cfg.suite, t, cfg.rollouts, cfg.max_steps, cfg.image_size)
        res = runner.run(ExpertAgent(cfg.suite, t), record=min(cfg.videos, 1), video_dir=out / "videos" / "expert" / t)
        results[t] = {"key": key, **{k: res[k] for k in ("success_rate", "successes", "episodes", "videos",
                                                        "env_ms_per_step")},
                      "failed": [e["index"] for e in res["per_episode"] if not e["success"]]}
        log.info("expert %s: %d/%d", t, res["successes"], res["episodes"])
        atomic_write_json(path, {"min_expert_success": cfg.min_expert_success, "tasks": {**old, **results}})
    atomic_write_json(path, {"min_expert_success": cfg.min_expert_success, "tasks": results})
    low = {t: r for t, r in results.items() if r["success_rate"] < cfg.min_expert_success}
    if low:
        detail = "; ".join(f"{t}: {r['successes']}/{r['episodes']} (failed rollouts {r['failed'][:10]})"
                           for t, r in low.items())
        raise PolicyError(f"scripted experts succeed below {cfg.min_expert_success:.0%} on the evaluation initial "
                          f"states ({detail}) within {cfg.max_steps} steps: the simulator install is broken or "
                          f"the cap is too short; no table is written (details: {path})")
    return results


# --- step 4: cells ------------------------------------------------------------------------------------------
@dataclass
class CellJob:
    """One (row, task, seed): plain data, so a worker process can run it."""

    spec: RowSpec
    encoder: EncoderSettings
    suite: str
    task: str
    seed: int
    source: object                     # data.DemoSource
    cache_dir: str
    train: BCTrainConfig
    rollouts: int
    max_steps: int
    image_size: int
    folder: str                        # where result.json and the policy go
    record: int                        # videos to record at the final evaluation
    video_dir: str
    parallel: int = 1                  # lockstep envs; not in the cell key (changes only float rounding)


def cell_key(identity: dict, job: CellJob) -> str:
    """Hash of everything that changes a cell's result. The attention-pooling settings change only token rows,
    so only theirs carry them (every other cell keeps the key it had before token inputs existed)."""
    return settings_key({"encoder": identity, "suite": job.suite, "task": job.task, "seed": job.seed,
                         "demo": job.source.sha256, "demos": job.source.keys, "rollouts": job.rollouts,
                         "max_steps": job.max_steps, "image_size": job.image_size}, identity, job.train)


def settings_key(blob: dict, identity: dict, train: BCTrainConfig) -> str:
    """10 hex digits of sha256 over `blob` + the BC settings + the package version; the pooling settings
    count only for token rows. One- and multi-task cells share it, so both keep the same rules."""
    from roboact import __version__

    train_d = asdict(train)
    pool = train_d.pop("pool")
    blob = {**blob, "train": train_d, "v": __version__}
    if identity.get("output") == "tokens":
        blob["pool"] = pool
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:10]


_ENCODERS: dict[str, object] = {}


def _encoder(spec: RowSpec, settings: EncoderSettings):
    key = json.dumps([asdict(spec), asdict(settings)], sort_keys=True)
    if key not in _ENCODERS:
        _ENCODERS[key] = build_encoder(spec, settings)
    return _ENCODERS[key]


def run_cell(job: CellJob) -> dict:
    """Train and evaluate one policy; write its weights, then result.json (which marks the cell done)."""
    from roboact.policy.data import DemoFeatureCache, load_demo_set
    from roboact.policy.train import train_bc
    from roboact.utils.io import atomic_write_json

    suite = get_bench_suite(job.suite)
    enc = _encoder(job.spec, job.encoder)
    data = load_demo_set(enc, job.source, suite, DemoFeatureCache(job.cache_dir))
    runner = runner_for(job.suite, job.task, job.rollouts, job.max_steps, job.image_size, job.parallel)
    train_cfg = dataclasses.replace(job.train, seed=job.seed)
    res = train_bc(data, enc, runner, train_cfg, record=job.record, video_dir=job.video_dir)
    folder = Path(job.folder)
    res.policy.save_pretrained(folder, extra={"row": job.spec.name, "task": job.task, "seed": job.seed})
    fe = res.final_eval
    out = {"row": job.spec.name, "task": job.task, "seed": job.seed, "best": res.best, "best_step": res.best_step,
           "final": res.final, "curve": res.curve, "demo_steps": len(data), "train_seconds": res.train_seconds,
           "eval_seconds": res.eval_seconds, "agent_ms_per_step": fe["agent_ms_per_step"],
           "env_ms_per_step": fe["env_ms_per_step"], "videos": fe["videos"],
           "final_episodes": fe["per_episode"]}
    atomic_write_json(folder / "result.json", out)
    return out


def run_job(job) -> dict:
    """A one-task cell or a multi-task one (policy/multitask.py); module level, so a worker can run it."""
    from roboact.policy.multitask import MultiTaskJob, run_multitask_cell

    return run_multitask_cell(job) if isinstance(job, MultiTaskJob) else run_cell(job)


def _job_summary(job, r: dict) -> str:
    if "tasks" in r:  # multi-task: mean final success over its tasks
        mean = sum(c["final"] for c in r["tasks"].values()) / max(len(r["tasks"]), 1)
        return f"{job.spec.slug[:16]} {job.condition} s{job.seed}: final {mean:.2f} (mean of {len(r['tasks'])} tasks)"
    return f"{job.spec.slug[:16]} {job.task[:16]} s{job.seed}: best {r['best']:.2f}"


def _worker_init(threads: int) -> None:
    set_threads(threads)


def run_cells(cfg: BenchmarkConfig, jobs: list[CellJob]) -> None:
    """Run jobs in-process (workers=1) or in a spawn pool; a failing cell stops the run with its error
    (finished cells are kept on disk). SIGTERM/SIGINT stop the workers too (roboact.utils.shutdown)."""
    from tqdm import tqdm

    from roboact.utils import shutdown

    if not jobs:
        return
    shutdown.note(f"0 of the {len(jobs)} cells to run")
    bar = tqdm(total=len(jobs), unit="cell", disable=not cfg.progress, dynamic_ncols=True)
    try:
        if cfg.workers == 1:
            for job in jobs:
                r = run_job(job)
                shutdown.note(f"{bar.n + 1} of the {len(jobs)} cells to run")
                bar.update(1)
                bar.set_postfix_str(_job_summary(job, r))
            return
        from concurrent.futures import as_completed

        threads = cfg.threads or max(1, (os.cpu_count() or 1) // cfg.workers)  # 0: share the cores
        with shutdown.worker_pool(cfg.workers, _worker_init, (threads,)) as pool:
            for fut in as_completed([shutdown.submit(pool, run_job, j) for j in jobs]):
                fut.result()  # a failed cell raises here; the others' finished results are on disk
                shutdown.note(f"{bar.n + 1} of the {len(jobs)} cells to run")
                bar.update(1)
    finally:
        bar.close()


# --- the whole run --------------------------------------------------------------------------------------------
def run_benchmark(cfg: BenchmarkConfig) -> dict:
    """The whole benchmark (see the module docstring); returns the report that report.json holds."""
    import torch

    threads = torch.get_num_threads()
    set_threads(cfg.threads)
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(threads)  # a library call leaves the process as it found it


def _require_sim() -> None:
    import importlib.util

    missing = [m for m in ("h5py", "mujoco") if importlib.util.find_spec(m) is None]
    if missing:
        raise PolicyError(f"roboact policy needs the simulators ({', '.join(missing)} not installed); "
                          "pip install 'roboact[sim]'")


def _run(cfg: BenchmarkConfig) -> dict:
    from roboact.policy.data import DemoFeatureCache, encode_demos, open_demos
    from roboact.utils.io import atomic_write_json

    t0 = time.perf_counter()
    _require_sim()
    suite = get_bench_suite(cfg.suite)
    tasks = [suite.canonical(t) for t in cfg.tasks]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", asdict(cfg))
    if cfg.multitask:
        from roboact.policy.multitask import run_multitask_benchmark

        return run_multitask_benchmark(cfg, suite, tasks, out, t0)
    check_seen_tasks(cfg, tasks)
    if cfg.make_demos:
        ensure_demos(cfg, suite, tasks)
    sources = {t: open_demos(suite, t, cfg.demos_dir, cfg.num_demos, cfg.rollouts) for t in tasks}
    rows = prepare_rows(cfg, tasks)
    try:
        expert = expert_check(cfg, tasks, out)
        cache = DemoFeatureCache(cfg.cache_dir)
        jobs, folders = [], {}
        for row in (r for r in rows if r.status == "ok"):
            for t in tasks:
                encode_demos(row.encoder, sources[t], suite, cache)  # once per (row, task), before any cell
                _ENCODERS[json.dumps([asdict(row.spec), asdict(cfg.encoder)], sort_keys=True)] = row.encoder
                for seed in range(cfg.seeds):
                    job = _job(cfg, row, t, seed, sources[t], out)
                    folders[(row.spec.name, t, seed)] = Path(job.folder)
                    if not (Path(job.folder) / "result.json").is_file():
                        jobs.append(job)
        log.info("%d cells to run (%d already done)", len(jobs), len(folders) - len(jobs))
        run_cells(cfg, jobs)
    finally:
        close_runners()
        _ENCODERS.clear()
    from roboact.utils import shutdown

    with shutdown.deferred():  # the tables are written as one set: a stop waits for the last of them
        return write_outputs(cfg, tasks, expert, rows, folders, out, time.perf_counter() - t0)


def _job(cfg: BenchmarkConfig, row: Row, task: str, seed: int, source, out: Path) -> CellJob:
    spec = row.spec.for_seed(seed)
    enc = row.encoder if spec is row.spec else _encoder(spec, cfg.encoder)
    job = CellJob(spec, cfg.encoder, cfg.suite, task, seed, source, cfg.cache_dir,
                  dataclasses.replace(cfg.train, seed=seed), cfg.rollouts, cfg.max_steps, cfg.image_size, "",
                  cfg.videos if seed == 0 else 0, str(out / "videos" / row.spec.slug / task), cfg.parallel)
    job.folder = str(out / "cells" / row.spec.slug / task / f"seed{seed}-{cell_key(enc.identity(), job)}")
    return job


def write_outputs(cfg: BenchmarkConfig, tasks: list[str], expert: dict, rows: list[Row],
                  folders: dict, out: Path, seconds: float, reports: list | None = None,
                  extra: dict | None = None) -> dict:
    """Tables, chart and figure. `reports`/`extra`: a multi-task run's rows (one per row and condition) and
    what its tables say about the protocol (policy/multitask.py); by default one report per row."""
    from roboact.policy.report import RowReport, bar_chart, build_report, rollout_figure, to_markdown
    from roboact.utils.io import atomic_write_json, atomic_write_text, read_json

    if reports is None:
        reports = []
        for r in rows:
            rep = RowReport(r.spec.name, r.spec.kind, r.role, r.status, r.pretraining,
                            input=r.encoder.input_label() if r.encoder is not None else "")
            for (name, t, seed), folder in folders.items():
                if name == r.spec.name:
                    rep.cells.setdefault(t, {})[seed] = read_json(folder / "result.json")
            reports.append(rep)
    from roboact.backbones.runtime import resolve_runtime

    meta = {"suite": cfg.suite, "mode": cfg.mode, "command": cfg.command, "config": asdict(cfg),
            "runtime": resolve_runtime(cfg.encoder.runtime, cfg.encoder.device),
            "seconds": round(seconds, 1), "timing_ms_per_step": _timings(reports), **(extra or {})}
    report = build_report(meta, tasks, expert, reports)
    atomic_write_json(out / "report.json", report)
    for table, stem in (("II", "table2"), ("III", "table3")):
        atomic_write_text(out / f"{stem}.md", to_markdown(report, table))
        atomic_write_json(out / f"{stem}.json", {**report, "rows": [r for r in report["rows"] if table in r["tables"]]})
    chart = bar_chart(report, out / "success.png")
    if chart is None:
        log.warning("bar chart skipped: matplotlib is not installed (pip install 'roboact[train]')")
    from roboact.policy.encoders import slugify

    videos = {rep.name: {t: [_video_path(p, out / "videos" / (rep.slug or slugify(rep.name)) / t)
                             for p in seeds.get(0, {}).get("videos", [])]
                         for t, seeds in rep.cells.items()} for rep in reports}
    rollout_figure(videos, tasks, out / "rollouts.png")
    return report


def _video_path(recorded: str, folder: Path) -> str:
    """Recorded paths are relative to where the run was started; a moved run folder still holds the file
    in `folder` (out/videos/<row slug>/<task>/)."""
    return recorded if Path(recorded).is_file() else str(folder / Path(recorded).name)


def _timings(reports) -> dict:
    """Mean per-step cost of the final evaluations, per row: encoder + policy, and env (step + render)."""
    out = {}
    for r in reports:
        cells = [c for seeds in r.cells.values() for c in seeds.values()]
        if cells:
            out[r.name] = {"agent": round(sum(c["agent_ms_per_step"] for c in cells) / len(cells), 2),
                           "env": round(sum(c["env_ms_per_step"] for c in cells) / len(cells), 2)}
    return out

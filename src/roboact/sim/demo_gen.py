"""Generate scripted demonstrations: successful episodes only, in parallel workers, resumable.

Per task, attempt k runs the expert on a fresh placement sampled with seed `seed + k` (never one of
LIBERO's 50 fixed evaluation states). A successful attempt is written at once as a one-demo shard file plus
an mp4 (both atomic); a failed one is logged with its reason in `attempts.jsonl`. When enough attempts have
succeeded, the first N successes by k are merged into `<suite>/<task>_demo.hdf5` (LIBERO's layout) and the
shards are removed. Because demo i is always the i-th success by k, the output does not depend on the
number of workers, and an interrupted run resumes where it stopped without redoing finished attempts.
Each demo also becomes a manifest row (S/A/O labels, the paper's caption), so the videos double as
pretraining clips of the Panda embodiment; the manifest is therefore a pretraining corpus and leaves out
the demos of tasks that never enter pretraining (roboact.data.heldout: the policy benchmark's tasks, the
reserve tasks and their near-duplicates), whose HDF5 files and videos are still written for the policies.
`excluded_tasks.json` beside it says which it left out and why.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from roboact.sim.base import SimError
from roboact.sim.demos import DemoError, DemoFile, Episode, merge_demos, write_demos
from roboact.sim.episodes import ResultLog, WorkerPool, run_expert
from roboact.sim.suites import SIM_SUITES, Suite, cached_env, get_suite, select_tasks
from roboact.utils import shutdown
from roboact.utils.config import check

log = logging.getLogger(__name__)


@dataclass
class DemosConfig:
    suite: str = "libero_goal"
    tasks: list[str] = field(default_factory=list)    # empty: the suite's default tasks; ["all"]: all
    num_demos: int = 50
    output_dir: str = "data/demos"
    workers: int = 1
    seed: int = 0
    image_size: int = 128
    cameras: list[str] = field(default_factory=list)  # empty: the suite's default (agentview)
    post_success_steps: int = 5                       # keep recording a few steps after success
    max_steps: int | None = None                      # episode cap; None: each task's own (Suite.episode_cap)
    max_attempts_factor: float = 2.0                  # give up a task after factor * N + 10 attempts
    video: bool = True
    format: str = "hdf5"                              # "lerobot": also <output_dir>/lerobot/<suite>/ (v3.0)

    def __post_init__(self) -> None:
        check(self.format in ("hdf5", "lerobot"), "format", f"must be 'hdf5' or 'lerobot', got {self.format!r}")
        check(self.suite in SIM_SUITES, "suite", f"must be one of {', '.join(SIM_SUITES)}, got {self.suite!r}")
        check(self.num_demos >= 1, "num_demos", f"must be >= 1, got {self.num_demos}")
        check(1 <= self.workers <= 64, "workers", f"must be in [1, 64], got {self.workers}")
        check(16 <= self.image_size <= 1024, "image_size", f"must be in [16, 1024], got {self.image_size}")
        check(self.post_success_steps >= 0, "post_success_steps", "must be >= 0")
        check(self.max_steps is None or self.max_steps >= 1, "max_steps",
              f"must be >= 1 (or null for each task's own cap), got {self.max_steps}")
        check(self.max_attempts_factor >= 1.0, "max_attempts_factor", "must be >= 1")
        check(bool(str(self.output_dir).strip()), "output_dir", "must be a path")

    @property
    def max_attempts(self) -> int:
        return int(self.max_attempts_factor * self.num_demos) + 10


@dataclass
class Job:
    """One attempt, sent to a worker (plain data only)."""

    suite: str
    task: str
    k: int
    seed: int
    shard: str
    video: str | None        # absolute/cwd path of the mp4 to write
    video_rel: str           # the same, relative to the output folder (stored in the demo's attrs)
    image_size: int
    cameras: tuple[str, ...]
    post_success_steps: int
    max_steps: int | None    # None: the env's own cap


# ---------------------------------------------------------------- worker side
def record_episode(env, expert, suite: Suite, seed: int,
                   post_success_steps: int) -> tuple[Episode | None, list, str]:
    """Run the expert once (roboact.sim.episodes); returns (episode or None, video frames, reason when it
    failed). A demo must still show success at its last step."""
    run = run_expert(env, expert, {"seed": seed}, after_success=post_success_steps, snapshot=suite.sim_state)
    frames = [suite.video_frame(o) for o in run.observations]
    if run.success_at is None:
        return None, frames, f"no success within {env.max_steps} steps (expert phase: {suite.phase(expert)})"
    if not run.final.success:
        return None, frames, f"success at step {run.success_at} was lost by step {run.steps}"
    steps = list(zip(run.observations, run.actions, run.snapshots))  # (obs, action, state) before each action
    return suite.episode(steps, run.final, seed), frames, ""


def run_job(job: Job) -> dict:
    """Worker entry point: one attempt, its shard and video written atomically; never raises."""
    t0 = time.perf_counter()
    result = {"k": job.k, "seed": job.seed}
    try:
        suite = get_suite(job.suite)
        env = cached_env(suite, job.task, job.image_size, job.cameras, max_steps=job.max_steps)
        ep, frames, reason = record_episode(env, suite.make_expert(job.task), suite, job.seed,
                                            job.post_success_steps)
        if ep is None:
            return {**result, "status": "failed", "reason": reason, "seconds": time.perf_counter() - t0}
        ep.attrs.update({"attempt": job.k, "video": job.video_rel if job.video else "",
                         "num_frames": len(frames), "fps": float(env.fps), "camera": env.cameras[0],
                         "max_steps": int(env.max_steps)})
        if job.video:  # the video first: the shard is what marks the attempt done on resume
            from roboact.data.video import write_mp4

            write_mp4(job.video, np.stack(frames), fps=env.fps)
        write_demos(job.shard, [ep], suite.file_attrs(env))
        return {**result, "status": "ok", "steps": ep.num_samples, "seconds": time.perf_counter() - t0}
    except Exception as e:  # a bad attempt is a logged rejection, never the end of the run
        return {**result, "status": "error", "reason": f"{type(e).__name__}: {e}",
                "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------- main-process side
@dataclass
class TaskPaths:
    root: Path
    suite: str
    task: str

    @property
    def final(self) -> Path:
        return self.root / self.suite / f"{self.task}_demo.hdf5"

    @property
    def work(self) -> Path:
        return self.root / self.suite / self.task

    @property
    def log(self) -> Path:
        return self.work / "attempts.jsonl"

    def shard(self, k: int) -> Path:
        return self.work / "shards" / f"attempt_{k:05d}.hdf5"

    def video_rel(self, seed: int) -> str:
        return f"videos/{self.suite}/{self.task}/seed_{seed:06d}.mp4"


@dataclass
class TaskSummary:
    task: str
    demos: int
    attempts: int
    failed: int
    errors: int
    seconds: float
    path: str
    complete: bool


def attempt_log(paths: TaskPaths) -> ResultLog:
    """Finished attempts of a task by k (`attempts.jsonl`): the record a rerun resumes from."""
    return ResultLog(paths.log, key=lambda row: int(row["k"]))


def _finished(paths: TaskPaths) -> dict[int, tuple[Path, str]]:
    """Successful attempts on disk, k -> (file, demo key): merged ones in the final file, then shards."""
    ok: dict[int, tuple[Path, str]] = {}
    if paths.final.is_file():
        f = DemoFile(paths.final)  # a damaged final file is an error to look at, not something to overwrite
        for key in f.keys:
            ok[int(f.demo_attrs[key].get("attempt", -1))] = (paths.final, key)
    shard_dir = paths.work / "shards"
    for shard in sorted(shard_dir.glob("attempt_*.hdf5")) if shard_dir.is_dir() else []:
        k = int(shard.stem.split("_")[1])
        try:
            DemoFile(shard)
        except DemoError as e:  # e.g. a shard from a killed run: redo that attempt
            log.warning("discarding unreadable shard %s: %s", shard, e)
            shard.unlink()
            continue
        ok.setdefault(k, (shard, "demo_0"))
    return ok


def _file_attrs(suite: Suite, task: str, cfg: DemosConfig, sample_file: Path) -> dict:
    label = suite.label(task)
    attrs = {k: v for k, v in DemoFile(sample_file).attrs.items()
             if k not in ("num_demos", "total", "roboact_format_version")}
    return {**attrs, "suite": suite.name, "task_name": task, "action": label.action, "object": label.object,
            "note": label.note, "source": suite.source, "embodiment": suite.embodiment,
            "generator": "roboact scripted expert", "generator_config": asdict(cfg)}


def _assemble(paths: TaskPaths, ok: dict[int, tuple[Path, str]], n: int, suite, cfg) -> int:
    """Merge the first n successes by k into the final file; delete merged shards."""
    chosen = sorted(ok)[:n]
    current = DemoFile(paths.final) if paths.final.is_file() else None
    if current is not None and [int(a.get("attempt", -1)) for a in current.demo_attrs.values()] == chosen:
        return len(chosen)
    merge_demos(paths.final, [ok[k] for k in chosen], _file_attrs(suite, paths.task, cfg, ok[chosen[0]][0]))
    for k in chosen:
        if ok[k][0] != paths.final:
            ok[k][0].unlink(missing_ok=True)
    return len(chosen)


def _job(cfg: DemosConfig, paths: TaskPaths, k: int, suite) -> Job:
    seed = cfg.seed + k
    return Job(cfg.suite, paths.task, k, seed, str(paths.shard(k)),
               str(paths.root / paths.video_rel(seed)) if cfg.video else None, paths.video_rel(seed),
               cfg.image_size,
               tuple(cfg.cameras) or suite.default_cameras, cfg.post_success_steps,
               cfg.max_steps or suite.episode_cap(paths.task))


def generate_task(cfg: DemosConfig, suite, task: str, pool: WorkerPool, bar=None) -> TaskSummary:
    t0 = time.perf_counter()
    paths = TaskPaths(Path(cfg.output_dir), suite.name, task)
    attempts = attempt_log(paths)
    logged = attempts.read()
    ok = _finished(paths)
    skip = {k for k, row in logged.items() if row.get("status") == "failed"}  # deterministic: don't redo
    errors, next_k = 0, 0
    if bar is not None:
        bar.reset(total=cfg.num_demos)
        bar.set_description(task[:40])
        bar.update(min(len(ok), cfg.num_demos))
    while len(ok) < cfg.num_demos and next_k < cfg.max_attempts:
        wave = []
        while len(wave) < cfg.num_demos - len(ok) + pool.workers - 1 and next_k < cfg.max_attempts:
            if next_k not in ok and next_k not in skip:
                wave.append(_job(cfg, paths, next_k, suite))
            next_k += 1
        for res in pool.run(run_job, wave):
            attempts.append({**res, "task": task})
            shutdown.note(f"{task}: {min(len(ok) + (res['status'] == 'ok'), cfg.num_demos)}/{cfg.num_demos} demos",
                          topic="task")
            if res["status"] == "ok":
                ok[res["k"]] = (paths.shard(res["k"]), "demo_0")
                if bar is not None and len(ok) <= cfg.num_demos:
                    bar.update(1)
            elif res["status"] == "failed":
                skip.add(res["k"])
            else:
                errors += 1
                log.debug("%s attempt %d: %s", task, res["k"], res["reason"])
        if errors >= 3 and len(ok) == 0:
            first = next(r for r in attempts.read().values() if r.get("status") == "error")
            raise SimError(f"{suite.name}/{task}: every attempt fails to run; first error: {first['reason']}")
    n = _assemble(paths, ok, cfg.num_demos, suite, cfg) if ok else 0
    return TaskSummary(task, n, len(attempts.read()), len(skip), errors, time.perf_counter() - t0,
                       str(paths.final), n >= cfg.num_demos)


def generate_demos(cfg: DemosConfig) -> list[TaskSummary]:
    """All tasks of the config; then the manifest of every demo under output_dir and, with format 'lerobot',
    the suite's LeRobot dataset (every demo file of the suite under output_dir, not only this run's tasks)."""
    from tqdm import tqdm

    suite = get_suite(cfg.suite)
    tasks = select_tasks(suite, cfg.tasks)
    summaries = []
    with WorkerPool(cfg.workers) as pool, tqdm(total=cfg.num_demos, unit="demo", dynamic_ncols=True) as bar:
        for task in tasks:
            shutdown.note(f"{len(summaries)} of {len(tasks)} tasks complete", topic="tasks")
            shutdown.note(f"{task}: in progress", topic="task")
            summaries.append(generate_task(cfg, suite, task, pool, bar))
            s = summaries[-1]
            log.info("%s: %d/%d demos (%d attempts, %d failed, %d errors) -> %s", task, s.demos,
                     cfg.num_demos, s.attempts, s.failed, s.errors, s.path)
    if cfg.video:
        write_demo_manifest(Path(cfg.output_dir))
    if cfg.format == "lerobot":
        from roboact.sim.demos_lerobot import export_lerobot

        export_lerobot(cfg.output_dir, suite.name)
    return summaries


def manifest_rows(root: Path) -> tuple[list, dict[str, str]]:
    """One ClipRecord per demo with a video of every `<suite>/<task>_demo.hdf5` under root, but none of a
    task that never enters pretraining; and those tasks -> why (roboact.data.heldout's default)."""
    from roboact.data.heldout import pretraining_exclusions
    from roboact.data.manifest import ClipRecord

    files = [(path, DemoFile(path)) for path in sorted(root.glob("*/*_demo.hdf5"))]
    labels: dict[str, dict[str, tuple[str, str]]] = {}
    for _, f in files:
        a = f.attrs
        table = labels.setdefault(a["suite"], get_suite(a["suite"]).label_table())
        table.setdefault(a["task_name"], (a["action"], a["object"]))  # the suite's table is the authority
    excluded = {s: pretraining_exclusions(s, lab) for s, lab in labels.items()}
    rows, left_out = [], {}
    for path, f in files:
        a = f.attrs
        if a["task_name"] in excluded[a["suite"]]:
            left_out[f"{a['suite']}/{a['task_name']}"] = excluded[a["suite"]][a["task_name"]]
            continue
        for key in f.keys:
            d = f.demo_attrs[key]
            if not d.get("video"):
                continue
            rows.append(ClipRecord(
                clip_id=f"{a['suite']}/{a['task_name']}/seed_{int(d['seed']):06d}", path=d["video"],
                subject="Robot", action=a["action"], object=a["object"], task=f"{a['suite']}/{a['task_name']}",
                camera=str(d.get("camera", "")), seed=int(d["seed"]), num_frames=int(d["num_frames"]),
                fps=float(d.get("fps", 0.0)), source=a["source"], embodiment=a["embodiment"],
                episode=os.path.relpath(path, root), instruction=f.instruction,
                extra={"demo": key, **({"note": a["note"]} if a.get("note") else {})}))
    return rows, left_out


def write_demo_manifest(root: Path) -> Path | None:
    """`root`/manifest.jsonl and excluded_tasks.json; with no clip to list, no manifest (an older one is
    removed, so it cannot outlive the demos it listed)."""
    from roboact.data.heldout import write_record
    from roboact.data.manifest import write_manifest

    rows, left_out = manifest_rows(root)
    dest = root / "manifest.jsonl"
    write_record(root, left_out)
    if not rows:
        dest.unlink(missing_ok=True)
        return None
    write_manifest(dest, rows)
    return dest

"""The simulated atomic-action corpus: Meta-World scripted experts -> videos + episode records + manifest.

A thin front-end on the runner the demos use (roboact.sim.episodes: the episode loop and the worker pool;
roboact.sim.suites: the env factory and cache); what is its own is the plan of episodes, their seeds, the
files below and the manifests (roboact.data.manifest_ops).

Layout under `out_dir` (all paths in the manifests are relative to it):

    episodes/<task>/e0003.json   episode meta; written last, so it is the done-marker (success or failure)
    episodes/<task>/e0003.npz    episode record shared by the episode's clips (successful episodes only)
    videos/<task>/e0003_<camera>.mp4
    manifest.jsonl               one row per (episode, camera); `split` by episode hash
    manifest_compositional.jsonl the same rows; `split` = test for held-out (action, object) pairs
    excluded_tasks.json          which labelled tasks the corpus leaves out, and why (also in summary.json)
    summary.json, config.json

The corpus is for pretraining, so it never holds a task of roboact.data.heldout's never-list (the policy
benchmark's tasks and the reserve tasks), and by default none of their near-duplicates: the default task
list leaves them out, and naming one in `tasks` is a ConfigError saying why (`include_near_duplicates`
lets the near-duplicates in; nothing lets the never-list in).

Each episode's scene and trajectory depend only on (seed, task, episode index), never on which worker ran
it or in what order, so the corpus is the same for any number of workers. A rerun skips episodes whose
meta matches the settings and rebuilds the manifests from the metas on disk, so a crash loses at most the
episodes in flight. Failed episodes (expert did not succeed within `max_steps`) are kept out of the
manifest, recorded in their meta and counted in the summary; an episode that raises is reported and
retried on the next run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roboact.data.heldout import never_pretrain, pretraining_exclusions, write_record
from roboact.data.manifest import ClipRecord
from roboact.data.manifest_ops import write_split_manifests
from roboact.sim.episodes import WorkerPool, run_expert
from roboact.sim.suites import MetaWorldSuite, cached_env
from roboact.utils import shutdown
from roboact.utils.config import check
from roboact.utils.io import atomic_path, atomic_write_json, read_json

log = logging.getLogger(__name__)


@dataclass
class CorpusConfig:
    out_dir: str
    tasks: list[str] = field(default_factory=list)      # empty: every task of metaworld.ATOMIC_TASKS that
                                                        # may be pretrained on (roboact.data.heldout)
    include_near_duplicates: bool = False               # let in tasks labelled like a benchmark/reserve task
    episodes_per_task: int = 20
    cameras: list[str] = field(default_factory=lambda: ["corner", "corner3", "corner4"])
    image_size: int = 128
    workers: int = 1
    seed: int = 0
    frames_after_success: int = 4      # the episode ends at success; keep a few frames of the end state
    max_steps: int = 200               # steps allowed to reach success (the paper's cap)
    crf: int = 20                      # H.264 quality of the clips
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    heldout_pairs: int = 3             # (action, object) pairs held out in manifest_compositional.jsonl
    progress: bool = True
    randomize: list[str] = field(default_factory=list)  # per-episode scene variation: camera, light, table
    # 0: the video holds every control step. N >= 2: it holds about N frames (>= N) at one uniform stride,
    # ending on the last frame, and only those are rendered (rendering is ~97% of an episode's cost; the
    # record keeps every step). Extraction samples 16 frames per clip, so 32 loses nothing it reads.
    video_frames: int = 0

    def __post_init__(self) -> None:
        from roboact.sim.metaworld import ATOMIC_TASKS, CAMERAS

        check(bool(str(self.out_dir).strip()), "out_dir", "must be a folder path")
        excluded = self.excluded_tasks()
        self.tasks = list(self.tasks) or [t for t in ATOMIC_TASKS if t not in excluded]
        bad = [t for t in self.tasks if t not in ATOMIC_TASKS]
        check(not bad, "tasks", f"unknown task {bad[0] if bad else ''!r}; labelled tasks: {', '.join(ATOMIC_TASKS)}")
        for t in (t for t in self.tasks if t in excluded):
            hint = "" if t in never_pretrain() else "; --include-near-duplicates lets it in"
            check(False, "tasks", f"{t!r} never enters a pretraining corpus: {excluded[t]}{hint}")
        check(len(set(self.tasks)) == len(self.tasks), "tasks", "lists a task twice")
        bad = [c for c in self.cameras if c not in CAMERAS]
        what = f"unknown camera {bad[0]!r}" if bad else "no camera given"
        check(bool(self.cameras) and not bad, "cameras", f"{what}; valid cameras: {', '.join(CAMERAS)}")
        check(len(set(self.cameras)) == len(self.cameras), "cameras", "lists a camera twice")
        check(self.episodes_per_task >= 1, "episodes_per_task", f"must be >= 1, got {self.episodes_per_task}")
        check(16 <= self.image_size <= 1024, "image_size", f"must be in [16, 1024], got {self.image_size}")
        check(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        check(self.frames_after_success >= 0, "frames_after_success", "must be >= 0")
        check(self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}")
        check(0 <= self.crf <= 51, "crf", f"must be in [0, 51], got {self.crf}")
        check(0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1,
              "val_fraction", "val_fraction and test_fraction must be >= 0 and sum to less than 1")
        check(self.heldout_pairs >= 0, "heldout_pairs", "must be >= 0")
        check(self.video_frames == 0 or self.video_frames >= 2, "video_frames",
              f"must be 0 (every step) or >= 2, got {self.video_frames}")
        from roboact.sim.appearance import KINDS

        check(isinstance(self.randomize, (list, tuple)), "randomize",
              f"must be a list of {', '.join(KINDS)}, got {self.randomize!r}")
        self.randomize = list(self.randomize)
        bad = [k for k in self.randomize if k not in KINDS]
        check(not bad, "randomize", f"unknown kind {bad[0] if bad else ''!r}; valid kinds: {', '.join(KINDS)}")
        check(len(set(self.randomize)) == len(self.randomize), "randomize", "lists a kind twice")
        self.randomize = [k for k in KINDS if k in self.randomize]  # one order, so settings compare equal

    def excluded_tasks(self) -> dict[str, str]:
        """Labelled tasks this corpus leaves out -> why (the never-list, and near-duplicates unless let in)."""
        from roboact.sim.metaworld import label_pairs

        return pretraining_exclusions("metaworld", label_pairs(), self.include_near_duplicates)


@dataclass(frozen=True)
class EpisodeJob:
    """Everything a worker needs for one episode (picklable; no config object crosses processes)."""
    task: str
    index: int
    episode_seed: int
    cameras: tuple[str, ...]
    image_size: int
    max_steps: int
    frames_after_success: int
    crf: int
    out_dir: str
    randomize: tuple[str, ...] = ()
    video_frames: int = 0

    @property
    def name(self) -> str:
        return f"e{self.index:04d}"

    def meta_path(self) -> Path:
        return Path(self.out_dir) / "episodes" / self.task / f"{self.name}.json"

    def settings(self) -> dict:
        """What the episode's content depends on; a meta with other settings is stale and redone.

        `randomize` and `video_frames` are listed only when set, so metas of corpora from before they existed
        stay valid."""
        out = {"episode_seed": self.episode_seed, "image_size": self.image_size, "max_steps": self.max_steps,
               "frames_after_success": self.frames_after_success, "crf": self.crf}
        if self.randomize:
            out["randomize"] = list(self.randomize)
        if self.video_frames:
            out["video_frames"] = self.video_frames
        return out


def episode_seed(seed: int, task: str, index: int) -> int:
    """Scene seed of one episode: a hash, so episodes are independent of scheduling and of each other."""
    digest = hashlib.sha256(f"metaworld\0{seed}\0{task}\0{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_jobs(cfg: CorpusConfig) -> list[EpisodeJob]:
    return [EpisodeJob(task, i, episode_seed(cfg.seed, task, i), tuple(cfg.cameras), cfg.image_size,
                       cfg.max_steps, cfg.frames_after_success, cfg.crf, str(cfg.out_dir), tuple(cfg.randomize),
                       cfg.video_frames)
            for task in cfg.tasks for i in range(cfg.episodes_per_task)]


def read_meta(job: EpisodeJob) -> dict | None:
    """The episode's meta if it is finished with the job's settings and cameras, else None."""
    path = job.meta_path()
    if not path.is_file():
        return None
    try:
        meta = read_json(path)
    except ValueError:
        return None  # unreadable marker: redo the episode
    if meta.get("settings") != job.settings():
        return None
    if meta.get("status") == "success":
        root = Path(job.out_dir)
        files = [meta["record"], *(meta["videos"].get(c, "") for c in job.cameras)]
        if not all(f and (root / f).is_file() for f in files):
            return None
    return meta


def _with_previous_cameras(job: EpisodeJob) -> EpisodeJob:
    """When an episode is redone for new cameras, render the old ones too, so their clips stay listed."""
    path = job.meta_path()
    try:
        old = read_json(path).get("cameras", []) if path.is_file() else []
    except ValueError:
        old = []
    extra = tuple(c for c in old if c not in job.cameras)
    return dataclasses.replace(job, cameras=job.cameras + extra) if extra else job


# --- one episode (runs in a worker) -------------------------------------------------------------------

def video_steps(num_frames: int, video_frames: int) -> list[int]:
    """The record frames a video keeps: all (video_frames 0, or a short episode), else one uniform stride
    chosen so at least `video_frames` remain, counted back from the last frame (the end state always shows)."""
    if not video_frames or num_frames <= video_frames:
        return list(range(num_frames))
    stride = max(1, (num_frames - 1) // (video_frames - 1))
    return list(range(num_frames - 1, -1, -stride))[::-1]


def rollout(job: EpisodeJob) -> dict:
    """Run the expert from the job's scene until success + `frames_after_success`, or `max_steps`
    (roboact.sim.episodes.run_expert, the loop the demos use too).

    Returns per-frame arrays (frame 0 is the reset observation; actions/rewards have one entry fewer) and
    the video frames of `video_steps` (all of them unless `job.video_frames`).
    """
    from roboact.sim.appearance import sample_appearance

    suite = MetaWorldSuite()
    # the env's own cap leaves room for the frames after a success on the last allowed step
    env = cached_env(suite, job.task, job.image_size, job.cameras,
                     max_steps=job.max_steps + job.frames_after_success)
    look = sample_appearance(job.episode_seed, job.randomize, job.cameras, env.model.nlight)

    def episode():
        return run_expert(env, suite.make_expert(job.task), {"seed": job.episode_seed, "appearance": look},
                          after_success=job.frames_after_success, reach_within=job.max_steps)

    if job.video_frames:
        with env.rendering_only(()):  # first pass: physics only, to learn the episode's length
            blind = episode()
        keep = video_steps(len(blind.observations), job.video_frames)
        with env.rendering_only(keep):
            run = episode()
        if (len(run.observations), run.success_at) != (len(blind.observations), blind.success_at):
            raise RuntimeError(f"episode not reproducible: {len(blind.observations)} then {len(run.observations)} "
                               "frames from the same scene seed")
    else:
        run = episode()
        keep = list(range(len(run.observations)))
    obs = run.observations
    return {"frames": {c: np.stack([obs[i].rgb[c] for i in keep]) for c in job.cameras},  # camera -> uint8 [F, H, W, 3]
            "video_steps": keep,
            "states": np.stack([o.state for o in obs]),                               # [T, 39]
            "proprio": np.stack([o.proprio for o in obs]),                            # [T, 4]
            "success": np.asarray([o.success for o in obs], dtype=bool),              # [T]
            "actions": np.stack(run.actions).astype(np.float32).reshape(-1, 4),       # [T-1, 4]
            "rewards": np.asarray([o.info["reward"] for o in obs[1:]], dtype=np.float32),  # [T-1]
            "success_frame": -1 if run.success_at is None else run.success_at,
            "appearance": env.appearance if job.randomize else {}}   # what was applied, per camera


def _rel(job: EpisodeJob) -> dict:
    return {"record": f"episodes/{job.task}/{job.name}.npz",
            "videos": {c: f"videos/{job.task}/{job.name}_{c}.mp4" for c in job.cameras}}


def save_episode(job: EpisodeJob, ep: dict, seconds: float) -> dict:
    """Write videos and record (successful episodes), then the meta last: the meta marks it done."""
    from roboact.data.video import write_mp4
    from roboact.sim.metaworld import CONTROL_HZ

    root, rel = Path(job.out_dir), _rel(job)
    ok = ep["success_frame"] >= 0
    steps = ep.get("video_steps") or list(range(len(ep["states"])))
    stride = steps[1] - steps[0] if len(steps) > 1 else 1
    fps = CONTROL_HZ / stride
    if ok:
        for cam, path in rel["videos"].items():
            write_mp4(root / path, ep["frames"][cam], fps=fps, crf=job.crf)
        arrays = {k: ep[k] for k in ("states", "proprio", "success", "actions", "rewards")}
        with atomic_path(root / rel["record"]) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays, success_frame=np.int64(ep["success_frame"]),
                                episode_seed=np.int64(job.episode_seed))
    meta = {"task": job.task, "index": job.index, "status": "success" if ok else "failed",
            # num_frames and fps are the video's (what its clips hold); video frame i is record frame
            # video_first + i * video_stride
            "num_frames": len(steps), "success_frame": int(ep["success_frame"]), "fps": fps,
            "record_frames": int(len(ep["states"])), "video_first": steps[0], "video_stride": stride, "cameras": list(job.cameras), "seconds": round(seconds, 3),
            "settings": job.settings(), **(rel if ok else {"record": "", "videos": {}})}
    if ep.get("appearance"):
        meta["appearance"] = ep["appearance"]
    atomic_write_json(job.meta_path(), meta)
    return meta


def run_episode(job: EpisodeJob) -> dict:
    """Worker entry point: never raises, so one bad episode cannot stop the corpus."""
    t0 = time.perf_counter()
    try:
        ep = rollout(job)
        return save_episode(job, ep, time.perf_counter() - t0)
    except Exception as e:  # reported in the summary and retried on the next run
        log.exception("episode %s/%s failed", job.task, job.name)
        return {"task": job.task, "index": job.index, "status": "error", "error": f"{type(e).__name__}: {e}"}


# --- the corpus ---------------------------------------------------------------------------------------

def run_jobs(jobs: list[EpisodeJob], workers: int, progress: bool) -> list[dict]:
    """Run episodes on the demos' worker pool (roboact.sim.episodes.WorkerPool), with a progress bar."""
    from tqdm import tqdm

    results = []
    shutdown.note(f"0 of the {len(jobs)} episodes to simulate")
    bar = tqdm(total=len(jobs), desc="simulate metaworld", unit="ep", disable=not progress)
    try:
        with WorkerPool(1 if len(jobs) <= 1 else min(workers, len(jobs))) as pool:
            for res in pool.run(run_episode, jobs):
                results.append(res)
                shutdown.note(f"{len(results)} of the {len(jobs)} episodes to simulate")
                bar.update(1)
                bar.set_postfix(kept=sum(r["status"] == "success" for r in results),
                                failed=sum(r["status"] != "success" for r in results))
    finally:
        bar.close()
    return results


def clip_rows(job: EpisodeJob, meta: dict) -> list[ClipRecord]:
    """One manifest row per requested camera of a successful episode."""
    from roboact.sim.metaworld import instruction_for, label_for

    lab = label_for(job.task)
    look = meta.get("appearance", {})
    return [ClipRecord(clip_id=f"metaworld_{job.task}_{job.name}_{cam}", path=meta["videos"][cam],
                       subject="Robot", action=lab.action, object=lab.object, task=job.task, camera=cam,
                       seed=job.episode_seed, num_frames=meta["num_frames"], fps=meta["fps"],
                       source=MetaWorldSuite.source, embodiment=MetaWorldSuite.embodiment, episode=meta["record"],
                       instruction=instruction_for(job.task),
                       extra={"episode_index": job.index, "success_frame": meta["success_frame"],
                              "image_size": job.image_size, **_appearance_extra(look, cam)})
            for cam in job.cameras]


def _appearance_extra(look: dict, camera: str) -> dict:
    """The randomisation a clip was rendered with; `camera` of the row stays the base camera's name."""
    out = {}
    if camera in look.get("camera", {}):
        out["camera_pose"] = look["camera"][camera]
    out.update({k: look[k] for k in ("light", "table") if k in look})
    return out


def build_corpus(cfg: CorpusConfig) -> dict:
    """Simulate every missing episode, then rebuild the manifests from all finished ones. Returns the summary."""
    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    jobs = plan_jobs(cfg)
    todo = [_with_previous_cameras(j) for j in jobs if read_meta(j) is None]
    log.info("%d episodes planned, %d already done, %d to simulate", len(jobs), len(jobs) - len(todo), len(todo))
    results = run_jobs(todo, cfg.workers, cfg.progress)
    errors = [r for r in results if r["status"] == "error"]
    metas = {(j.task, j.index): read_meta(j) for j in jobs}
    rows = [row for j in jobs if (m := metas[(j.task, j.index)]) and m["status"] == "success"
            for row in clip_rows(j, m)]
    split_info = write_split_manifests(out, rows, cfg.val_fraction, cfg.test_fraction, cfg.heldout_pairs,
                                       cfg.seed)
    summary = _summary(cfg, jobs, metas, errors, len(results), split_info, time.perf_counter() - t0)
    write_record(out, summary["excluded_tasks"], near_duplicates_included=summary["near_duplicates_included"])
    atomic_write_json(out / "summary.json", summary)
    return summary


def _summary(cfg, jobs, metas, errors, simulated, split_info, seconds) -> dict:
    per_task: dict = {t: {"kept": 0, "failed": 0, "error": 0} for t in cfg.tasks}
    for j in jobs:
        m = metas[(j.task, j.index)]
        key = "error" if m is None else ("kept" if m["status"] == "success" else "failed")
        per_task[j.task][key] += 1
    total = {k: sum(v[k] for v in per_task.values()) for k in ("kept", "failed", "error")}
    return {"episodes_planned": len(jobs), "episodes_simulated_now": simulated,
            "episodes_skipped_done": len(jobs) - simulated, **{f"episodes_{k}": v for k, v in total.items()},
            "clips": total["kept"] * len(cfg.cameras), "per_task": per_task,
            "errors": [f"{e['task']}/e{e['index']:04d}: {e['error']}" for e in errors],
            "excluded_tasks": cfg.excluded_tasks(), "near_duplicates_included": _near_duplicates_in(cfg),
            "seconds": round(seconds, 2), **split_info}


def _near_duplicates_in(cfg: CorpusConfig) -> list[str]:
    """The corpus's tasks that are near-duplicates of a benchmark or reserve task (only when let in)."""
    from roboact.data.heldout import near_duplicates
    from roboact.sim.metaworld import label_pairs

    near = near_duplicates("metaworld", label_pairs())
    return [t for t in cfg.tasks if t in near]

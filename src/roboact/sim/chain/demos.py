"""Chained demonstrations: one expert episode through all four stages per chain initial state, written as one
demo per stage (the stage's segment, labelled with its instruction) into four demo files of `roboact demos`'
layout, so a multi-task policy trains on the stages as four more tasks.

An episode is kept only if every stage succeeds within its budget; otherwise it is dropped and counted (with
the stage and the expert's phase), never written in part. A kept episode's four segments go to a per-episode
folder that is renamed into place only once all four are written, so a crash leaves either all four or none;
the log row (attempts.jsonl) is appended after that, and a rerun resumes from the folders and the log. When
`num_demos` episodes are kept, the first ones by start index are merged into `<out>/libero_goal/<stage>_demo.hdf5`
(the episode folders are removed only after all four files are written).

Segment k of an episode is the steps from stage k's start to the step its predicate first held (the next
stage starts from that state): `rewards` is 1 from that step, `states[0]` is where the stage began. The last
segment goes on for TAIL_STEPS more steps of its expert (rewards 1 while the drawer stays shut), as
`roboact demos` records a few steps past success.
Demos come from the train set of chain initial states (sampled placements), never the evaluation set.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from roboact.sim.chain.stages import STAGES
from roboact.sim.chain.starts import ChainStart, ChainStarts
from roboact.utils.config import check


# Steps recorded past the last stage's success (its expert goes on: let go, back off), as `roboact demos` records
# post_success_steps: the chain's judge is calibrated on what follows each stage's success (roboact.policy.
# chain), which for stages 1-3 is the next stage's start and for the last only this tail.
TAIL_STEPS = 5


@dataclass
class ChainDemosConfig:
    starts: str = "data/chain/chain_starts_train.json"
    num_demos: int = 30
    output_dir: str = "data/chain_demos"
    image_size: int = 128
    cameras: list[str] = dataclasses.field(default_factory=lambda: ["agentview"])
    workers: int = 1
    video: bool = True

    def __post_init__(self) -> None:
        check(self.num_demos >= 1, "num_demos", f"must be >= 1, got {self.num_demos}")
        check(16 <= self.image_size <= 1024, "image_size", f"must be in [16, 1024], got {self.image_size}")
        check(bool(self.cameras), "cameras", "must name at least one camera")
        check(1 <= self.workers <= 64, "workers", f"must be in [1, 64], got {self.workers}")
        check("eval" not in Path(self.starts).stem, "starts",
              f"{self.starts} is the evaluation split; chained demos come from the train split (build it with "
              f"`roboact chain starts --split train`)")


def _episode_dir(root: Path, index: int) -> Path:
    return root / "libero_goal" / "chain" / "episodes" / f"start_{index:05d}"


def video_rel(index: int) -> str:
    return f"videos/libero_goal/chain/start_{index:05d}.mp4"


def segments(run, start: ChainStart, stages=STAGES) -> list:
    """The episode's segments as `Episode`s, one per stage (rewards: the stage's own predicate)."""
    from roboact.sim.suites import get_suite

    suite = get_suite("libero_goal")
    out, a = [], 0
    ends = list(run.stage_ends[:-1]) + [len(run.actions)]      # the last segment keeps the run's tail
    for k, b in enumerate(ends):
        obs = [dataclasses.replace(o, success=run.flags[t - 1] if t > a else False)
               for t, o in zip(range(a, b + 1), run.observations[a:b + 1])]
        steps = list(zip(obs[:-1], run.actions[a:b], run.states[a:b]))
        ep = suite.episode(steps, obs[-1], start.seed)
        ep.attrs.update({"chain_start": start.index, "chain_source": start.source, "stage": k + 1,
                         "stage_name": stages[k].name, "instruction": stages[k].instruction,
                         "episode_steps": [a, b], "max_steps": stages[k].budget})
        out.append(ep)
        a = b
    return out


def stage_attrs(env, stage) -> dict:
    """A stage's demo-file attributes: the env's (LIBERO's layout), its instruction instead of the base task's."""
    attrs = env.record_attrs()
    attrs["problem_info"] = {**attrs["problem_info"], "language_instruction": stage.instruction}
    attrs["language_instruction"] = stage.instruction
    attrs["task"] = f"libero_goal/{stage.name}"
    return attrs


def demo_job(job: tuple[dict, str, int, tuple[str, ...], bool]) -> dict:
    """Worker entry: one chained episode from one chain initial state; writes its four segments or nothing."""
    from roboact.sim.chain.rollout import chain_env, run_chain
    from roboact.sim.demos import write_demos

    start_d, root, image_size, cameras, video = job
    start = ChainStart(**start_d)
    t0 = time.perf_counter()
    row = {"index": start.index, "source": start.source}
    try:
        env = chain_env(image_size, cameras)
        run = run_chain(env, start, keep=True, tail=TAIL_STEPS)
        if run.completed < len(STAGES):
            return {**row, "status": "failed", "stage": run.completed + 1, "phase": run.failed_phase,
                    "stage_steps": run.stage_steps(), "seconds": round(time.perf_counter() - t0, 2)}
        if min(run.stage_steps()) < 1:
            return {**row, "status": "failed", "stage": run.stage_steps().index(0) + 1,
                    "phase": "done at its start (nothing to demonstrate)",
                    "seconds": round(time.perf_counter() - t0, 2)}
        final = _episode_dir(Path(root), start.index)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for stage, ep in zip(STAGES, segments(run, start)):
            write_demos(tmp / f"{stage.name}.hdf5", [ep], stage_attrs(env, stage))
        if video:  # the whole chain, for looking at; written before the segments, which mark the episode done
            from roboact.data.video import write_mp4

            write_mp4(Path(root) / video_rel(start.index), np.stack([o.rgb[cameras[0]] for o in run.observations]),
                      fps=env.fps)
        shutil.rmtree(final, ignore_errors=True)   # the same episode from a run killed before its log row
        os.replace(tmp, final)   # all four segments appear at once, or none
        return {**row, "status": "ok", "stage_steps": run.stage_steps(), "seconds": round(time.perf_counter() - t0, 2)}
    except Exception as e:  # logged and retried on the next run
        return {**row, "status": "error", "reason": f"{type(e).__name__}: {e}",
                "seconds": round(time.perf_counter() - t0, 2)}


def generate_chain_demos(cfg: ChainDemosConfig) -> dict:
    from tqdm import tqdm

    from roboact.sim.demos import merge_demos
    from roboact.sim.episodes import ResultLog, WorkerPool
    from roboact.sim.chain.rollout import chain_env
    from roboact.utils.io import atomic_write_json

    root = Path(cfg.output_dir)
    starts = ChainStarts.load(cfg.starts)
    attempts = ResultLog(root / "libero_goal" / "chain" / "attempts.jsonl", key=lambda r: int(r["index"]))
    logged = attempts.read()
    ok = {r["index"] for r in logged.values() if r.get("status") == "ok"
          and all((_episode_dir(root, r["index"]) / f"{s.name}.hdf5").is_file() for s in STAGES)}
    failed = {r["index"] for r in logged.values() if r.get("status") == "failed"}
    merged = _merged_indices(root)
    ok |= merged
    queue = [s for s in starts.starts if s.index not in ok and s.index not in failed]
    with WorkerPool(cfg.workers) as pool, tqdm(total=cfg.num_demos, initial=min(len(ok), cfg.num_demos),
                                               unit="episode", dynamic_ncols=True) as bar:
        while len(ok) < cfg.num_demos and queue:
            wave, queue = queue[:cfg.num_demos - len(ok)], queue[cfg.num_demos - len(ok):]
            jobs = [(asdict(s), str(root), cfg.image_size, tuple(cfg.cameras), cfg.video) for s in wave]
            for r in pool.run(demo_job, jobs):
                attempts.append(r)
                if r["status"] == "ok":
                    ok.add(r["index"])
                    bar.update(1)
                elif r["status"] == "failed":
                    failed.add(r["index"])
    chosen = sorted(ok)[:cfg.num_demos]
    if chosen and chosen != sorted(merged):
        env = chain_env(cfg.image_size, tuple(cfg.cameras))
        for stage in STAGES:
            dest = root / "libero_goal" / f"{stage.name}_demo.hdf5"
            in_dest = _demo_keys_by_start(dest)
            sources = [(_episode_dir(root, i) / f"{stage.name}.hdf5", "demo_0") if i not in in_dest
                       else (dest, in_dest[i]) for i in chosen]
            attrs = {**stage_attrs(env, stage), "suite": "libero_goal", "task_name": stage.name,
                     "action": stage.action, "object": stage.object,
                     "note": f"stage {STAGES.index(stage) + 1} of the instruction chain (roboact.sim.chain)",
                     "source": "libero", "embodiment": "panda", "generator": "roboact chained scripted experts",
                     "generator_config": asdict(cfg)}
            merge_demos(dest, sources, attrs)
        for i in chosen:  # merged into all four files: the episode's own folder is no longer needed
            shutil.rmtree(_episode_dir(root, i), ignore_errors=True)
    rows = attempts.read()
    summary = {"starts": cfg.starts, "kept": len(chosen), "num_demos": cfg.num_demos,
               "attempted": len(rows), "dropped": sorted(
                   ({"index": r["index"], "stage": r["stage"], "phase": r["phase"]}
                    for r in rows.values() if r.get("status") == "failed"), key=lambda d: d["index"]),
               "errors": sum(r.get("status") == "error" for r in rows.values()),
               "files": [_file_stats(root / "libero_goal" / f"{s.name}_demo.hdf5") for s in STAGES] if chosen else [],
               "episodes": chosen, "config": asdict(cfg)}
    atomic_write_json(root / "libero_goal" / "chain" / "summary.json", summary)
    return summary


def _file_stats(path: Path) -> dict:
    from roboact.sim.demos import DemoFile

    f = DemoFile(path)
    steps = list(f.lengths.values())
    return {"path": str(path), "instruction": f.instruction, "demos": len(f), "steps_mean": float(np.mean(steps)),
            "steps_min": min(steps), "steps_max": max(steps), "bytes": path.stat().st_size}


def _demo_keys_by_start(path: Path) -> dict[int, str]:
    from roboact.sim.demos import DemoFile

    if not path.is_file():
        return {}
    f = DemoFile(path)
    return {int(f.demo_attrs[k]["chain_start"]): k for k in f.keys}


def _merged_indices(root: Path) -> set[int]:
    """Start indices of the episodes already merged into all four stage files (empty if any is missing)."""
    from roboact.sim.demos import DemoFile

    sets = []
    for stage in STAGES:
        path = root / "libero_goal" / f"{stage.name}_demo.hdf5"
        if not path.is_file():
            return set()
        f = DemoFile(path)
        sets.append({int(f.demo_attrs[k]["chain_start"]) for k in f.keys})
    return set.intersection(*sets)

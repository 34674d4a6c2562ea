"""The one runner of scripted-expert episodes behind `roboact simulate metaworld` (sim/corpus.py),
`roboact demos` (sim/demo_gen.py) and the expert table (sim/expert_eval.py).

Three pieces, each written once:
- `run_expert`: the episode loop. Reset, let the expert act until success plus a few frames, or the cap;
  every observation is kept, so a front-end can write videos, HDF5 demos or npz records from one result.
- `WorkerPool`: episodes in this process (one worker) or in spawned processes, each with its own GL
  context and env (`roboact.sim.suites.cached_env`); a worker that dies ends the run with a SimError
  saying that finished episodes are kept. On SIGTERM/SIGINT, or when this process dies, the workers stop
  too (roboact.utils.shutdown), so no orphan keeps writing into the output folder.
- `ResultLog`: an append-only JSONL log of finished jobs, read back tolerantly (a crash can tear the last
  line), which is how `roboact demos` and the expert table resume.

Resuming is the same everywhere: a job's outputs are written first and its done-marker (a log row, a meta
file) last, so a rerun skips exactly the jobs whose marker is on disk and redoes the rest. Which episodes
to run, and how to write them, is the front-ends' business; they must not depend on which worker ran an
episode or in what order, so the outputs are the same for any number of workers.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from roboact.sim.base import Observation, SimError
from roboact.sim.suites import close_envs
from roboact.utils import shutdown


@dataclass
class ExpertRun:
    """One episode: `observations[0]` is the reset observation, `observations[t + 1]` follows `actions[t]`."""

    observations: list[Observation]
    actions: list[np.ndarray]        # float64, as the expert gave them
    snapshots: list[Any]             # snapshot(env, obs) per observation, taken before the next step
    success_at: int | None           # actions taken when success was first seen; None: never

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def final(self) -> Observation:
        return self.observations[-1]


def run_expert(env, expert, reset: dict, after_success: int = 0, reach_within: int | None = None,
               snapshot: Callable[[Any, Observation], Any] | None = None, solved_at_reset: bool = False) -> ExpertRun:
    """Reset `env` with `reset`, then step `expert` until `after_success` steps past the first success.

    Without success the episode ends after `reach_within` steps (default: the env's own `max_steps`);
    it never runs past the env's `max_steps`. The corpus gives the env a cap of reach_within +
    after_success, so an episode that succeeds on its last allowed step still gets its frames after
    success; demos and the expert table use the env's cap for both. `snapshot` records simulator state
    the observation does not carry (e.g. MuJoCo's qpos/qvel) while the env still shows that observation.
    `solved_at_reset`: a scene that starts solved is a success after 0 steps (the expert table); recordings
    leave it False, since a clip or demo must show the expert reaching success.
    """
    obs = env.reset(**reset)
    expert.reset(env)
    limit = env.max_steps if reach_within is None else reach_within
    observations, actions = [obs], []
    snapshots = [snapshot(env, obs)] if snapshot else []
    success_at = 0 if solved_at_reset and obs.success else None
    while len(actions) < env.max_steps:
        n = len(actions)
        if success_at is None and n >= limit:
            break
        if success_at is not None and n - success_at >= after_success:
            break
        action = np.asarray(expert.act(obs), dtype=np.float64)
        obs = env.step(action)
        actions.append(action)
        observations.append(obs)
        if snapshot:
            snapshots.append(snapshot(env, obs))
        if success_at is None and obs.success:
            success_at = n + 1
    return ExpertRun(observations, actions, snapshots, success_at)


class WorkerPool:
    """Runs jobs in-process (workers=1) or in a spawn pool (each worker: its own GL context and env).

    `fn` must be a module-level function (the pool pickles it by name) that never raises: a bad episode is
    a result row, not the end of the run. `close()` also frees this process's cached env."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None
        if workers > 1:
            self.pool = shutdown.process_pool(workers)

    def run(self, fn: Callable[[Any], dict], jobs: Iterable) -> Iterator[dict]:
        """Results as they finish (in job order in-process, in completion order in the pool)."""
        if self.pool is None:
            yield from (fn(j) for j in jobs)
            return
        futures = [shutdown.submit(self.pool, fn, j) for j in jobs]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BrokenProcessPool:
            raise SimError("a simulator worker process died (out of memory or a simulator crash); finished "
                           "episodes are kept, rerun the same command to resume") from None
        finally:  # Ctrl-C or an error: drop what has not started; finished episodes are on disk
            for fut in futures:
                fut.cancel()

    def close(self, error: BaseException | None = None) -> None:
        """Wait for running jobs; after a stop (`error` a KeyboardInterrupt, or a signal), end them now."""
        if self.pool is not None:
            shutdown.close_pool(self.pool, error)
            self.pool = None
        close_envs()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)


class ResultLog:
    """Finished jobs as JSON lines, one per job, keyed by `key(row)`; appended and flushed as each finishes."""

    def __init__(self, path: str | os.PathLike, key: Callable[[dict], Any]):
        self.path, self.key = Path(path), key

    def read(self) -> dict[Any, dict]:
        """Rows by key (a later row for the same key wins); a torn last line (crash mid-append) is ignored."""
        out: dict[Any, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    out[self.key(row)] = row
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        return out

    def append(self, row: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

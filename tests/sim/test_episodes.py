"""The shared episode runner (no simulator): the expert loop's stopping rules, the worker pool, the result log,
and the env cache of roboact.sim.suites."""
from __future__ import annotations

import os

import numpy as np
import pytest

from roboact.sim import suites
from roboact.sim.base import Observation, SimError
from roboact.sim.episodes import ResultLog, WorkerPool, run_expert


class CountingEnv:
    """Success from step `success_from` to step `success_until` (exclusive); state = steps taken."""

    def __init__(self, max_steps=20, success_from=5, success_until=10**9, solved_at_reset=False):
        self.max_steps, self.success_from, self.success_until = max_steps, success_from, success_until
        self.solved_at_reset = solved_at_reset
        self.t, self.resets, self.closed = 0, [], False

    def reset(self, **kwargs):
        self.resets.append(kwargs)
        self.t = 0
        return self._obs()

    def step(self, action):
        assert self.t < self.max_steps, "stepped past the env's cap"
        self.t += 1
        return self._obs()

    def close(self):
        self.closed = True

    def _obs(self):
        ok = self.success_from <= self.t < self.success_until or (self.t == 0 and self.solved_at_reset)
        return Observation(rgb={}, proprio=np.zeros(1, np.float32), state=np.full(1, self.t, np.float32), success=ok)


class StepExpert:
    def __init__(self):
        self.reset_with = None

    def reset(self, env):
        self.reset_with = env

    def act(self, obs):
        return np.array([obs.state[0]], dtype=np.float32)


def test_runs_until_frames_after_success_and_keeps_every_observation():
    env, expert = CountingEnv(max_steps=20, success_from=5), StepExpert()
    run = run_expert(env, expert, {"seed": 7}, after_success=3, snapshot=lambda e, o: e.t)
    assert env.resets == [{"seed": 7}] and expert.reset_with is env
    assert run.success_at == 5 and run.steps == 8 and len(run.observations) == 9
    assert run.snapshots == list(range(9))                       # taken while the env showed that observation
    assert [a.dtype for a in run.actions] == [np.float64] * 8 and run.actions[2][0] == 2.0
    assert run.final.success


def test_caps_without_success_and_with_a_late_success():
    never = run_expert(CountingEnv(max_steps=20, success_from=99), StepExpert(), {}, after_success=3)
    assert (never.success_at, never.steps) == (None, 20)
    reach = run_expert(CountingEnv(max_steps=23, success_from=99), StepExpert(), {}, after_success=3, reach_within=20)
    assert (reach.success_at, reach.steps) == (None, 20)
    # success on the last allowed step still gets its frames after success when the env's cap leaves room
    late = run_expert(CountingEnv(max_steps=23, success_from=20), StepExpert(), {}, after_success=3, reach_within=20)
    assert (late.success_at, late.steps) == (20, 23)
    # ... and is cut at the env's cap when it does not
    cut = run_expert(CountingEnv(max_steps=20, success_from=19), StepExpert(), {}, after_success=3)
    assert (cut.success_at, cut.steps) == (19, 20)


def test_lost_success_and_a_scene_that_starts_solved():
    lost = run_expert(CountingEnv(success_from=5, success_until=7), StepExpert(), {}, after_success=3)
    assert lost.success_at == 5 and not lost.final.success
    recorded = run_expert(CountingEnv(success_from=5, solved_at_reset=True), StepExpert(), {}, after_success=0)
    assert (recorded.success_at, recorded.steps) == (5, 5)      # a recording needs the expert to act
    table = run_expert(CountingEnv(success_from=5, solved_at_reset=True), StepExpert(), {}, solved_at_reset=True)
    assert (table.success_at, table.steps) == (0, 0)


def square(x: int) -> dict:
    return {"x": x, "y": x * x, "pid": os.getpid()}


def die(x: int) -> dict:
    os._exit(3)


def test_pool_in_process_and_in_workers_gives_the_same_results():
    with WorkerPool(1) as pool:
        one = list(pool.run(square, range(5)))
    assert [r["y"] for r in one] == [0, 1, 4, 9, 16] and {r["pid"] for r in one} == {os.getpid()}
    with WorkerPool(2) as pool:
        two = list(pool.run(square, range(5)))
    assert sorted(r["y"] for r in two) == [0, 1, 4, 9, 16] and os.getpid() not in {r["pid"] for r in two}


def test_a_dead_worker_is_a_clear_error():
    with WorkerPool(2) as pool, pytest.raises(SimError, match="worker process died.*rerun the same command"):
        list(pool.run(die, range(2)))


def test_result_log_resumes_past_a_torn_line(tmp_path):
    log = ResultLog(tmp_path / "a" / "log.jsonl", key=lambda r: int(r["k"]))
    assert log.read() == {}
    log.append({"k": 1, "status": "ok"})
    log.append({"k": 2, "status": "failed"})
    log.append({"k": 1, "status": "error"})                     # a later row for the same key wins
    with open(log.path, "a") as f:
        f.write('{"k": 3, "sta')                                  # a crash mid-append
    assert log.read() == {1: {"k": 1, "status": "error"}, 2: {"k": 2, "status": "failed"}}


class CacheSuite:
    name = "fake"

    def __init__(self):
        self.made = []

    def make_env(self, task, image_size, cameras, max_steps=None):
        self.made.append((task, image_size, cameras, max_steps))
        return CountingEnv(max_steps=max_steps or 200)


def test_env_cache_reuses_one_env_per_settings_and_closes_the_old_one():
    suite = CacheSuite()
    try:
        a = suites.cached_env(suite, "t", 64, ["c"], max_steps=30)
        assert suites.cached_env(suite, "t", 64, ("c",), max_steps=30) is a and a.max_steps == 30
        b = suites.cached_env(suite, "t", 64, ("c",))
        assert b is not a and a.closed and not b.closed and b.max_steps == 200
        assert suite.made == [("t", 64, ("c",), 30), ("t", 64, ("c",), None)]
    finally:
        suites.close_envs()
    assert b.closed


def test_unknown_suite_names_the_known_ones():
    with pytest.raises(SimError, match="unknown suite 'mujoco'; known: libero_goal, metaworld"):
        suites.get_suite("mujoco")
    assert suites.SIM_SUITES == ("libero_goal", "metaworld")

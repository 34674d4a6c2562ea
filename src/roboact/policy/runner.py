"""One env runner per benchmark (diffusion_policy style): `EnvRunner(cfg).run(agent) -> dict`.

A runner owns one simulator env for one task and rolls an agent out from the same initial states every
time (LIBERO's fixed states, or Meta-World seeds 100000 + i; see suites.py), so successive evaluations of
a policy during training, the expert check and every row of a table face the same scenes. An episode ends
at the first success or at `max_steps` (the paper's "success within 200 timesteps").

Agents are anything with `reset(env)` and `act(obs) -> action`: the scripted experts of `roboact.sim`, or a
`PolicyAgent` (frozen encoder + BC policy). The runner times env and agent separately (per-step cost) and,
when asked, records the first episodes of a run as mp4. One env serves every run (LIBERO takes seconds to
start), so a runner is made once per task and process.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from roboact.policy.suites import get_bench_suite
from roboact.utils.config import check


@dataclass
class RunnerConfig:
    suite: str
    task: str
    episodes: int = 20                 # rollouts: initial states 0 .. episodes-1
    max_steps: int = 200               # the paper's cap
    image_size: int = 128

    def __post_init__(self) -> None:
        suite = get_bench_suite(self.suite)
        check(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        check(suite.max_init_states is None or self.episodes <= suite.max_init_states, "episodes",
              f"{self.suite} has {suite.max_init_states} fixed initial states, asked for {self.episodes} rollouts")
        check(1 <= self.max_steps <= 1000, "max_steps", f"must be in [1, 1000], got {self.max_steps}")
        check(16 <= self.image_size <= 512, "image_size", f"must be in [16, 512], got {self.image_size}")


def make_env(suite: str, task: str, image_size: int, max_steps: int):
    """The suite's env with the policy camera only (SimError naming the task if it fails to start)."""
    bench = get_bench_suite(suite)
    if suite == "metaworld":
        from roboact.sim.metaworld import MetaWorldEnv

        return MetaWorldEnv(task, cameras=(bench.camera,), image_size=image_size, max_steps=max_steps)
    from roboact.sim.libero import make_env as make_libero

    return make_libero(task, cameras=(bench.camera,), image_size=image_size, max_steps=max_steps)


class PolicyAgent:
    """Frozen encoder + BC policy as a closed-loop agent."""

    def __init__(self, encoder, policy, camera: str):
        self.encoder, self.policy, self.camera = encoder, policy, camera

    def reset(self, env) -> None:
        self.encoder.reset()
        self.policy.eval()

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        emb = self.encoder.step(obs.rgb[self.camera])                             # (1, D)
        prop = torch.from_numpy(np.asarray(obs.proprio, np.float32))[None]        # (1, P)
        return self.policy.act(emb, prop).numpy().astype(np.float64)              # (A,)


class ExpertAgent:
    """The suite's scripted expert (true object poses) behind the agent interface."""

    def __init__(self, suite: str, task: str):
        from roboact.sim.suites import get_suite

        self._suite, self.task = get_suite(suite), task
        self._expert = None

    def reset(self, env) -> None:
        self._expert = self._suite.make_expert(self.task)
        self._expert.reset(env)

    def act(self, obs) -> np.ndarray:
        return np.asarray(self._expert.act(obs), dtype=np.float64)


class EnvRunner:
    def __init__(self, cfg: RunnerConfig):
        self.cfg = cfg
        self.suite = get_bench_suite(cfg.suite)
        self._env = None

    @property
    def env(self):
        if self._env is None:
            self._env = make_env(self.cfg.suite, self.cfg.task, self.cfg.image_size, self.cfg.max_steps)
        return self._env

    def run(self, agent, record: int = 0, video_dir: str | Path | None = None, tag: str = "") -> dict:
        """Roll `agent` out once from each initial state; success rate, per-episode rows, timings, and the
        first `record` episodes as mp4 files in `video_dir`."""
        if record and video_dir is None:
            raise ValueError("recording videos needs a video_dir")
        t0 = time.perf_counter()
        rows, videos, env_s, agent_s, steps = [], [], 0.0, 0.0, 0
        for i in range(self.cfg.episodes):
            ep = self._episode(agent, i, record=i < record)
            env_s, agent_s, steps = env_s + ep.pop("env_s"), agent_s + ep.pop("agent_s"), steps + ep["steps"]
            frames = ep.pop("frames")
            if frames:
                videos.append(self._write_video(Path(video_dir), frames, i, ep["success"], tag))
            rows.append(ep)
        wins = sum(r["success"] for r in rows)
        return {"task": self.cfg.task, "episodes": len(rows), "successes": wins,
                "success_rate": wins / len(rows), "per_episode": rows, "videos": videos,
                "seconds": time.perf_counter() - t0, "steps": steps,
                "env_ms_per_step": 1000 * env_s / max(steps, 1), "agent_ms_per_step": 1000 * agent_s / max(steps, 1)}

    def _episode(self, agent, i: int, record: bool) -> dict:
        from roboact.sim.base import SimError

        t = time.perf_counter()
        obs = self.env.reset(**self.suite.reset_kwargs(i))
        frame = obs.rgb[self.suite.camera]
        if float(frame.std()) == 0.0:  # a broken GL/renderer install shows up here, not as a 0% row
            raise SimError(f"{self.cfg.suite}/{self.cfg.task}: camera '{self.suite.camera}' renders a constant "
                           f"image (value {int(frame.flat[0])}); the renderer is broken (MUJOCO_GL?)")
        reset_s, env_s, agent_s, frames = time.perf_counter() - t, 0.0, 0.0, [frame] if record else []
        agent.reset(self.env)
        n = 0
        while not obs.success and n < self.cfg.max_steps:
            t = time.perf_counter()
            action = agent.act(obs)
            t2 = time.perf_counter()
            obs = self.env.step(action)
            env_s, agent_s, n = env_s + time.perf_counter() - t2, agent_s + t2 - t, n + 1
            if record:
                frames.append(obs.rgb[self.suite.camera])
        return {"index": i, **self.suite.reset_kwargs(i), "success": bool(obs.success), "steps": n,
                "reset_s": round(reset_s, 3), "env_s": env_s, "agent_s": agent_s, "frames": frames}

    def _write_video(self, folder: Path, frames: list, i: int, success: bool, tag: str) -> str:
        from roboact.data.video import write_mp4

        name = f"{tag + '_' if tag else ''}ep{i:02d}_{'success' if success else 'fail'}.mp4"
        path = folder / name
        write_mp4(path, np.stack(frames), fps=min(float(self.env.fps), 30.0))
        return str(path)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

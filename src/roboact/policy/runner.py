"""One env runner per benchmark (diffusion_policy style): `EnvRunner(cfg).run(agent) -> dict`.

A runner owns one simulator env for one task and rolls an agent out from the same initial states every
time (LIBERO's fixed states, or Meta-World seeds 100000 + i; see suites.py), so successive evaluations of
a policy during training, the expert check and every row of a table face the same scenes. An episode ends
at the first success or at `max_steps` (the paper's "success within 200 timesteps").

Agents are either one-env agents, `reset(env)` and `act(obs) -> action` (the scripted experts of
`roboact.sim`), or batch agents, `reset_batch(envs)`, `act_batch(obs_list) -> actions` and `keep(rows)`
(`PolicyAgent`: frozen encoder + BC policy). Both run through one episode loop (`_wave`); a one-env agent
is wrapped as a batch agent of one. The runner times env and agent separately (per-step cost) and, when
asked, records the first episodes of a run as mp4. Envs serve every run (LIBERO takes seconds to start),
so a runner is made once per task and process.

Lockstep (`parallel` > 1, batch agents only): `parallel` envs run their episodes side by side and the
agent sees all their frames at once, so the frozen encoder runs one batched forward per control step
instead of one per env. That pays where a batch costs about what one frame costs (a GPU); on one CPU
thread it saves at most ~20% (docs/policy.md has the measured figures), hence the default of 1. An env whose
episode ends (success or cap) leaves the batch; the next wave starts when all have ended. Each episode
still starts from its fixed initial state, so results do not depend on `parallel` except through float
rounding of batched vs single forwards.
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
    parallel: int = 1                  # envs stepped in lockstep for agents with `act_batch` (1: one env)

    def __post_init__(self) -> None:
        suite = get_bench_suite(self.suite)
        check(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        check(suite.max_init_states is None or self.episodes <= suite.max_init_states, "episodes",
              f"{self.suite} has {suite.max_init_states} fixed initial states, asked for {self.episodes} rollouts")
        check(1 <= self.max_steps <= 1000, "max_steps", f"must be in [1, 1000], got {self.max_steps}")
        check(16 <= self.image_size <= 512, "image_size", f"must be in [16, 512], got {self.image_size}")
        check(1 <= self.parallel <= 64, "parallel", f"must be in [1, 64], got {self.parallel}")


def policy_env(suite: str, task: str, image_size: int, max_steps: int):
    """The suite's env (roboact.sim.suites, the one env factory) rendering the policy's camera only;
    a SimError names the task if it fails to start."""
    from roboact.sim.suites import get_suite

    return get_suite(suite).make_env(task, image_size, (get_bench_suite(suite).camera,), max_steps=max_steps)


class PolicyAgent:
    """Frozen encoder + BC policy as a closed-loop agent; `cond` (C,): the instruction's conditioning vector
    of a multi-task policy, the same at every step of every env."""

    def __init__(self, encoder, policy, camera: str, cond: torch.Tensor | None = None):
        self.encoder, self.policy, self.camera = encoder, policy, camera
        self.cond = None if cond is None else cond.reshape(1, -1).float()

    def reset_batch(self, envs) -> None:
        self.encoder.reset()
        self.policy.eval()

    @torch.no_grad()
    def act_batch(self, obs_list) -> np.ndarray:
        """One batched encoder call for all running envs (one env when the runner's parallel is 1)."""
        frames = np.stack([o.rgb[self.camera] for o in obs_list])                  # (B, H, W, 3)
        emb = self.encoder.step(frames)                                            # (B, D)
        prop = torch.from_numpy(np.stack([np.asarray(o.proprio, np.float32) for o in obs_list]))  # (B, P)
        cond = None if self.cond is None else self.cond.expand(len(obs_list), -1)  # (B, C)
        return self.policy(emb, prop, cond=cond)[0].numpy().astype(np.float64)     # (B, A)

    def keep(self, rows: list[int]) -> None:
        """Only the envs at these batch positions go on (the others' episodes ended)."""
        self.encoder.keep(rows)


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


class _OneEnv:
    """A one-env agent (reset/act) behind the batch interface, for waves of one env."""

    def __init__(self, agent):
        self.agent = agent

    def reset_batch(self, envs) -> None:
        self.agent.reset(envs[0])

    def act_batch(self, obs_list) -> np.ndarray:
        return np.asarray(self.agent.act(obs_list[0]))[None]                         # (1, A)

    def keep(self, rows: list[int]) -> None:
        pass


class EnvRunner:
    def __init__(self, cfg: RunnerConfig):
        self.cfg = cfg
        self.suite = get_bench_suite(cfg.suite)
        self._envs: list = []

    @property
    def env(self):
        return self.envs(1)[0]

    def envs(self, n: int) -> list:
        """The first n envs, started on first use."""
        while len(self._envs) < n:
            self._envs.append(policy_env(self.cfg.suite, self.cfg.task, self.cfg.image_size, self.cfg.max_steps))
        return self._envs[:n]

    def run(self, agent, record: int = 0, video_dir: str | Path | None = None, tag: str = "") -> dict:
        """Roll `agent` out once from each initial state; success rate, per-episode rows, timings, and the
        first `record` episodes as mp4 files in `video_dir`."""
        if record and video_dir is None:
            raise ValueError("recording videos needs a video_dir")
        t0 = time.perf_counter()
        k = self.cfg.parallel if hasattr(agent, "act_batch") else 1
        agent = agent if hasattr(agent, "act_batch") else _OneEnv(agent)
        n = self.cfg.episodes
        eps = [ep for w in range(0, n, k) for ep in self._wave(agent, list(range(w, min(w + k, n))), record)]
        rows, videos, env_s, agent_s, steps = [], [], 0.0, 0.0, 0
        for i, ep in enumerate(eps):
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

    def _reset(self, env, i: int):
        from roboact.sim.base import SimError

        obs = env.reset(**self.suite.reset_kwargs(i))
        frame = obs.rgb[self.suite.camera]
        if float(frame.std()) == 0.0:  # a broken GL/renderer install shows up here, not as a 0% row
            raise SimError(f"{self.cfg.suite}/{self.cfg.task}: camera '{self.suite.camera}' renders a constant "
                           f"image (value {int(frame.flat[0])}); the renderer is broken (MUJOCO_GL?)")
        return obs

    def _wave(self, agent, indices: list[int], record: int) -> list[dict]:
        """Episodes `indices` side by side, one env each; the agent acts on all running envs at once.
        Per-episode env/agent seconds are the wave's shares (agent time split evenly over running envs)."""
        envs = self.envs(len(indices))
        eps = []
        for env, i in zip(envs, indices):
            t = time.perf_counter()
            obs = self._reset(env, i)
            eps.append({"index": i, **self.suite.reset_kwargs(i), "success": bool(obs.success), "steps": 0,
                        "reset_s": round(time.perf_counter() - t, 3), "env_s": 0.0, "agent_s": 0.0,
                        "frames": [obs.rgb[self.suite.camera]] if i < record else [], "_obs": obs})
        agent.reset_batch(envs)
        running = [k for k, ep in enumerate(eps) if not ep["success"]]
        while running:
            t = time.perf_counter()
            actions = agent.act_batch([eps[k]["_obs"] for k in running])              # (B, A)
            share = (time.perf_counter() - t) / len(running)
            still = []
            for pos, k in enumerate(running):
                ep = eps[k]
                t = time.perf_counter()
                ep["_obs"] = obs = envs[k].step(actions[pos])
                ep["env_s"] += time.perf_counter() - t
                ep["agent_s"] += share
                ep["steps"] += 1
                if ep["frames"]:
                    ep["frames"].append(obs.rgb[self.suite.camera])
                if obs.success:
                    ep["success"] = True
                elif ep["steps"] < self.cfg.max_steps:
                    still.append(pos)
            if len(still) < len(running):
                agent.keep(still)
            running = [running[pos] for pos in still]
        for ep in eps:
            del ep["_obs"]
        return eps

    def _write_video(self, folder: Path, frames: list, i: int, success: bool, tag: str) -> str:
        from roboact.data.video import write_mp4

        name = f"{tag + '_' if tag else ''}ep{i:02d}_{'success' if success else 'fail'}.mp4"
        path = folder / name
        write_mp4(path, np.stack(frames), fps=min(float(self.env.fps), 30.0))
        return str(path)

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs = []

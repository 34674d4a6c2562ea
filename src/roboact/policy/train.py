"""Behaviour cloning with evaluation rollouts during training (the R3M / MPI harness's loop).

Adam 1e-3, batch 32 drawn uniformly from every demo step, MSE; every `eval_every` steps and at the last
step the policy is rolled out by an `EnvRunner` from the same initial states. We keep the whole curve and
report both the best success over training (what R3M and MPI report) and the final one (what a user would
deploy without peeking at test rollouts).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch

from roboact.policy.bc import BCConfig, BCPolicy, PoolConfig
from roboact.policy.data import DemoSet
from roboact.policy.runner import EnvRunner, PolicyAgent
from roboact.utils.config import check


@dataclass
class BCTrainConfig:
    steps: int = 20000                 # R3M/MPI: 20k
    batch_size: int = 32
    lr: float = 1e-3
    eval_every: int = 5000             # R3M/MPI: 1k (50 rollouts each); we evaluate less often, see docs
    seed: int = 0
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    pool: PoolConfig = field(default_factory=PoolConfig)   # the attention head, for token inputs only

    def __post_init__(self) -> None:
        check(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        check(self.batch_size >= 2, "batch_size", "BatchNorm needs batches of at least 2")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(1 <= self.eval_every, "eval_every", f"must be >= 1, got {self.eval_every}")

    def eval_steps(self) -> list[int]:
        """Steps after which the policy is evaluated: every eval_every, and always the last one."""
        return sorted({*range(self.eval_every, self.steps + 1, self.eval_every), self.steps})


@dataclass
class BCResult:
    curve: list[dict]                  # one row per evaluation: step, success_rate, successes, episodes, loss
    best: float                        # best success rate over the evaluations
    best_step: int
    final: float                       # success rate at the last step
    losses: list[float]                # mean training loss between evaluations
    train_seconds: float
    eval_seconds: float
    policy: BCPolicy
    final_eval: dict                   # the runner's result at the last step (per-episode rows, videos, timings)


def make_policy(data: DemoSet, cfg: BCTrainConfig, cond_dim: int = 0) -> BCPolicy:
    torch.manual_seed(cfg.seed)
    shape = data.input_shape                                                     # (D,) or (n, w)
    tokens = shape[0] if len(shape) == 2 else 0
    policy = BCPolicy(BCConfig(embed_dim=shape[-1], proprio_dim=data.proprio.shape[1],
                               action_dim=data.actions.shape[1], hidden=list(cfg.hidden), n_tokens=tokens,
                               pool=dataclasses.replace(cfg.pool) if tokens else None, cond_dim=cond_dim))
    policy.set_action_stats(data.actions)
    return policy


def train_steps(policy: BCPolicy, opt: torch.optim.Optimizer, data: DemoSet, n: int, batch_size: int,
                gen: torch.Generator, condition: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
    """n optimisation steps on uniformly drawn minibatches; returns the mean loss. `condition`: (task id per
    step (N,), one conditioning vector per task (K, C)) for a multi-task policy."""
    policy.train()
    total = 0.0
    for _ in range(n):
        idx = torch.randint(0, len(data), (batch_size,), generator=gen)          # (B,)
        cond = None if condition is None else condition[1][condition[0][idx]]    # (B, C)
        _, loss = policy(data.inputs(idx), data.proprio[idx], data.actions[idx], cond=cond)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach().item()
    return total / max(n, 1)


def train_bc(data: DemoSet, encoder, runner: EnvRunner, cfg: BCTrainConfig, record: int = 0,
             video_dir=None, progress=None) -> BCResult:
    """Train on `data`, evaluating with `runner`; the last evaluation records its first `record` episodes
    into `video_dir`. `progress(step, result)` is called after each evaluation."""
    if len(data) < cfg.batch_size:
        raise ValueError(f"only {len(data)} demo steps for batches of {cfg.batch_size}")
    policy = make_policy(data, cfg)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    agent = PolicyAgent(encoder, policy, runner.suite.camera)
    curve, losses, done, t_train, t_eval = [], [], 0, 0.0, 0.0
    for at in cfg.eval_steps():
        t0 = time.perf_counter()
        losses.append(train_steps(policy, opt, data, at - done, cfg.batch_size, gen))
        done = at
        t1 = time.perf_counter()
        last = at == cfg.steps
        res = runner.run(agent, record=record if last else 0, video_dir=video_dir, tag=f"step{at}")
        t_train, t_eval = t_train + t1 - t0, t_eval + time.perf_counter() - t1
        curve.append({"step": at, "success_rate": res["success_rate"], "successes": res["successes"],
                      "episodes": res["episodes"], "loss": losses[-1]})
        if progress is not None:
            progress(at, res)
    best = max(curve, key=lambda r: r["success_rate"])  # first of equal maxima: the earliest step
    return BCResult(curve, best["success_rate"], best["step"], curve[-1]["success_rate"], losses, t_train, t_eval,
                    policy.eval(), res)

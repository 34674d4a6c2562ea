"""Lockstep rollouts (several envs, one batched encoder call per step) give the episodes a one-env runner
gives: same initial states, same frames, same outcomes."""
import numpy as np
import pytest

pytest.importorskip("metaworld")
pytestmark = pytest.mark.sim

from roboact.policy.bc import BCConfig, BCPolicy  # noqa: E402
from roboact.policy.encoders import EncoderSettings, RowSpec, build_encoder  # noqa: E402
from roboact.policy.runner import EnvRunner, PolicyAgent, RunnerConfig  # noqa: E402


def rollouts(runner, agent, monkeypatch):
    seen = {}
    monkeypatch.setattr(runner, "_write_video", lambda folder, frames, i, ok, tag: seen.setdefault(i, frames) and "")
    res = runner.run(agent, record=runner.cfg.episodes, video_dir="unused")
    return res, seen


def test_lockstep_rollouts_equal_one_env_rollouts(tiny_checkpoints, tiny_clip_backbone, monkeypatch):
    import torch

    enc = build_encoder(RowSpec("full", "roboact", str(tiny_checkpoints["full"])),
                        EncoderSettings("hf-clip", tiny_clip_backbone.path))
    torch.manual_seed(0)
    policy = BCPolicy(BCConfig(embed_dim=enc.dim, proprio_dim=4, action_dim=4))
    with torch.no_grad():  # a policy that moves the arm, so frames change and episodes differ
        policy.mlp[-1].bias.copy_(torch.tensor([0.5, -0.3, 0.2, 0.0]))
    agent = PolicyAgent(enc, policy, "corner")
    # plate-slide's expert needs ~50 steps, so a 12-step cap ends episodes by the cap; 3 envs, waves of 2
    one = EnvRunner(RunnerConfig("metaworld", "plate-slide-v3", episodes=3, max_steps=12, image_size=32))
    lock = EnvRunner(RunnerConfig("metaworld", "plate-slide-v3", episodes=3, max_steps=12, image_size=32,
                                  parallel=2))
    try:
        a, fa = rollouts(one, agent, monkeypatch)
        b, fb = rollouts(lock, agent, monkeypatch)
    finally:
        one.close()
        lock.close()
    assert [e["steps"] for e in a["per_episode"]] == [e["steps"] for e in b["per_episode"]]
    assert [e["success"] for e in a["per_episode"]] == [e["success"] for e in b["per_episode"]]
    assert len(lock._envs) == 0 and a["steps"] == b["steps"] == 36
    for i in range(3):
        x, y = np.stack(fa[i]).astype(float), np.stack(fb[i]).astype(float)
        assert x.shape == y.shape and np.abs(x - y).mean() < 0.5, i  # batched forwards: float rounding only
        assert np.abs(x[0] - x[-1]).mean() > 1.0  # the arm moved


def test_parallel_is_validated():
    from roboact.utils.config import ConfigError

    with pytest.raises(ConfigError, match="parallel"):
        RunnerConfig("metaworld", "plate-slide-v3", parallel=0)


class ScriptedAgent:
    """The scripted expert on the episodes in `wins`, a frozen arm elsewhere: known outcomes per episode.
    Episodes are numbered in the order the runner starts them, so the count works for any wave size."""

    def __init__(self, wins: set[int]):
        from roboact.sim.suites import get_suite

        self.wins, self.suite, self.started, self.live, self.experts = wins, get_suite("metaworld"), 0, [], {}

    def reset_batch(self, envs) -> None:
        self.live = list(range(self.started, self.started + len(envs)))
        self.started += len(envs)
        for ep, env in zip(self.live, envs):
            self.experts[ep] = self.suite.make_expert("plate-slide-v3")
            self.experts[ep].reset(env)

    def act_batch(self, obs_list) -> np.ndarray:
        return np.stack([np.asarray(self.experts[ep].act(o), dtype=np.float64) if ep in self.wins else np.zeros(4)
                         for ep, o in zip(self.live, obs_list)])

    def keep(self, rows: list[int]) -> None:
        self.live = [self.live[r] for r in rows]


def test_success_counting_with_mixed_outcomes_is_the_same_in_lockstep():
    wins = {0, 2, 3}
    out = {}
    for parallel in (1, 3):                                       # one env; waves of 3 then 1
        runner = EnvRunner(RunnerConfig("metaworld", "plate-slide-v3", episodes=4, max_steps=80, image_size=32,
                                        parallel=parallel))
        try:
            out[parallel] = runner.run(ScriptedAgent(wins))
        finally:
            runner.close()
    for res in out.values():
        assert [e["success"] for e in res["per_episode"]] == [True, False, True, True]
        assert res["successes"] == 3 and res["success_rate"] == 0.75
        assert res["per_episode"][1]["steps"] == 80                # the frozen arm ran into the cap
        assert all(e["steps"] < 80 for i, e in enumerate(res["per_episode"]) if i in wins)
    assert [e["steps"] for e in out[1]["per_episode"]] == [e["steps"] for e in out[3]["per_episode"]]

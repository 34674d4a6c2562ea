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

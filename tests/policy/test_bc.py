import pytest
import torch
import torch.nn.functional as F

from roboact.policy.bc import BCConfig, BCPolicy, PoolConfig
from roboact.policy.suites import PolicyError
from roboact.utils.config import ConfigError


def test_shapes_loss_and_action_scaling():
    torch.manual_seed(0)
    p = BCPolicy(BCConfig(embed_dim=12, proprio_dim=4, action_dim=3))
    assert [m.out_features for m in p.mlp if isinstance(m, torch.nn.Linear)] == [256, 256, 3]
    assert p.input_norm.num_features == 16  # BatchNorm on [embedding; proprio], per feature
    acts = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 0.0]])
    p.set_action_stats(acts)
    assert torch.allclose(p.action_mean, torch.tensor([2.0, 5.0, 0.0]))
    assert torch.allclose(p.action_std, torch.tensor([1.0, 1.0, 1.0]))  # constant dims keep scale 1
    out, loss = p(torch.randn(8, 12), torch.randn(8, 4), torch.zeros(8, 3))
    assert out.shape == (8, 3) and loss.ndim == 0 and loss > 0
    assert p(torch.randn(8, 12), torch.randn(8, 4))[1] is None
    p.eval()
    assert p.act(torch.randn(1, 12), torch.randn(1, 4)).shape == (3,)  # batch of one after training


def test_learns_a_linear_map_and_round_trips(tmp_path):
    torch.manual_seed(0)
    emb, prop = torch.randn(128, 6), torch.randn(128, 2)
    target = torch.cat([emb, prop], 1) @ torch.randn(8, 2)
    p = BCPolicy(BCConfig(6, 2, 2, hidden=[32, 32]))
    p.set_action_stats(target)
    opt = torch.optim.Adam(p.parameters(), 1e-2)
    first = None
    for _ in range(120):
        _, loss = p(emb, prop, target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    p.eval()
    p.save_pretrained(tmp_path / "pol")
    q = BCPolicy.from_pretrained(tmp_path / "pol")
    assert torch.equal(p(emb, prop)[0], q(emb, prop)[0])


def test_bad_shapes_and_configs_are_clear():
    p = BCPolicy(BCConfig(6, 2, 2))
    with pytest.raises(ValueError, match=r"embedding must be \(B, 6\)"):
        p(torch.randn(4, 5), torch.randn(4, 2))
    with pytest.raises(ValueError, match="proprio must be"):
        p(torch.randn(4, 6), torch.randn(4, 3))
    with pytest.raises(ConfigError, match="hidden"):
        BCConfig(6, 2, 2, hidden=[])


def test_loading_a_damaged_policy_names_the_file(tmp_path):
    p = BCPolicy(BCConfig(6, 2, 2))
    p.save_pretrained(tmp_path)
    (tmp_path / "policy.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(PolicyError, match="policy.safetensors"):
        BCPolicy.from_pretrained(tmp_path)


def token_problem(n: int = 5, w: int = 8, count: int = 512, which: int = 2, seed: int = 0):
    """Actions that are a linear map of one particular token; the others are equally distributed noise, so
    only a pool that can find token `which` by its position solves it (a mean or an order-blind pool cannot)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randn(count, n, w, generator=gen)                               # (N, n, w)
    mix = torch.randn(w, 3, generator=torch.Generator().manual_seed(99))           # one map for train and test
    return tokens, torch.randn(count, 2, generator=gen), tokens[:, which] @ mix


def held_out_error(policy, steps: int = 300) -> float:
    """Relative MSE on unseen inputs (1: no better than the mean action) after `steps` full-batch Adam steps."""
    tokens, prop, target = token_problem()
    policy.set_action_stats(target)
    opt = torch.optim.Adam(policy.parameters(), 3e-3)
    for _ in range(steps):
        _, loss = policy(tokens, prop, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    tokens, prop, target = token_problem(count=256, seed=1)
    return (F.mse_loss(policy(tokens, prop)[0], target) / target.var(dim=0, unbiased=False).mean()).item()


def test_attention_pooling_finds_the_token_the_action_depends_on():
    torch.manual_seed(0)
    pooled = BCPolicy(BCConfig(8, 2, 3, hidden=[64, 64], n_tokens=5, pool=PoolConfig(width=32, heads=2)))
    # reference: the same MLP on the tokens' mean cannot tell token 2 from the rest
    mean = _MeanInput(BCPolicy(BCConfig(8, 2, 3, hidden=[64, 64])))
    assert held_out_error(pooled) < 0.1 < 0.5 < held_out_error(mean)


class _MeanInput(torch.nn.Module):
    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def set_action_stats(self, a):
        self.policy.set_action_stats(a)

    def forward(self, tokens, prop, target=None):
        return self.policy(tokens.mean(dim=1), prop, target)


def test_token_policy_shapes_config_and_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = BCConfig(8, 2, 3, n_tokens=5, pool=PoolConfig(width=16, queries=2, heads=4))
    p = BCPolicy(cfg)
    assert p.input_norm.num_features == 2 * 16 + 2          # BatchNorm on [pooled (2 queries x 16); proprio]
    assert p(torch.randn(4, 5, 8), torch.randn(4, 2))[0].shape == (4, 3)
    with pytest.raises(ValueError, match=r"embedding must be \(B, 5, 8\)"):
        p(torch.randn(4, 8), torch.randn(4, 2))
    p.eval()
    p.save_pretrained(tmp_path / "pol")
    q = BCPolicy.from_pretrained(tmp_path / "pol")
    assert q.cfg == cfg and q.cfg.pool == PoolConfig(16, 2, 4)
    x, prop = torch.randn(3, 5, 8), torch.randn(3, 2)
    assert torch.equal(p(x, prop)[0], q(x, prop)[0])
    assert BCConfig(8, 2, 3, n_tokens=5).pool == PoolConfig()               # token inputs get the default head


def test_policy_saved_before_token_inputs_loads_unchanged(tmp_path):
    """A policy.json from before `n_tokens`/`pool` existed (no such keys) is a vector policy, as it was."""
    import json

    p = BCPolicy(BCConfig(6, 2, 2)).eval()
    p.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "policy.json").read_text())
    meta["config"] = {k: meta["config"][k] for k in ("embed_dim", "proprio_dim", "action_dim", "hidden")}
    (tmp_path / "policy.json").write_text(json.dumps(meta))
    q = BCPolicy.from_pretrained(tmp_path)
    assert q.pool is None and q.cfg.n_tokens == 0
    x, prop = torch.randn(3, 6), torch.randn(3, 2)
    assert torch.equal(p(x, prop)[0], q(x, prop)[0])


def test_pool_settings_are_validated():
    with pytest.raises(ConfigError, match="pool: only for token inputs"):
        BCConfig(6, 2, 2, pool=PoolConfig())
    with pytest.raises(ConfigError, match="pool.width: 30 is not divisible by pool.heads=4"):
        PoolConfig(width=30)
    with pytest.raises(ConfigError, match="pool.queries: must be a positive integer"):
        PoolConfig(queries=0)
    with pytest.raises(ConfigError, match="n_tokens"):
        BCConfig(6, 2, 2, n_tokens=-1)

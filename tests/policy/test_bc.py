import pytest
import torch

from roboact.policy.bc import BCConfig, BCPolicy
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

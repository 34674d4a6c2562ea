"""Checkpoint parts on their own: what `roboact train` and the multi-task policy cells resume from."""
import json

import torch

from roboact.train.checkpoint import optimizer_from_parts, optimizer_to_parts


def _stepped_optimizer(seed: int):
    torch.manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(3)) for _ in range(12)]        # ids up to 11: two-digit ids
    opt = torch.optim.AdamW([{"params": params[:5]}, {"params": params[5:], "lr": 0.01}], lr=0.1,
                            betas=(0.8, 0.95))
    for _ in range(2):
        opt.zero_grad()
        sum((p ** 2).sum() for p in params).backward()
        opt.step()
    return params, opt


def test_optimizer_state_round_trips_through_json_and_safetensors_whatever_its_keys():
    params, opt = _stepped_optimizer(0)
    # state a custom optimizer might keep: a python scalar and a tensor under names with dots
    opt.state[params[11]]["ema.count"] = 3
    opt.state[params[11]]["ema.buf"] = torch.full((3,), 0.5)
    tensors, meta = optimizer_to_parts(opt)
    meta = json.loads(json.dumps(meta))                                       # as trainer.json stores it

    fresh_params, fresh = _stepped_optimizer(1)                               # other values, same layout
    optimizer_from_parts(fresh, tensors, meta)
    want, got = opt.state_dict(), fresh.state_dict()
    assert got["param_groups"] == want["param_groups"]
    assert isinstance(got["param_groups"][0]["betas"], tuple)
    assert set(got["state"]) == set(want["state"]) == set(range(12))
    for pid, st in want["state"].items():
        assert set(got["state"][pid]) == set(st), pid
        for k, v in st.items():
            assert torch.equal(got["state"][pid][k], v) if torch.is_tensor(v) else got["state"][pid][k] == v

"""Checkpoint parts on their own: what `roboact train` and the multi-task policy cells resume from."""
import json
import random

import numpy as np
import pytest
import torch

from roboact.models import RoboActCLIP
from roboact.train.checkpoint import (checkpoint_dirs, latest_checkpoint, load_checkpoint, optimizer_from_parts,
                                      optimizer_to_parts, save_checkpoint)
from tests.models.conftest import small_config


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


def test_a_parameter_whose_state_is_only_scalars_round_trips():
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    opt = torch.optim.SGD(params, lr=0.1)                       # plain SGD keeps no tensors
    opt.state[params[1]]["count"] = 7
    tensors, meta = optimizer_to_parts(opt)
    fresh = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2)) for _ in range(2)], lr=0.1)
    optimizer_from_parts(fresh, tensors, json.loads(json.dumps(meta)))
    assert tensors == {} and fresh.state_dict()["state"] == {1: {"count": 7}}


# --- save / load on a small model ---------------------------------------------------------------------------

def _trainer(seed: int = 0, **cfg):
    torch.manual_seed(seed)
    heads = RoboActCLIP(small_config(**cfg))
    opt = torch.optim.AdamW(heads.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return heads, opt, sched


def test_only_finished_checkpoints_count_newest_last(tmp_path):
    assert checkpoint_dirs(tmp_path) == [] and latest_checkpoint(tmp_path) is None     # a run that never saved
    heads, opt, sched = _trainer()
    for step in (9, 10, 11):
        save_checkpoint(tmp_path, step, heads, opt, sched, {"steps": 20}, keep=5)
    root = tmp_path / "checkpoints"
    (root / ".step_00000012.tmp").mkdir()                      # a save that crashed mid-way
    (root / "step_00000013").mkdir()                           # no trainer.json: not finished
    (root / "step_00000014").write_text("")                    # a file, not a checkpoint
    (root / "other_00000015").mkdir()
    (root / "other_00000015" / "trainer.json").write_text("{}")
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_00000009", "step_00000010", "step_00000011"]
    assert latest_checkpoint(tmp_path).name == "step_00000011"


def test_save_keeps_the_newest_two_by_default_and_replaces_a_step_saved_again(tmp_path):
    heads, opt, sched = _trainer()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, heads, opt, sched, {})
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_00000002", "step_00000003"]
    save_checkpoint(tmp_path, 4, heads, opt, sched, {}, keep=1)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_00000004"]
    again = save_checkpoint(tmp_path, 4, heads, opt, sched, {"note": "again"}, keep=1)   # e.g. a stop after a save
    saved = json.loads((again / "config.json").read_text())
    assert saved["train"] == {"note": "again"} and saved["step"] == 4
    assert not list((tmp_path / "checkpoints").glob(".*"))   # no temporary folder left behind


def test_a_save_after_one_that_crashed_midway_succeeds(tmp_path):
    heads, opt, sched = _trainer()
    crashed = tmp_path / "checkpoints" / ".step_00000005.tmp"
    crashed.mkdir(parents=True)
    (crashed / "model.safetensors").write_bytes(b"half")
    assert save_checkpoint(tmp_path, 5, heads, opt, sched, {}).name == "step_00000005"
    assert latest_checkpoint(tmp_path).name == "step_00000005" and not crashed.exists()


def test_load_restores_step_weights_scheduler_and_every_rng(tmp_path):
    heads, opt, sched = _trainer(0)
    opt.zero_grad()
    sum(p.sum() for p in heads.parameters() if p.requires_grad).backward()
    opt.step()
    sched.step()
    torch.manual_seed(5), np.random.seed(6), random.seed(7)
    folder = save_checkpoint(tmp_path, 17, heads, opt, sched, {})
    after = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])

    heads2, opt2, sched2 = _trainer(1)                         # other weights, fresh optimizer, other RNGs
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    assert load_checkpoint(folder, heads2, opt2, sched2) == 17
    assert all(torch.equal(a, b) for a, b in zip(heads.state_dict().values(), heads2.state_dict().values()))
    assert sched2.state_dict() == sched.state_dict() and opt2.param_groups[0]["lr"] == pytest.approx(0.005)
    assert torch.equal(torch.rand(3), after[0]) and np.array_equal(np.random.rand(3), after[1])
    assert [random.random() for _ in range(3)] == after[2]


def test_load_into_a_fresh_model_takes_the_seen_triplets_of_the_run(tmp_path):
    """A run that already registered its training triplets (eq. 19 samples its recombinations from them)
    resumes into a model built fresh, which has none yet."""
    heads, opt, sched = _trainer(0)
    heads.register_seen_triplets(torch.tensor([[0, 1, 2], [1, 0, 3]]))
    folder = save_checkpoint(tmp_path, 3, heads, opt, sched, {})
    fresh, opt2, sched2 = _trainer(0)
    assert fresh.seen_triplets.shape != heads.seen_triplets.shape
    load_checkpoint(folder, fresh, opt2, sched2)
    assert torch.equal(fresh.seen_triplets, heads.seen_triplets)


def test_load_refuses_a_checkpoint_of_another_model_config(tmp_path):
    heads, opt, sched = _trainer(0)
    folder = save_checkpoint(tmp_path, 3, heads, opt, sched, {})
    other, opt2, sched2 = _trainer(0, embed_dim=8)
    with pytest.raises(ValueError, match="checkpoint model config differs from this run's config; resume with "
                                         "the same config, or train into a new --out folder"):
        load_checkpoint(folder, other, opt2, sched2)

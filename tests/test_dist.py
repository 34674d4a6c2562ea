"""roboact.dist: single-process no-ops, env:// init, and real 2-process gloo collectives with autograd."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from roboact import dist

ROWS = (3, 5)  # rank r holds ROWS[r] rows: the gather must handle unequal sizes


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_env(monkeypatch_or_environ, rank: int, world: int, port: int) -> None:
    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for k, v in env.items():
        if isinstance(monkeypatch_or_environ, pytest.MonkeyPatch):
            monkeypatch_or_environ.setenv(k, v)
        else:
            monkeypatch_or_environ[k] = v


def test_single_process_is_a_no_op(no_torchrun_env):
    info = dist.init()
    assert (info.rank, info.world_size, info.backend, info.is_main) == (0, 1, None, True)
    assert not dist.launched() and not dist.is_initialized()
    x = torch.randn(4, 3, requires_grad=True)
    y = dist.all_gather(x)
    assert y is x
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(4, 3))
    dist.barrier()
    assert dist.broadcast_object({"a": 1}) == {"a": 1} and dist.all_gather_object(7) == [7]
    assert list(dist.shard_indices(5)) == [0, 1, 2, 3, 4]
    assert list(dist.shard_indices(5, r=1, world=2)) == [1, 3]


def test_env_init_joins_and_leaves_a_gloo_group(monkeypatch):
    set_env(monkeypatch, 0, 1, free_port())
    with dist.distributed() as info:
        assert dist.is_initialized() and info.backend == "gloo" and info.world_size == 1
        assert dist.init() == info  # idempotent
        dist.barrier()
    assert not dist.is_initialized()


def _worker(rank: int, world: int, port: int) -> None:
    set_env(os.environ, rank, world, port)
    torch.set_num_threads(1)
    info = dist.init()
    try:
        assert (info.rank, info.world_size, info.is_main) == (rank, world, rank == 0)
        _check_gather(rank)
        _check_broadcasts(rank)
        with pytest.raises(ValueError, match="trailing dims differ"):
            dist.all_gather(torch.zeros(2, 3 + rank))
    finally:
        dist.cleanup()


def _check_gather(rank: int) -> None:
    full = torch.arange(sum(ROWS) * 2, dtype=torch.float32).view(-1, 2)          # (8, 2), same on all ranks
    start = sum(ROWS[:rank])
    weights = torch.arange(full.numel(), dtype=torch.float32).view_as(full)
    for sum_grads in (False, True):
        x = full[start:start + ROWS[rank]].clone().requires_grad_(True)           # (ROWS[rank], 2)
        y = dist.all_gather(x, sum_grads=sum_grads)                               # (8, 2)
        assert torch.equal(y, full)
        ((rank + 1) * weights * y).sum().backward()  # a different loss on each rank
        scale = sum(r + 1 for r in range(len(ROWS))) if sum_grads else rank + 1
        assert torch.equal(x.grad, scale * weights[start:start + ROWS[rank]]), (sum_grads, x.grad)
    empty = dist.all_gather(torch.zeros(0, 2))
    assert empty.shape == (0, 2)


def _check_broadcasts(rank: int) -> None:
    assert dist.broadcast_object({"from": rank}) == {"from": 0}
    t = torch.full((3,), float(rank))
    assert dist.broadcast_tensor(t, src=1) is t and torch.equal(t, torch.ones(3))
    assert dist.all_gather_object(rank * 10) == [0, 10]
    assert torch.equal(dist.all_reduce_sum(torch.tensor([rank + 1.0])), torch.tensor([3.0]))
    dist.barrier()


def test_two_process_gloo_collectives_and_gradients():
    # fork: the children inherit the imported modules, which saves seconds over spawn
    mp.start_processes(_worker, args=(2, free_port()), nprocs=2, join=True, start_method="fork")

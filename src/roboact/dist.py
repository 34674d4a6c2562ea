"""Distributed execution, in one place: every roboact program that can span processes goes through here.

Launch with `torchrun` (or `python -m torch.distributed.run`): it sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT, and `init()` joins the process group from them (gloo on CPU, nccl on GPU).
Without those variables everything here is a single-process no-op, so the same code runs unchanged in a
notebook, a test, or one process of a multi-node job.

    info = dist.init()               # DistInfo(rank=0, world_size=1, ...) when not under torchrun
    feats = dist.all_gather(local)   # (sum of local batch sizes, D), gradient flows to `local`
    dist.cleanup()
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as tdist

log = logging.getLogger(__name__)

_ENV_VARS = ("RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    backend: str | None      # None when running as a single process without a process group
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True under torchrun (its environment variables are set), whether or not `init` ran yet."""
    return all(v in os.environ for v in _ENV_VARS)


def is_initialized() -> bool:
    return tdist.is_available() and tdist.is_initialized()


def init(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by torchrun's environment; idempotent; a no-op outside torchrun.

    `backend` defaults to nccl when CUDA is available and gloo otherwise. On GPU each process is pinned to
    cuda:LOCAL_RANK before the group starts, which nccl collectives and `device()` rely on.
    """
    if is_initialized() or not launched():
        return info()
    if not tdist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build, but RANK/WORLD_SIZE are set")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    tdist.init_process_group(backend=backend, init_method="env://",
                             timeout=datetime.timedelta(seconds=timeout_s))
    log.debug("joined process group: rank %d of %d (%s)", rank(), world_size(), backend)
    return info()


def info() -> DistInfo:
    return DistInfo(rank(), world_size(), local_rank(), backend(), device())


def rank() -> int:
    return tdist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return tdist.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    """Index of this process on its node (selects its GPU); 0 outside torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the process that logs, shows progress bars and writes shared files."""
    return rank() == 0


def backend() -> str | None:
    return tdist.get_backend() if is_initialized() else None


def device() -> torch.device:
    """This process's device: cuda:LOCAL_RANK when CUDA is available, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    return torch.device("cpu")


def _comm_device() -> torch.device:
    # nccl only moves CUDA tensors; gloo only CPU ones (for the collectives used here).
    return device() if backend() == "nccl" else torch.device("cpu")


def barrier() -> None:
    """Wait for every rank; no-op for a single process."""
    if not is_initialized():
        return
    if backend() == "nccl":
        tdist.barrier(device_ids=[device().index])
    else:
        tdist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank `src`'s `obj` on every rank (picklable Python objects; keep them small)."""
    if not is_initialized():
        return obj
    box = [obj if rank() == src else None]
    tdist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def broadcast_tensor(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite `t` in place with rank `src`'s values (same shape and dtype on all ranks) and return it."""
    if not is_initialized():
        return t
    buf = t.to(_comm_device())
    tdist.broadcast(buf, src=src)
    if buf.data_ptr() != t.data_ptr():
        t.copy_(buf)
    return t


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    tdist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over ranks (a new tensor; `t` is untouched)."""
    if not is_initialized():
        return t.clone()
    buf = t.detach().clone().to(_comm_device())
    tdist.all_reduce(buf)
    return buf.to(t.device)


def all_gather(x: torch.Tensor, sum_grads: bool = False) -> torch.Tensor:
    """Concatenate every rank's `x` along dim 0, in rank order; ranks may hold different numbers of rows.

    Gradients flow back only to this rank's own slice (the other ranks' rows are constants here; their
    owners compute their gradients). With `sum_grads=False` (the open_clip convention) the local slice
    gets this rank's own loss gradient; when every rank computes the same global loss, DDP's gradient
    averaging then yields exactly d(loss)/d(params). With `sum_grads=True` the incoming gradients are
    summed over ranks first (an all_reduce in backward), which is the exact gradient of the *sum* of the
    per-rank losses - the right choice when each rank computes a different (e.g. local-rows-only) loss.
    Trailing dims and dtype must agree across ranks. Single process: returns `x` itself.
    """
    if not is_initialized() or world_size() == 1:
        return x
    return _GatherVariable.apply(x, sum_grads)


def _gather_shapes(x: torch.Tensor) -> list[tuple[int, ...]]:
    shape = torch.tensor(list(x.shape), dtype=torch.int64, device=_comm_device())
    bufs = [torch.empty_like(shape) for _ in range(world_size())]
    tdist.all_gather(bufs, shape)
    shapes = [tuple(int(v) for v in b.tolist()) for b in bufs]
    if any(s[1:] != shapes[0][1:] for s in shapes):
        raise ValueError(f"all_gather: trailing dims differ across ranks: {shapes}")
    return shapes


class _GatherVariable(torch.autograd.Function):
    """all_gather of tensors whose first dim differs per rank: pad to the largest, gather, trim."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sum_grads: bool) -> torch.Tensor:
        sizes = [s[0] for s in _gather_shapes(x)]
        ctx.sizes, ctx.sum_grads, ctx.rank = sizes, sum_grads, rank()
        rows = max(sizes)
        if rows == 0:
            return x.new_zeros((0, *x.shape[1:]))
        padded = x.new_zeros((rows, *x.shape[1:]))                     # (max_rows, ...)
        padded[: x.shape[0]] = x
        comm = padded.to(_comm_device())
        bufs = [torch.empty_like(comm) for _ in sizes]
        tdist.all_gather(bufs, comm)
        return torch.cat([b[:n] for b, n in zip(bufs, sizes)]).to(x.device)  # (sum(sizes), ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.sum_grads:
            grad = all_reduce_sum(grad.contiguous())
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start: start + ctx.sizes[ctx.rank]], None


def cleanup() -> None:
    """Leave the process group (idempotent)."""
    if is_initialized():
        tdist.destroy_process_group()


@contextlib.contextmanager
def distributed(backend: str | None = None, timeout_s: float = 1800.0) -> Iterator[DistInfo]:
    """`with distributed() as info:` joins the group if launched by torchrun and always leaves it."""
    started_here = not is_initialized()
    di = init(backend, timeout_s)
    try:
        yield di
    finally:
        if started_here:
            cleanup()


def shard_indices(n: int, r: int | None = None, world: int | None = None) -> range:
    """Indices of an n-item list owned by rank `r` (strided, so ranks get near-equal shares)."""
    r = rank() if r is None else r
    world = world_size() if world is None else world
    return range(r, n, world)

"""Training checkpoints that resume exactly, without pickle.

A checkpoint is a folder `step_XXXXXXXX/` with the heads (`model.safetensors` + `config.json`, the same
format `roboact.load` reads), and the trainer state split into tensors (`trainer.safetensors`: optimizer
moments, RNG states) and everything else (`trainer.json`: step, scheduler, optimizer hyper-parameters,
numpy/python RNG). The folder is written under a temporary name and renamed, so a crash never leaves a
half-written checkpoint that looks finished.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from roboact.models.encoder import load_heads, save_heads
from roboact.utils.io import atomic_path, atomic_write_json, read_json

PREFIX = "step_"


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "trainer.json").is_file())


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as (tensors for safetensors, JSON-able rest): no pickle. Also the policy
    benchmark's multi-task cells (roboact.policy.multitask) resume through it."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_parts(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    return tensors, {"numpy": [name, keys.tolist(), pos, has_gauss, gauss], "python": [py[0], list(py[1]), py[2]]}


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    v, state, g = meta["python"]
    random.setstate((v, tuple(state), g))


def save_checkpoint(run_dir: str | Path, step: int, heads, optimizer, scheduler, train_config: dict,
                    keep: int = 2) -> Path:
    from safetensors.torch import save_file

    root = Path(run_dir) / "checkpoints"
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_heads(heads, tmp, extra={"train": train_config, "step": step})
    opt_t, opt_meta = optimizer_to_parts(optimizer)
    rng_t, rng_meta = _rng_state()
    with atomic_path(tmp / "trainer.safetensors") as p:
        save_file({**opt_t, **rng_t}, str(p))
    atomic_write_json(tmp / "trainer.json", {"step": step, "optimizer": opt_meta, "scheduler": scheduler.state_dict(),
                                             "rng": rng_meta})
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: str | Path, heads, optimizer, scheduler) -> int:
    """Restore heads, optimizer, scheduler and RNG states in place; return the step to continue from."""
    from safetensors.torch import load_file

    folder = Path(folder)
    loaded = load_heads(folder)
    if json.dumps(loaded.cfg.__dict__, sort_keys=True, default=str) != json.dumps(heads.cfg.__dict__, sort_keys=True, default=str):
        raise ValueError(f"{folder}: checkpoint model config differs from this run's config; "
                         "resume with the same config, or train into a new --out folder")
    if loaded.seen_triplets.shape != heads.seen_triplets.shape:
        heads.seen_triplets = torch.zeros_like(loaded.seen_triplets)
    heads.load_state_dict(loaded.state_dict(), strict=True)
    tensors = load_file(str(folder / "trainer.safetensors"))
    meta = read_json(folder / "trainer.json")
    optimizer_from_parts(optimizer, tensors, meta["optimizer"])
    scheduler.load_state_dict(meta["scheduler"])
    _set_rng_state(tensors, meta["rng"])
    return int(meta["step"])

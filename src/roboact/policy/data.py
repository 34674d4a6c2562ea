"""Demonstrations as behaviour-cloning data: (embedding, proprio, action) per step, encoded once and cached.

Demos are `roboact demos` files (`<demos>/<suite>/<task>_demo.hdf5`, LIBERO's robomimic layout). Step t of
a demo pairs the observation before action t with that action; the embedding at t is the one the frozen
encoder gives at control step t of a rollout (`FrozenObsEncoder.embed_episode`), so training inputs and
closed-loop inputs match.

Two caches, both safetensors files keyed by an identity hash and the demo file's sha256:
    <cache>/frames/<frame-encoder id>/<demo sha>.safetensors    per-frame features (the expensive stage)
    <cache>/embed/<encoder id>/<demo sha>.safetensors           per-step embeddings of one encoder
Every RoboAct-CLIP checkpoint on the same backbone shares the frame features, so a table of four rows
runs the backbone over the demos once. A rewritten demo file gets a new sha and is re-encoded; a cache
file that cannot be read is recomputed (with a warning), never trusted.

Token inputs: RoboAct's `tokens` ([T, n-1, W], 15 x 256 per step by default) are cached like any embedding,
in float32 (exactly what `step` gives in closed loop; 3x the size of the frame features it is built from).
The backbone's `tokens` are only its frame features gathered by window (`episode_windows`), so nothing more
is cached: the set keeps [N, d] features and [N, n] row indices and gathers a batch's windows on the fly.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from roboact.policy.encoders import FrozenObsEncoder
from roboact.policy.suites import BenchSuite, PolicyError

log = logging.getLogger(__name__)
SAVE_EVERY = 10  # demos encoded between cache writes, so an interruption loses little


def demo_path(demos_dir: str | os.PathLike, suite: str, task: str) -> Path:
    return Path(demos_dir) / suite / f"{task}_demo.hdf5"


def demos_command(suite: str, task: str, n: int, demos_dir: str | os.PathLike) -> str:
    return f"roboact demos --suite {suite} --tasks {task} -n {n} -o {demos_dir}"


@dataclass
class DemoSource:
    """A validated demo file and the demos the benchmark uses from it."""

    path: Path
    sha256: str
    keys: list[str]
    flipped: bool                       # LIBERO's own files store images upside down
    seeds: list[int] = field(default_factory=list)


def open_demos(suite: BenchSuite, task: str, demos_dir: str | os.PathLike, num_demos: int,
               eval_episodes: int) -> DemoSource:
    """Check that the task's demo file exists, is readable, holds enough demos with the fields the policy
    needs, and shares no scene with the evaluation rollouts. Every failure names the file."""
    from roboact.sim.demos import DemoFile
    from roboact.utils.io import sha256_file

    path = demo_path(demos_dir, suite.name, task)
    if not path.is_file():
        raise PolicyError(f"{path}: no demonstrations for {suite.name}/{task}; make them with "
                          f"`{demos_command(suite.name, task, num_demos, demos_dir)}` (or pass --make-demos)")
    f = DemoFile(path)  # DemoError (a ValueError naming file, demo and field) when truncated or malformed
    if len(f) < num_demos:
        raise PolicyError(f"{path}: holds {len(f)} demos, the benchmark needs {num_demos}; extend it with "
                          f"`{demos_command(suite.name, task, num_demos, demos_dir)}` (it resumes)")
    keys = f.keys[:num_demos]
    _check_fields(path, keys[0], suite)
    seeds = [int(f.demo_attrs[k]["seed"]) for k in keys if "seed" in f.demo_attrs[k]]
    clash = sorted(set(seeds) & suite.eval_seeds(eval_episodes))
    if clash:
        raise PolicyError(f"{path}: demos were recorded with seeds {clash[:5]}, which the evaluation rollouts "
                          f"use ({suite.eval_seed_base}+i); regenerate demos with a smaller --seed")
    return DemoSource(path, sha256_file(path), keys, f.flipped, seeds)


def _check_fields(path: Path, key: str, suite: BenchSuite) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        have = sorted(f[f"data/{key}/obs"])
        for name in (suite.image_key, *suite.proprio_keys):
            if name not in have:
                raise PolicyError(f"{path}: data/{key}/obs has no '{name}' (has {', '.join(have)}); the "
                                  f"{suite.name} policy reads camera '{suite.camera}' and {suite.proprio_keys}")
        img = f[f"data/{key}/obs/{suite.image_key}"]
        if img.ndim != 4 or img.shape[-1] != 3 or img.dtype != np.uint8:
            raise PolicyError(f"{path}: obs/{suite.image_key} must be uint8 [T, H, W, 3], "
                              f"got {img.dtype} {img.shape}")


def read_fields(src: DemoSource, key: str, fields: list[str]) -> dict[str, np.ndarray]:
    """Selected fields of one demo, without decoding the others (images are large)."""
    import h5py

    from roboact.sim.demos import DemoError

    out = {}
    try:
        with h5py.File(src.path, "r") as f:
            g = f[f"data/{key}"]
            for name in fields:
                arr = g[name][()]
                out[name] = np.ascontiguousarray(arr[:, ::-1]) if (src.flipped and arr.ndim == 4) else arr
    except (OSError, KeyError) as e:  # a chunk that cannot be read: truncated or corrupt file
        raise DemoError(f"{src.path}: data/{key}: cannot read {fields} (truncated or corrupt?): {e}") from None
    return out


# --- the feature cache -----------------------------------------------------------------------------
def demo_cache_key(identity: dict) -> str:
    """Folder name of one encoder's demo features: sha256 of its identity as plain sorted JSON, 16 hex digits
    (not the feature cache's `data.features.identity_hash`, which serialises compactly: folders written so
    far keep their names)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class DemoFeatureCache:
    """Per-demo tensors in one safetensors file per (identity, demo file); see the module docstring."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, level: str, identity: dict, demo_sha: str) -> Path:
        return self.root / level / demo_cache_key(identity) / f"{demo_sha[:16]}.safetensors"

    def load(self, level: str, identity: dict, demo_sha: str) -> dict[str, torch.Tensor]:
        from safetensors import safe_open

        p = self.path(level, identity, demo_sha)
        if not p.is_file():
            return {}
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("identity") != json.dumps(identity, sort_keys=True) or meta.get("demo_sha256") != demo_sha:
                    log.warning("%s: cache entry made for another encoder or demo file; recomputing", p)
                    return {}
                return {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # truncated or corrupt cache file: recompute rather than trust it
            log.warning("%s: unreadable cache file (%s); recomputing", p, e)
            return {}

    def save(self, level: str, identity: dict, demo_sha: str, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        from roboact.utils.io import atomic_path

        meta = {"identity": json.dumps(identity, sort_keys=True), "demo_sha256": demo_sha}
        with atomic_path(self.path(level, identity, demo_sha)) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)

    def get_or_compute(self, level: str, identity: dict, demo_sha: str, keys: list[str],
                       compute: Callable[[str], torch.Tensor], desc: str = "") -> dict[str, torch.Tensor]:
        """Tensors for `keys`: cached ones read, missing ones computed (and written every few demos)."""
        from tqdm import tqdm

        have = self.load(level, identity, demo_sha)
        missing = [k for k in keys if k not in have]
        if missing:
            for i, k in enumerate(tqdm(missing, desc=desc or level, unit="demo", leave=False,
                                       disable=len(missing) < 3), 1):
                have[k] = compute(k).float().contiguous()
                if i % SAVE_EVERY == 0 or i == len(missing):
                    self.save(level, identity, demo_sha, have)
        return {k: have[k] for k in keys}


# --- the BC dataset --------------------------------------------------------------------------------
@dataclass
class DemoSet:
    """Every step of the used demos: embeddings (N, D) or (N, n, w), proprio (N, P), actions (N, A), demo index
    (N,). With `windows` (N, n), step i's input is embeddings[windows[i]] (frame features gathered by window)."""

    embeddings: torch.Tensor
    proprio: torch.Tensor
    actions: torch.Tensor
    episode: torch.Tensor
    source: DemoSource
    windows: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """The policy inputs of steps `idx`: (B, D) or (B, n, w)."""
        return self.embeddings[idx if self.windows is None else self.windows[idx]]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs(torch.zeros(1, dtype=torch.long)).shape[1:])


def encode_demos(encoder: FrozenObsEncoder, src: DemoSource, suite: BenchSuite,
                 cache: DemoFeatureCache) -> dict[str, torch.Tensor]:
    """Per-step embeddings of every used demo, through both cache levels (frames only if needed); for an
    encoder with `episode_windows`, the frame features themselves (its windows are gathered later)."""
    ident = encoder.identity()
    gathered = encoder.episode_windows(1) is not None
    have = {} if gathered else cache.load("embed", ident, src.sha256)
    if all(k in have for k in src.keys):
        return {k: have[k] for k in src.keys}

    def frames(key: str) -> torch.Tensor:
        return encoder.frame_features(read_fields(src, key, [f"obs/{suite.image_key}"])[f"obs/{suite.image_key}"])

    feats = cache.get_or_compute("frames", encoder.frame_identity(), src.sha256, src.keys, frames,
                                 desc=f"frame features {src.path.stem}")
    if gathered:
        return feats
    return cache.get_or_compute("embed", ident, src.sha256, src.keys, lambda k: encoder.embed_episode(feats[k]),
                                desc=f"embeddings {src.path.stem}")


def load_demo_set(encoder: FrozenObsEncoder, src: DemoSource, suite: BenchSuite, cache: DemoFeatureCache) -> DemoSet:
    emb = encode_demos(encoder, src, suite, cache)
    embs, props, acts, eps, wins, offset = [], [], [], [], [], 0
    for i, key in enumerate(src.keys):
        low = read_fields(src, key, ["actions", *(f"obs/{k}" for k in suite.proprio_keys)])
        prop = np.concatenate([np.asarray(low[f"obs/{k}"], np.float32).reshape(len(low["actions"]), -1)
                               for k in suite.proprio_keys], axis=1)                 # (T, P)
        if prop.shape[1] != suite.proprio_dim or low["actions"].shape[1] != suite.action_dim:
            raise PolicyError(f"{src.path}: data/{key}: proprio {prop.shape[1]}-d / actions "
                              f"{low['actions'].shape[1]}-d, {suite.name} expects {suite.proprio_dim} / "
                              f"{suite.action_dim}")
        if len(emb[key]) != len(prop):
            raise PolicyError(f"{src.path}: data/{key}: {len(emb[key])} cached embeddings for {len(prop)} steps")
        windows = encoder.episode_windows(len(prop))                                  # (T, n) or None
        if windows is not None:
            wins.append(windows + offset)
        offset += len(prop)
        embs.append(emb[key])
        props.append(torch.from_numpy(prop))
        # the env clips actions to [-1, 1]; scripted experts may ask for more, so learn what is executed
        acts.append(torch.from_numpy(np.clip(low["actions"], -1.0, 1.0).astype(np.float32)))
        eps.append(torch.full((len(prop),), i, dtype=torch.long))
    return DemoSet(torch.cat(embs), torch.cat(props), torch.cat(acts), torch.cat(eps), src,
                   torch.cat(wins) if wins else None)

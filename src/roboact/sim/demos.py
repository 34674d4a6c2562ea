"""Demonstrations in LIBERO's / robomimic's HDF5 layout, so official LIBERO demos and ours read the same way.

Layout (one file per task, LIBERO names it `<task>_demo.hdf5`):

    data/                       attrs: env_name, env_args (JSON), problem_info (JSON, holds the language
                                       instruction), language_instruction, bddl_file_name, bddl_file_content,
                                       macros_image_convention, num_demos, total
    data/demo_<i>/              attrs: num_samples (= T), init_state, seed, plus generator notes
        actions     float64 [T, A]     action taken at step t
        states      float64 [T, S]     flattened simulator state before action t (replays exactly)
        rewards     float64 [T]        sparse success reward after action t
        dones       uint8   [T]        1 on the last step
        robot_states float64 [T, 9]    gripper qpos (2), eef pos (3), eef quat (4), as LIBERO
        obs/<key>               [T, ...] observation before action t: agentview_rgb (uint8 [T, H, W, 3]),
                                       eye_in_hand_rgb (optional), ee_pos, ee_ori, ee_states,
                                       gripper_states, joint_states

Images: LIBERO's official files hold robosuite's raw renders, vertically flipped ("opengl" image
convention); ours are right way up ("opencv"), and say so in `macros_image_convention`. The reader returns
right-way-up images for both. Writes go through a temporary file and a rename, so a crash never leaves a
half-written demo file; the reader checks the structure and names the file, demo and field that are wrong.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from roboact.utils.io import atomic_path

FORMAT_VERSION = 1
IMAGE_KEYS = ("agentview_rgb", "eye_in_hand_rgb")
REQUIRED = ("actions", "states", "rewards", "dones")


class DemoError(ValueError):
    """A demo file is missing, truncated, corrupt or malformed; the message names the file and the field."""


@dataclass
class Episode:
    """One demonstration: T steps, each the observation before an action and the action taken."""

    actions: np.ndarray                       # [T, A]
    states: np.ndarray                        # [T, S]
    rewards: np.ndarray                       # [T]
    dones: np.ndarray                         # [T]
    obs: dict[str, np.ndarray]                # key -> [T, ...]
    robot_states: np.ndarray | None = None    # [T, 9]
    attrs: dict[str, Any] = field(default_factory=dict)   # seed, init_state, expert notes

    def __post_init__(self) -> None:
        t = len(self.actions)
        if t == 0:
            raise DemoError("episode has no steps")
        arrays = {"states": self.states, "rewards": self.rewards, "dones": self.dones,
                  **{f"obs/{k}": v for k, v in self.obs.items()}}
        if self.robot_states is not None:
            arrays["robot_states"] = self.robot_states
        for name, arr in arrays.items():
            if len(arr) != t:
                raise DemoError(f"episode field {name} has {len(arr)} steps, actions have {t}")

    @property
    def num_samples(self) -> int:
        return len(self.actions)


def _json_attr(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def _write_demo(group, ep: Episode, compress: bool) -> None:
    group.attrs["num_samples"] = ep.num_samples
    for k, v in ep.attrs.items():
        if v is not None:
            group.attrs[k] = _json_attr(v)
    group.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float64))
    group.create_dataset("states", data=np.asarray(ep.states, dtype=np.float64))
    group.create_dataset("rewards", data=np.asarray(ep.rewards, dtype=np.float64))
    group.create_dataset("dones", data=np.asarray(ep.dones, dtype=np.uint8))
    if ep.robot_states is not None:
        group.create_dataset("robot_states", data=np.asarray(ep.robot_states, dtype=np.float64))
    obs = group.create_group("obs")
    for key, arr in ep.obs.items():
        arr = np.asarray(arr)
        if arr.ndim == 4 and compress:  # images: one chunk per frame, gzip (readers need nothing special)
            obs.create_dataset(key, data=arr, chunks=(1, *arr.shape[1:]), compression="gzip",
                               compression_opts=4)
        else:
            obs.create_dataset(key, data=arr)


def _write_file_attrs(data, attrs: dict[str, Any], num_demos: int, total: int) -> None:
    for k, v in attrs.items():
        data.attrs[k] = _json_attr(v)
    data.attrs.setdefault("macros_image_convention", "opencv")
    data.attrs["roboact_format_version"] = FORMAT_VERSION
    data.attrs["num_demos"] = num_demos
    data.attrs["total"] = total


def write_demos(path: str | os.PathLike, episodes: Iterable[Episode], attrs: dict[str, Any],
                compress: bool = True) -> Path:
    """Write episodes as data/demo_0..demo_{N-1} into a new file, atomically."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            n = total = 0
            for ep in episodes:
                _write_demo(data.create_group(f"demo_{n}"), ep, compress)
                n, total = n + 1, total + ep.num_samples
            _write_file_attrs(data, attrs, n, total)
    return path


def merge_demos(dest: str | os.PathLike, sources: list[tuple[str | os.PathLike, str]],
                attrs: dict[str, Any]) -> Path:
    """Copy demos `(file, demo_key)` in order into a new file at `dest` as demo_0..; atomic.

    Copies HDF5 groups as they are (no decode/re-encode of images), so merging shards is cheap.
    `dest` may be one of the sources: the new file is written beside it and renamed over it at the end.
    """
    import h5py

    dest = Path(dest)
    with atomic_path(dest) as tmp:
        with h5py.File(tmp, "w") as out:
            data = out.create_group("data")
            total = 0
            for i, (src, key) in enumerate(sources):
                with _open(src) as f:
                    _check_demo(f, key, src)
                    f.copy(f[f"data/{key}"], data, name=f"demo_{i}")
                    total += int(f[f"data/{key}"].attrs["num_samples"])
            _write_file_attrs(data, attrs, len(sources), total)
    return dest


def _open(path: str | os.PathLike):
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DemoError(f"{p}: demo file not found")
    if p.stat().st_size == 0:
        raise DemoError(f"{p}: demo file is empty")
    try:
        return h5py.File(p, "r")
    except OSError as e:  # truncated, corrupt or not HDF5 at all
        raise DemoError(f"{p}: not a readable HDF5 file (truncated or corrupt?): {e}") from None


def _check_demo(f, key: str, path) -> int:
    """Validate one demo group; returns T. Reads shapes only, no data."""
    where = f"{path}: data/{key}"
    if f"data/{key}" not in f:
        raise DemoError(f"{where}: demo missing")
    g = f[f"data/{key}"]
    for name in REQUIRED:
        if name not in g:
            raise DemoError(f"{where}: field '{name}' missing")
    if "obs" not in g:
        raise DemoError(f"{where}: group 'obs' missing")
    t = g["actions"].shape[0]
    if "num_samples" in g.attrs and int(g.attrs["num_samples"]) != t:
        raise DemoError(f"{where}: num_samples={int(g.attrs['num_samples'])} but actions has {t} steps")
    fields = [*(n for n in REQUIRED), *(f"obs/{k}" for k in g["obs"])]
    for name in fields:
        if g[name].shape[:1] != (t,):
            raise DemoError(f"{where}: field '{name}' has shape {g[name].shape}, expected {t} steps")
    return t


def _demo_keys(f, path) -> list[str]:
    if "data" not in f:
        raise DemoError(f"{path}: no 'data' group (not a robomimic/LIBERO demo file)")
    keys = [k for k in f["data"] if k.startswith("demo_")]
    try:
        return sorted(keys, key=lambda k: int(k.split("_", 1)[1]))
    except ValueError:
        raise DemoError(f"{path}: demo group names must be demo_<int>, got {keys}") from None


def _decode_attr(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v.item() if isinstance(v, np.generic) else v


class DemoFile:
    """A validated demo file. `DemoFile(path).episode("demo_0")` returns an Episode with upright images."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _open(self.path) as f:
            self.keys = _demo_keys(f, self.path)
            self.lengths = {k: _check_demo(f, k, self.path) for k in self.keys}
            self.attrs = {k: _decode_attr(v) for k, v in f["data"].attrs.items()}
            self.demo_attrs = {k: {a: _decode_attr(v) for a, v in f[f"data/{k}"].attrs.items()}
                               for k in self.keys}
        # LIBERO's own files carry no convention attribute and are robosuite-default "opengl" (flipped).
        self.flipped = self.attrs.get("macros_image_convention", "opengl") == "opengl"

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def instruction(self) -> str:
        info = self.attrs.get("problem_info", {})
        return self.attrs.get("language_instruction") or (info.get("language_instruction", "")
                                                          if isinstance(info, dict) else "")

    def episode(self, key: str) -> Episode:
        if key not in self.lengths:
            raise DemoError(f"{self.path}: no demo {key!r} (have {len(self.keys)}: {', '.join(self.keys[:5])}...)")
        with _open(self.path) as f:
            g = f[f"data/{key}"]
            try:
                obs = {k: self._upright(k, g[f"obs/{k}"][()]) for k in g["obs"]}
                arrays = {n: g[n][()] for n in REQUIRED}
                robot = g["robot_states"][()] if "robot_states" in g else None
            except OSError as e:  # a chunk that cannot be read: truncated or corrupt data
                raise DemoError(f"{self.path}: data/{key}: data unreadable (truncated or corrupt?): {e}") from None
        return Episode(obs=obs, robot_states=robot, attrs=self.demo_attrs[key], **arrays)

    def __iter__(self) -> Iterator[Episode]:
        return (self.episode(k) for k in self.keys)

    def _upright(self, key: str, arr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(arr[:, ::-1]) if self.flipped and arr.ndim == 4 else arr


def read_demos(path: str | os.PathLike) -> DemoFile:
    return DemoFile(path)

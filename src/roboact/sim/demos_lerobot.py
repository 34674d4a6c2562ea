"""Our demonstrations (`<root>/<suite>/<task>_demo.hdf5`, written by `roboact demos`) as one LeRobot v3.0
dataset per suite, `<root>/lerobot/<suite>/`, for users who train with LeRobot.

Per demo one episode, per frame (the observation before action t, as in the HDF5 files):
    observation.images.<camera>   every obs/<camera>_rgb image stream, upright, as an mp4 per camera
    observation.state             float32: the fields whose concatenation is the env's proprio
                                  (roboact.policy.suites: LIBERO joint_states + gripper_states, 9-d;
                                  Meta-World ee_pos + gripper_states, 4-d), so a policy trained on it
                                  reads what our env gives it
    action                        float32 [A], the action taken
    next.reward, next.done        the HDF5 rewards/dones (after action t)
    task                          the demo file's language instruction (meta/tasks.parquet)

The HDF5 files stay the source of truth; the dataset is rebuilt from them whenever they change (their
paths, sizes and modification times are recorded in meta/roboact_source.json) and skipped otherwise.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from roboact.sim.demos import DemoError, DemoFile

log = logging.getLogger(__name__)

SOURCE_RECORD = "meta/roboact_source.json"
FORMAT = 1   # bump when the export changes, so older exports are rebuilt
ACTION_NAMES = {"libero_goal": ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"],
                "metaworld": ["dx", "dy", "dz", "gripper"]}


def lerobot_dir(root: str | os.PathLike, suite: str) -> Path:
    return Path(root) / "lerobot" / suite


def export_lerobot(root: str | os.PathLike, suite: str, progress: bool = True) -> Path:
    """Write (or keep, when up to date) `<root>/lerobot/<suite>` from `<root>/<suite>/*_demo.hdf5`."""
    from tqdm import tqdm

    from roboact.data.lerobot.dataset import LeRobotError
    from roboact.data.lerobot.writer import LeRobotWriter
    from roboact.utils.io import atomic_write_json, read_json

    root = Path(root)
    files = sorted((root / suite).glob("*_demo.hdf5"))
    if not files:
        raise DemoError(f"{root / suite}: no <task>_demo.hdf5 files to export")
    out = lerobot_dir(root, suite)
    record = {"format": FORMAT, "files": [_stamp(root, f) for f in files]}
    try:
        if read_json(out / SOURCE_RECORD) == record:
            log.info("LeRobot dataset %s is up to date with %d demo files", out, len(files))
            return out
    except (FileNotFoundError, ValueError):
        pass
    demos = [DemoFile(f) for f in files]
    layout = _layout(suite, demos)
    total = sum(len(d) for d in demos)
    with LeRobotWriter(out, fps=layout["fps"], features=layout["features"], cameras=list(layout["cameras"]),
                       robot_type=layout["robot_type"]) as w, \
            tqdm(total=total, unit="demo", desc=f"LeRobot {suite}", disable=not progress) as bar:
        for f in demos:
            for key in f.keys:
                ep, where = f.episode(key), f"{f.path}: data/{key}"
                try:
                    w.add_episode(_values(ep, layout, where),
                                  {cam: ep.obs[obs_key] for cam, obs_key in layout["cameras"].items()},
                                  f.instruction)
                except LeRobotError as e:
                    raise DemoError(f"{where}: {e}") from None
                bar.update(1)
    atomic_write_json(out / SOURCE_RECORD, record)
    log.info("wrote LeRobot v3.0 dataset %s: %d episodes from %d demo files", out, total, len(files))
    return out


def _stamp(root: Path, f: Path) -> list:
    st = f.stat()
    return [os.path.relpath(f, root), st.st_size, st.st_mtime_ns]


def _layout(suite: str, demos: list[DemoFile]) -> dict:
    """Cameras, features, fps and robot of the dataset, from the first demo; every file must agree."""
    from roboact.policy.suites import get_bench_suite

    state_keys = get_bench_suite(suite).proprio_keys
    first = demos[0]
    ep = first.episode(first.keys[0])
    cams = {f"observation.images.{k.removesuffix('_rgb')}": k for k, v in ep.obs.items() if v.ndim == 4}
    if not cams:
        raise DemoError(f"{first.path}: data/{first.keys[0]} has no image stream (obs/<camera>_rgb) to export")
    missing = [k for k in state_keys if k not in ep.obs]
    if missing:
        raise DemoError(f"{first.path}: data/{first.keys[0]}: obs/{missing[0]} missing (observation.state "
                        f"is {' + '.join(state_keys)})")
    dims = {k: ep.obs[k].reshape(len(ep.obs[k]), -1).shape[1] for k in state_keys}
    fps_values = {round(float(a.get("fps", 0.0)), 6) for d in demos for a in d.demo_attrs.values()}
    if len(fps_values) != 1 or next(iter(fps_values)) <= 0 or not float(next(iter(fps_values))).is_integer():
        raise DemoError(f"{first.path}: the demos' fps attributes {sorted(fps_values)} are not one positive "
                        "integer (LeRobot needs one integer fps per dataset)")
    for d in demos[1:]:
        obs = d.episode(d.keys[0]).obs
        if {k for k, v in obs.items() if v.ndim == 4} != set(cams.values()):
            raise DemoError(f"{d.path}: image streams {sorted(k for k, v in obs.items() if v.ndim == 4)} differ "
                            f"from {first.path}'s {sorted(cams.values())}")
    action_dim = ep.actions.shape[1]
    names = ACTION_NAMES.get(suite)
    features = {
        "observation.state": {"dtype": "float32", "shape": [sum(dims.values())],
                              "names": [f"{k}_{i}" for k in state_keys for i in range(dims[k])]},
        "action": {"dtype": "float32", "shape": [action_dim],
                   "names": names if names and len(names) == action_dim else None},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
    }
    return {"cameras": cams, "features": features, "state_keys": state_keys, "fps": int(next(iter(fps_values))),
            "robot_type": str(first.attrs.get("embodiment", "") or "")}


def _values(ep, layout: dict, where: str) -> dict[str, np.ndarray]:
    t = ep.num_samples
    try:
        state = np.concatenate([ep.obs[k].reshape(t, -1) for k in layout["state_keys"]], axis=1)
    except KeyError as e:
        raise DemoError(f"{where}: obs/{e.args[0]} missing (observation.state needs it)") from None
    return {"observation.state": state, "action": ep.actions, "next.reward": ep.rewards,
            "next.done": ep.dones.astype(bool)}

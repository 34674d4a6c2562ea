"""`roboact demos --format lerobot`: our HDF5 demonstrations as a LeRobot v3.0 dataset. Round trip through
our reader (same frames within codec error, actions, states and instructions), rebuild only when the demos
change, curate the export, and - where a Python with `lerobot` is named - LeRobot's own loader."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")
pytest.importorskip("pyarrow")

from roboact.data.curate.pipeline import CurateConfig, curate  # noqa: E402
from roboact.data.lerobot.dataset import LeRobotDataset  # noqa: E402
from roboact.sim.demo_gen import DemosConfig, generate_demos  # noqa: E402
from roboact.sim.demos import DemoError, Episode, write_demos  # noqa: E402
from roboact.sim.demos_lerobot import export_lerobot  # noqa: E402
from roboact.utils.config import ConfigError  # noqa: E402
from tests.sim.test_demos import FakeSuite, fake_suite  # noqa: E402,F401  (fixture)

TASKS = {"put_the_bowl_on_the_plate": "put the bowl on the plate", "turn_on_the_stove": "turn on the stove"}
AGENT, WRIST = "observation.images.agentview", "observation.images.eye_in_hand"


def _colour(task_i: int, demo: int) -> np.ndarray:
    return np.array([40 + 150 * task_i, 60 + 60 * demo, 200 - 50 * demo], np.uint8)


def _episode(task_i: int, demo: int, t: int) -> Episode:
    rng = np.random.default_rng(10 * task_i + demo)
    ramp = np.linspace(0, 30, 32).astype(np.uint8)[None, :, None, None]      # a smooth, codec-friendly image
    agent = (np.broadcast_to(_colour(task_i, demo), (t, 32, 32, 3)) + ramp).astype(np.uint8)
    dones = np.zeros(t, np.uint8)
    dones[-1] = 1
    return Episode(actions=rng.uniform(-1, 1, (t, 7)), states=rng.normal(size=(t, 11)),
                   rewards=np.r_[np.zeros(t - 1), 1.0], dones=dones, robot_states=rng.normal(size=(t, 9)),
                   obs={"agentview_rgb": agent, "eye_in_hand_rgb": 255 - agent,
                        "joint_states": rng.normal(size=(t, 7)), "gripper_states": rng.normal(size=(t, 2)),
                        "ee_pos": rng.normal(size=(t, 3))},
                   attrs={"seed": demo, "fps": 20.0})


def _demos(root: Path) -> dict[tuple[int, int], Episode]:
    eps = {}
    for i, (task, text) in enumerate(TASKS.items()):
        mine = [_episode(i, d, 9 + 3 * d) for d in range(2)]
        eps.update({(i, d): e for d, e in enumerate(mine)})
        write_demos(root / "libero_goal" / f"{task}_demo.hdf5", mine,
                    {"problem_info": {"language_instruction": text}, "suite": "libero_goal", "task_name": task,
                     "embodiment": "panda", "macros_image_convention": "opencv"})
    return eps


def test_round_trip_frames_actions_states_and_instructions(tmp_path):
    eps = _demos(tmp_path)
    out = export_lerobot(tmp_path, "libero_goal", progress=False)
    assert out == tmp_path / "lerobot" / "libero_goal"
    ds = LeRobotDataset(out)
    assert (ds.version, ds.fps, ds.robot_type) == ("v3.0", 20.0, "panda")
    assert sorted(ds.video_keys) == [AGENT, WRIST] and ds.tasks == dict(enumerate(TASKS.values()))
    episodes = ds.episodes()
    assert [e.length for e in episodes] == [9, 12, 9, 12]
    task_ids = ds.task_indices(episodes)
    for ep, (task_i, demo) in zip(episodes, [(0, 0), (0, 1), (1, 0), (1, 1)]):
        src = eps[(task_i, demo)]
        assert task_ids[ep.index] == [task_i] and ep.tasks == [list(TASKS.values())[task_i]]
        fr = ds.frames(ep)
        np.testing.assert_array_equal(fr["action"], src.actions.astype(np.float32))
        np.testing.assert_array_equal(fr["observation.state"],
                                      np.concatenate([src.obs["joint_states"], src.obs["gripper_states"]], 1)
                                      .astype(np.float32))
        assert fr["frame_index"].tolist() == list(range(ep.length)) and fr["next.done"][-1]
        np.testing.assert_allclose(fr["timestamp"], np.arange(ep.length) / 20, atol=1e-6)
        for key, obs_key in ((AGENT, "agentview_rgb"), (WRIST, "eye_in_hand_rgb")):
            got = ds.video_frames(ep, key, fr["timestamp"]).astype(int)
            err = np.abs(got - src.obs[obs_key].astype(int))
            assert err.mean() < 2 and err.max() <= 12, (key, ep.index, err.mean(), err.max())
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["observation.state"]["names"][-2:] == ["gripper_states_0", "gripper_states_1"]
    assert info["total_frames"] == 42 and info["splits"] == {"train": "0:4"}
    stats = json.loads((out / "meta" / "stats.json").read_text())
    all_actions = np.concatenate([eps[k].actions for k in sorted(eps)]).astype(np.float32)
    np.testing.assert_allclose(stats["action"]["mean"], all_actions.mean(0), atol=1e-5)
    assert np.array(stats[AGENT]["mean"]).shape == (3, 1, 1) and stats[AGENT]["count"] == [42]


def test_export_is_rebuilt_only_when_the_demos_change(tmp_path):
    _demos(tmp_path)
    out = export_lerobot(tmp_path, "libero_goal", progress=False)
    info = out / "meta" / "info.json"
    before = info.stat().st_mtime_ns
    export_lerobot(tmp_path, "libero_goal", progress=False)
    assert info.stat().st_mtime_ns == before
    write_demos(tmp_path / "libero_goal" / "turn_on_the_stove_demo.hdf5", [_episode(1, 0, 5)],
                {"problem_info": {"language_instruction": "turn on the stove"}, "suite": "libero_goal",
                 "task_name": "turn_on_the_stove", "embodiment": "panda"})
    export_lerobot(tmp_path, "libero_goal", progress=False)
    assert json.loads(info.read_text())["total_episodes"] == 3
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]   # no temporary folder left


def test_export_then_curate_gives_one_clip_per_demo_and_camera(tmp_path):
    _demos(tmp_path)
    out = export_lerobot(tmp_path, "libero_goal", progress=False)
    res = curate(CurateConfig(source="lerobot", input=str(out), out_dir=str(tmp_path / "cur"), progress=False))
    assert len(res.records) == 8 and not res.rejections
    rec = next(r for r in res.records if r.extra["episode_index"] == 3 and r.camera == AGENT)
    assert (rec.action, rec.object, rec.num_frames) == ("turn on", "stove", 12)
    assert rec.extra["time_range"] == [1.5, 2.1]            # after episodes 0-2 (9 + 12 + 9 frames at 20 fps)


def test_mismatched_demo_files_are_a_clear_error(tmp_path):
    _demos(tmp_path)
    ep = _episode(1, 0, 5)
    ep = Episode(**{**ep.__dict__, "actions": ep.actions[:, :4]})
    write_demos(tmp_path / "libero_goal" / "turn_on_the_stove_demo.hdf5", [ep],
                {"problem_info": {"language_instruction": "turn on the stove"}, "suite": "libero_goal",
                 "task_name": "turn_on_the_stove", "embodiment": "panda"})
    with pytest.raises(DemoError, match=r"turn_on_the_stove_demo\.hdf5: data/demo_0: .*feature action has shape"):
        export_lerobot(tmp_path, "libero_goal", progress=False)
    assert not (tmp_path / "lerobot" / "libero_goal").exists()
    with pytest.raises(DemoError, match="no <task>_demo.hdf5 files"):
        export_lerobot(tmp_path, "metaworld", progress=False)


def test_generator_with_format_lerobot_writes_the_dataset(tmp_path, fake_suite):
    cfg = DemosConfig(tasks=["fake_task"], num_demos=2, output_dir=str(tmp_path), format="lerobot")
    assert all(s.complete for s in generate_demos(cfg))
    ds = LeRobotDataset(tmp_path / "lerobot" / "libero_goal")
    assert [e.length for e in ds.episodes()] == [8, 8] and ds.tasks == {0: "open the drawer"}
    with pytest.raises(ConfigError, match="format: must be 'hdf5' or 'lerobot'"):
        DemosConfig(format="parquet")


def lerobot_python() -> str | None:
    """The check script's own lookup (scripts/check_lerobot_export.py): one answer to "which Python has lerobot"."""
    spec = importlib.util.spec_from_file_location(
        "check_lerobot_export", Path(__file__).resolve().parents[2] / "scripts" / "check_lerobot_export.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.lerobot_python()


LEROBOT_SCRIPT = """
import json, sys
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("local/roboact", root=sys.argv[1])
out = []
for i in (0, 10, len(ds) - 1):
    it = ds[i]
    out.append({"task": it["task"], "episode": int(it["episode_index"]), "frame": int(it["frame_index"]),
                "action": it["action"].tolist(), "state": it["observation.state"].tolist(),
                "agentview": it["observation.images.agentview"].mean(dim=(1, 2)).tolist()})
print(json.dumps({"len": len(ds), "episodes": ds.num_episodes, "items": out}))
"""


def test_lerobot_own_loader_accepts_the_export(tmp_path):
    """LeRobot 0.4.4 pins torch<2.11, av<16 and huggingface-hub<0.36, which clash with roboact's pins, so it
    runs in its own venv: `bash scripts/setup.sh --tests` (the README's test command, so CI) makes
    .venv-lerobot; ROBOACT_LEROBOT_PYTHON names another Python with lerobot (docs/libero.md). LeRobot's
    default video backend (torchcodec) decodes the frames."""
    python = lerobot_python()
    if python is None:
        pytest.skip("no Python with lerobot: run `bash scripts/setup.sh --tests` (makes .venv-lerobot) or set "
                    "ROBOACT_LEROBOT_PYTHON; lerobot cannot share roboact's venv (torch, av, huggingface-hub pins)")
    eps = _demos(tmp_path)
    out = export_lerobot(tmp_path, "libero_goal", progress=False)
    proc = subprocess.run([python, "-c", LEROBOT_SCRIPT, str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["len"] == 42 and got["episodes"] == 4
    order = [(0, 0)] * 9 + [(0, 1)] * 12 + [(1, 0)] * 9 + [(1, 1)] * 12
    frame_of = [f for n in (9, 12, 9, 12) for f in range(n)]
    for i, item in zip((0, 10, 41), got["items"]):
        task_i, demo = order[i]
        src = eps[(task_i, demo)]
        assert item["task"] == list(TASKS.values())[task_i] and item["frame"] == frame_of[i]
        np.testing.assert_allclose(item["action"], src.actions[frame_of[i]], atol=1e-6)
        want = src.obs["agentview_rgb"][frame_of[i]].reshape(-1, 3).mean(0) / 255
        np.testing.assert_allclose(item["agentview"], want, atol=0.02)

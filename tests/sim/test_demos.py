"""Demo files (robomimic/LIBERO HDF5 layout), the resumable generator (with a fake simulator), and one real
LIBERO demo end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from roboact.sim import demo_gen  # noqa: E402
from roboact.sim.base import Observation, SimError  # noqa: E402
from roboact.sim.demo_gen import DemosConfig, generate_demos  # noqa: E402
from roboact.sim.demos import DemoError, Episode, merge_demos, read_demos, write_demos  # noqa: E402
from roboact.sim.suites import LiberoGoalSuite, TaskLabel  # noqa: E402
from roboact.utils.config import ConfigError  # noqa: E402


def _episode(t: int = 6, size: int = 8, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8)
    img[:, 0] = 255                                  # a white top row marks "up"
    dones = np.zeros(t, np.uint8)
    dones[-1] = 1
    return Episode(actions=rng.uniform(-1, 1, (t, 7)), states=rng.normal(size=(t, 11)),
                   rewards=np.r_[np.zeros(t - 1), 1.0], dones=dones, robot_states=rng.normal(size=(t, 9)),
                   obs={"agentview_rgb": img, "ee_pos": rng.normal(size=(t, 3)),
                        "joint_states": rng.normal(size=(t, 7))},
                   attrs={"seed": seed, "init_state": rng.normal(size=11)})


ATTRS = {"env_args": {"type": 1, "env_name": "X"}, "problem_info": {"language_instruction": "do it"}}


def test_round_trip_shapes_and_attrs(tmp_path):
    eps = [_episode(6, seed=0), _episode(4, seed=1)]
    path = write_demos(tmp_path / "t_demo.hdf5", eps, ATTRS)
    f = read_demos(path)
    assert f.keys == ["demo_0", "demo_1"] and f.lengths == {"demo_0": 6, "demo_1": 4}
    assert f.attrs["num_demos"] == 2 and f.attrs["total"] == 10
    assert f.attrs["env_args"] == {"type": 1, "env_name": "X"} and f.instruction == "do it"
    ep = f.episode("demo_1")
    assert ep.actions.shape == (4, 7) and ep.obs["agentview_rgb"].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(ep.obs["agentview_rgb"], eps[1].obs["agentview_rgb"])
    np.testing.assert_allclose(ep.states, eps[1].states)
    assert ep.dones.tolist() == [0, 0, 0, 1] and ep.attrs["seed"] == 1
    with h5py.File(path) as h:  # the raw layout official LIBERO loaders expect
        assert h["data/demo_0"].attrs["num_samples"] == 6
        assert json.loads(h["data"].attrs["env_args"])["type"] == 1
        assert h["data/demo_0/obs/ee_pos"].shape == (6, 3)


def test_official_opengl_images_are_returned_upright(tmp_path):
    ep = _episode()
    flipped = Episode(**{**ep.__dict__, "obs": {**ep.obs, "agentview_rgb": ep.obs["agentview_rgb"][:, ::-1]}})
    path = write_demos(tmp_path / "official.hdf5", [flipped], {**ATTRS, "macros_image_convention": "opengl"})
    img = read_demos(path).episode("demo_0").obs["agentview_rgb"]
    assert (img[:, 0] == 255).all()


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_demos(tmp_path / "d.hdf5", [_episode(20, size=32)], ATTRS, compress=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DemoError, match=r"d\.hdf5: not a readable HDF5 file \(truncated or corrupt\?\)"):
        read_demos(path)


def test_bad_files_name_what_is_wrong(tmp_path):
    with pytest.raises(DemoError, match="demo file not found"):
        read_demos(tmp_path / "none.hdf5")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DemoError, match="not a readable HDF5"):
        read_demos(tmp_path / "junk.hdf5")
    path = write_demos(tmp_path / "d.hdf5", [_episode(5)], ATTRS)
    with h5py.File(path, "a") as h:
        del h["data/demo_0/obs/ee_pos"]
        h["data/demo_0/obs/ee_pos"] = np.zeros((3, 3))
    with pytest.raises(DemoError, match="data/demo_0: field 'obs/ee_pos' has shape \\(3, 3\\), expected 5 steps"):
        read_demos(path)
    with h5py.File(path, "a") as h:
        del h["data/demo_0/actions"]
    with pytest.raises(DemoError, match="data/demo_0: field 'actions' missing"):
        read_demos(path)
    with pytest.raises(DemoError, match="obs/ee_pos has 2 steps, actions have 5"):
        Episode(**{**_episode(5).__dict__, "obs": {"ee_pos": np.zeros((2, 3))}})


def test_merge_keeps_order_and_data(tmp_path):
    a = write_demos(tmp_path / "a.hdf5", [_episode(3, seed=3)], ATTRS)
    b = write_demos(tmp_path / "b.hdf5", [_episode(5, seed=5), _episode(2, seed=2)], ATTRS)
    out = merge_demos(tmp_path / "m.hdf5", [(b, "demo_1"), (a, "demo_0"), (b, "demo_0")], ATTRS)
    f = read_demos(out)
    assert [f.demo_attrs[k]["seed"] for k in f.keys] == [2, 3, 5]
    assert f.attrs["total"] == 10


# ---------------------------------------------------------------- generator, with a fake simulator
class FakeEnv:
    """Succeeds after 4 steps, except for seeds divisible by 3 (the 'expert' fails there)."""

    fps, max_steps, cameras = 10.0, 8, ("agentview",)

    def reset(self, seed=None, init_state=None):
        self.seed, self.t = seed if seed is not None else init_state, 0
        return self._obs()

    @property
    def steps_taken(self):
        return self.t

    def step(self, action):
        self.t += 1
        return self._obs()

    def close(self):
        pass

    def _obs(self):
        img = np.full((16, 16, 3), self.t * 20, np.uint8)
        info = {"ee_pos": np.zeros(3), "ee_ori": np.zeros(3), "gripper_states": np.zeros(2),
                "joint_states": np.full(7, float(self.seed)), "ee_quat": np.r_[0, 0, 0, 1.0]}
        return Observation(rgb={"agentview": img}, proprio=np.zeros(9, np.float32), state=np.full(5, self.t * 1.0),
                           success=self.t >= 4 and self.seed % 3 != 0, info=info)


class FakeExpert:
    phase = "fake"

    def reset(self, env):
        pass

    def act(self, obs):
        return np.zeros(7)


class FakeSuite(LiberoGoalSuite):
    name, source, embodiment = "libero_goal", "fake", "panda"

    def tasks(self):
        return ["fake_task"]

    def all_tasks(self):
        return ["fake_task"]

    def canonical(self, task):
        if task != "fake_task":
            raise SimError(f"unknown fake task {task!r}")
        return task

    def label(self, task):
        return TaskLabel("close", "drawer")  # not a benchmark task's label: its clips may be pretrained on

    def make_env(self, task, image_size, cameras, max_steps=None):
        env = FakeEnv()
        if max_steps is not None:
            env.max_steps = max_steps
        return env

    def make_expert(self, task):
        return FakeExpert()

    def episode_cap(self, task):
        return None  # FakeEnv's own (8)

    def file_attrs(self, env):
        return {"env_args": {"type": 0}, "problem_info": {"language_instruction": "open the drawer"}}


@pytest.fixture
def fake_suite(monkeypatch):
    from roboact.sim import suites

    monkeypatch.setattr(demo_gen, "get_suite", lambda name: FakeSuite())
    monkeypatch.setattr(suites, "get_suite", lambda name: FakeSuite())     # the env cache builds envs there


def test_generator_keeps_successes_only_and_resumes(tmp_path, fake_suite):
    cfg = DemosConfig(tasks=["fake_task"], num_demos=3, output_dir=str(tmp_path), post_success_steps=2)
    (s,) = generate_demos(cfg)
    assert s.complete and s.demos == 3 and s.failed == 2        # seeds 0, 3 fail; 1, 2, 4 succeed
    f = read_demos(tmp_path / "libero_goal" / "fake_task_demo.hdf5")
    assert [f.demo_attrs[k]["seed"] for k in f.keys] == [1, 2, 4]
    ep = f.episode("demo_0")
    assert ep.actions.shape == (6, 7) and ep.obs["agentview_rgb"].shape == (6, 16, 16, 3)  # 4 + 2 after success
    assert ep.rewards.tolist() == [0, 0, 0, 1, 1, 1] and ep.dones[-1] == 1
    rows = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert rows[0]["caption"] == "Robot closes drawer, Action is close, Object is drawer."
    assert rows[0]["num_frames"] == 7 and (tmp_path / rows[0]["path"]).is_file()
    assert not list((tmp_path / "libero_goal" / "fake_task" / "shards").glob("*"))
    # resume with more demos: old ones are kept, the failed seed is not retried
    log_lines = (tmp_path / "libero_goal" / "fake_task" / "attempts.jsonl").read_text().splitlines()
    (s,) = generate_demos(DemosConfig(**{**cfg.__dict__, "num_demos": 5}))
    f = read_demos(tmp_path / "libero_goal" / "fake_task_demo.hdf5")
    assert [f.demo_attrs[k]["seed"] for k in f.keys] == [1, 2, 4, 5, 7]
    new = (tmp_path / "libero_goal" / "fake_task" / "attempts.jsonl").read_text().splitlines()
    assert new[: len(log_lines)] == log_lines and all(json.loads(x)["k"] > 4 for x in new[len(log_lines):])
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 5


def test_demo_manifest_leaves_out_tasks_that_never_enter_pretraining(tmp_path, fake_suite, monkeypatch):
    """The demos of a benchmark task are made (the policies need them) but listed in no pretraining manifest."""
    from roboact.data.heldout import read_record

    monkeypatch.setattr(FakeSuite, "canonical", lambda self, task: task)
    cfg = DemosConfig(tasks=["fake_task", "turn_on_the_stove"], num_demos=1, output_dir=str(tmp_path))
    assert all(s.complete for s in generate_demos(cfg))
    assert (tmp_path / "libero_goal" / "turn_on_the_stove_demo.hdf5").is_file()
    rows = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"libero_goal/fake_task"}
    record = read_record(tmp_path)["excluded_tasks"]
    assert record == {"libero_goal/turn_on_the_stove": "benchmark task of `roboact policy --suite libero_goal`"}


def test_generator_fails_clearly_when_the_simulator_cannot_start(tmp_path, monkeypatch, fake_suite):
    def broken(*a, **k):
        raise SimError("LIBERO failed to start task fake_task: eglInitialize failed")

    monkeypatch.setattr(FakeSuite, "make_env", broken)
    cfg = DemosConfig(tasks=["fake_task"], num_demos=2, output_dir=str(tmp_path))
    with pytest.raises(SimError, match="every attempt fails to run.*eglInitialize failed"):
        generate_demos(cfg)


def test_expert_table_is_written_and_resumes(tmp_path, monkeypatch, fake_suite):
    from roboact.sim import expert_eval

    monkeypatch.setattr(expert_eval, "get_suite", lambda name: FakeSuite())
    cfg = expert_eval.ExpertEvalConfig(tasks=["fake_task"], init_states=6, max_steps=8, output_dir=str(tmp_path),
                                       command="roboact demos --evaluate-experts")
    table = expert_eval.evaluate_experts(cfg)
    (row,) = table["tasks"]
    assert (row["successes"], row["episodes"], row["failed_init_states"]) == (4, 6, [0, 3])
    assert row["mean_steps_success"] == 4
    md = (tmp_path / "expert_success_libero_goal_8.md").read_text()      # not the default cap: its own files
    assert "| fake_task | (close, drawer) | 4/6 (67%) | 4 | 4 | 0, 3 |" in md and "roboact demos --evaluate" in md
    assert json.loads((tmp_path / "expert_success_libero_goal_8.json").read_text())["overall_success_rate"] == 4 / 6
    monkeypatch.setattr(expert_eval, "eval_episode", lambda job: pytest.fail("finished episode rerun"))
    assert expert_eval.evaluate_experts(cfg)["tasks"][0]["successes"] == 4


def test_expert_tables_at_two_caps_keep_apart(tmp_path, monkeypatch, fake_suite):
    """A table at another cap than 200 neither resumes from nor overwrites the 200-step table in the same folder;
    log rows written before rows carried their cap count as the default cap's."""
    from roboact.sim import expert_eval

    monkeypatch.setattr(expert_eval, "get_suite", lambda name: FakeSuite())
    base = dict(tasks=["fake_task"], init_states=3, output_dir=str(tmp_path))
    default = expert_eval.ExpertEvalConfig(**base)
    assert default.stem == tmp_path / "expert_success_libero_goal"
    assert default.config_path == tmp_path / "expert_eval_config.json"
    old_row = {"task": "fake_task", "init_state": 0, "success": True, "steps": 4}          # no "max_steps"
    default.stem.with_suffix(".jsonl").write_text(json.dumps(old_row) + "\n")
    assert expert_eval.evaluate_experts(default)["tasks"][0]["successes"] == 3                # 0 from the log
    short = expert_eval.ExpertEvalConfig(**base, max_steps=3)                                  # success needs 4
    assert short.stem == tmp_path / "expert_success_libero_goal_3"
    assert short.config_path == tmp_path / "expert_eval_config_3.json"
    assert expert_eval.evaluate_experts(short)["tasks"][0]["successes"] == 0
    # untouched, and state 0 still the old row's success (FakeEnv fails seed 0 when it is run)
    assert json.loads(default.stem.with_suffix(".json").read_text())["tasks"][0]["successes"] == 3
    rows = [json.loads(x) for x in short.stem.with_suffix(".jsonl").read_text().splitlines()]
    assert [r["max_steps"] for r in rows] == [3, 3, 3]
    # a log row at another cap (as if the files had been renamed) is rerun, not counted
    short.stem.with_suffix(".jsonl").write_text(json.dumps({**old_row, "max_steps": 200}) + "\n")
    assert expert_eval.evaluate_experts(short)["tasks"][0]["successes"] == 0


def test_demo_step_cap_is_the_tasks_own_unless_given_and_is_recorded(tmp_path, monkeypatch, fake_suite):
    monkeypatch.setattr(FakeSuite, "episode_cap", lambda self, task: 3)       # too short: success comes at 4
    (s,) = generate_demos(DemosConfig(tasks=["fake_task"], num_demos=1, output_dir=str(tmp_path / "a"),
                                      max_attempts_factor=1.0, video=False))
    assert s.demos == 0 and s.failed == s.attempts
    log = (tmp_path / "a" / "libero_goal" / "fake_task" / "attempts.jsonl").read_text()
    assert "no success within 3 steps" in log
    cfg = DemosConfig(tasks=["fake_task"], num_demos=2, output_dir=str(tmp_path / "b"), max_steps=5, video=False)
    assert all(s.complete for s in generate_demos(cfg))
    f = read_demos(tmp_path / "b" / "libero_goal" / "fake_task_demo.hdf5")
    assert [f.demo_attrs[k]["max_steps"] for k in f.keys] == [5, 5]
    assert [f.episode(k).num_samples for k in f.keys] == [5, 5]              # success at 4, one more step to the cap
    assert f.attrs["generator_config"]["max_steps"] == 5


def test_demo_step_cap_must_be_positive():
    with pytest.raises(ConfigError, match="max_steps: must be >= 1 \\(or null for each task's own cap\\), got 0"):
        DemosConfig(max_steps=0)


def test_libero_goal_caps_are_200_but_300_for_the_top_drawer_task():
    from roboact.sim.libero import LIBERO_GOAL_TASKS
    from roboact.sim.suites import get_suite

    suite = get_suite("libero_goal")
    caps = {t: suite.episode_cap(t) for t in LIBERO_GOAL_TASKS}
    assert caps.pop("open_the_top_drawer_and_put_the_bowl_inside") == 300
    assert set(caps.values()) == {200}
    assert get_suite("metaworld").episode_cap("drawer-close-v3") is None


def test_cli_unknown_task_is_a_clear_error(tmp_path, capsys):
    from roboact.cli import main

    rc = main(["demos", "--tasks", "open_the_fridge", "-n", "1", "-o", str(tmp_path)])
    assert rc == 2
    assert "no scripted expert for libero_goal task 'open_the_fridge'" in capsys.readouterr().err


def test_task_selection_defaults_to_the_paper_four_and_all_means_every_expert():
    from roboact.sim.experts import EXPERTS
    from roboact.sim.libero import LIBERO_GOAL_TASKS, PAPER_LIBERO_TASKS
    from roboact.sim.suites import get_suite, select_tasks

    suite = get_suite("libero_goal")
    assert select_tasks(suite, []) == list(PAPER_LIBERO_TASKS)
    every = select_tasks(suite, ["all"])
    assert every == [t for t in LIBERO_GOAL_TASKS if t in EXPERTS]           # LIBERO's order
    assert set(every) == set(EXPERTS) and set(PAPER_LIBERO_TASKS) < set(every)
    assert select_tasks(suite, ["libero_goal/put the bowl on the plate"]) == ["put_the_bowl_on_the_plate"]
    assert suite.label("put_the_wine_bottle_on_the_rack") == TaskLabel("put", "wine bottle")
    with pytest.raises(SimError, match="no scripted expert for libero_goal task 'open_the_fridge'"):
        select_tasks(suite, ["open_the_fridge"])


def test_sim_free_modules_import_without_simulators():
    """Block libero/robosuite/mujoco/metaworld and check the demo tooling still imports."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in {'libero', 'robosuite', 'mujoco', 'metaworld'}:\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import roboact.sim.libero, roboact.sim.demos, roboact.sim.demo_gen, roboact.sim.expert_eval\n"
        "import roboact.sim.experts, roboact.sim.demos_cli, roboact.sim.suites, roboact.sim.episodes\n"
        "from roboact.sim.libero import task_files\n"
        "from roboact.sim.base import SimError\n"
        "try:\n"
        "    task_files('turn_on_the_stove')\n"
        "except SimError as e:\n"
        "    print('OK', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK LIBERO is not usable" in out.stdout and "roboact[sim]" in out.stdout


@pytest.mark.sim
def test_real_libero_demo_end_to_end(tmp_path):
    pytest.importorskip("libero.libero")
    cfg = DemosConfig(tasks=["open_the_middle_drawer_of_the_cabinet"], num_demos=1, output_dir=str(tmp_path),
                      image_size=64, post_success_steps=2)
    (s,) = generate_demos(cfg)
    assert s.complete
    f = read_demos(s.path)
    ep = f.episode("demo_0")
    t = ep.num_samples
    assert 20 < t <= 200 and f.instruction == "open the middle drawer of the cabinet"
    assert ep.actions.shape == (t, 7) and np.abs(ep.actions).max() <= 1.0
    assert ep.obs["agentview_rgb"].shape == (t, 64, 64, 3) and ep.obs["agentview_rgb"].dtype == np.uint8
    for key, dim in (("ee_pos", 3), ("ee_ori", 3), ("ee_states", 6), ("gripper_states", 2), ("joint_states", 7)):
        assert ep.obs[key].shape == (t, dim), key
    assert ep.states.shape == (t, 79) and ep.robot_states.shape == (t, 9)
    assert f.attrs["macros_image_convention"] == "opencv" and f.attrs["env_args"]["type"] == 1
    assert f.attrs["action"] == "open" and f.attrs["object"] == "drawer"
    from roboact.data.heldout import read_record
    from roboact.data.video import count_frames

    # a benchmark task: its demo is written for the policies, but it is no pretraining clip
    assert not (Path(tmp_path) / "manifest.jsonl").exists()
    assert "libero_goal/open_the_middle_drawer_of_the_cabinet" in read_record(tmp_path)["excluded_tasks"]
    assert count_frames(Path(tmp_path) / f.demo_attrs["demo_0"]["video"])[0] == t + 1

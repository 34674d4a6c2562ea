"""MetaWorldEnv: task table, errors, seeding, and frames the right way up."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("metaworld")

from roboact.data.splits import holdable_pairs  # noqa: E402
from roboact.sim.base import SimError  # noqa: E402
from roboact.sim.metaworld import (ATOMIC_TASKS, CAMERAS, MetaWorldEnv, expert_for, known_tasks,  # noqa: E402
                                   label_for, quiet_experts)

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def all_cameras_env():
    env = MetaWorldEnv("drawer-open-v3", cameras=CAMERAS, image_size=64)
    obs = env.reset(seed=0)
    yield env, obs
    env.close()


def test_table_is_large_and_compositional():
    from metaworld.policies import ENV_POLICY_MAP

    actions = {lab.action for lab in ATOMIC_TASKS.values()}
    objects = {lab.object for lab in ATOMIC_TASKS.values()}
    assert len(ATOMIC_TASKS) >= 16 and len(actions) >= 10 and len(objects) >= 10
    assert set(ATOMIC_TASKS) <= set(known_tasks()) and set(ATOMIC_TASKS) <= set(ENV_POLICY_MAP)
    pairs = {(lab.action, lab.object) for lab in ATOMIC_TASKS.values()}
    assert len(holdable_pairs(pairs)) >= 6  # enough pairs whose action and object live on elsewhere


def test_table_labels_every_expert_that_passed_the_expert_table():
    """docs/results/expert_success_metaworld.json (roboact demos --evaluate-experts --suite metaworld): every
    scripted expert was measured; a task is labelled exactly when its expert succeeded in >= 80% of scenes."""
    import json
    from pathlib import Path

    from metaworld.policies import ENV_POLICY_MAP

    table = json.loads((Path(__file__).parents[2] / "docs/results/expert_success_metaworld.json").read_text())
    rates = {r["task"]: r["success_rate"] for r in table["tasks"] if r["episodes"] >= 5}
    assert set(rates) == set(ENV_POLICY_MAP)
    assert set(ATOMIC_TASKS) == {t for t, rate in rates.items() if rate >= 0.8}
    for r in table["tasks"]:  # the table was rewritten after labelling: its labels are the table's
        lab = ATOMIC_TASKS.get(r["task"])
        assert (r["action"], r["object"]) == ((lab.action, lab.object) if lab else (None, None))


def test_unknown_task_and_camera_are_clear_errors():
    with pytest.raises(SimError, match="valid tasks: .*drawer-open-v3"):
        MetaWorldEnv("drawer-opne-v3")
    with pytest.raises(SimError, match="valid tasks"):
        expert_for("no-such-task-v3")
    with pytest.raises(SimError, match="labelled tasks: .*faucet-open-v3"):
        label_for("soccer-v3")  # its expert fails too often to be labelled
    with pytest.raises(SimError, match="valid cameras: .*corner"):
        MetaWorldEnv("drawer-open-v3", cameras=("gripperPOV",))


def _first_steps(env: MetaWorldEnv, seed: int, n: int = 15) -> np.ndarray:
    expert, obs = expert_for(env.task), env.reset(seed=seed)
    states = [obs.state]
    for _ in range(n):
        obs = env.step(expert.get_action(obs.state))
        states.append(obs.state)
    return np.stack(states)  # [n+1, 39]


def test_seeded_scenes_are_deterministic_and_varied():
    quiet_experts()
    env = MetaWorldEnv("push-v3", cameras=())
    try:
        a, b, c = _first_steps(env, 7), _first_steps(env, 8), _first_steps(env, 7)
        fresh = MetaWorldEnv("push-v3", cameras=())
        d = _first_steps(fresh, 7)
        fresh.close()
    finally:
        env.close()
    assert np.array_equal(a, c) and np.array_equal(a, d)   # same seed: same episode, reused env or not
    assert not np.allclose(a[0], b[0])                     # another seed: another scene
    assert a.shape == (16, 39) and a.dtype == np.float32


def test_step_checks_and_episode_cap():
    env = MetaWorldEnv("reach-v3", cameras=(), max_steps=2)
    try:
        with pytest.raises(SimError, match="before reset"):
            env.step(np.zeros(4))
        obs = env.reset(init_state=3)
        assert obs.proprio.shape == (4,) and not obs.success
        with pytest.raises(SimError, match="4 entries"):
            env.step(np.zeros(3))
        env.step(np.zeros(4))
        env.step(np.zeros(4))
        with pytest.raises(SimError, match="max_steps=2"):
            env.step(np.zeros(4))
    finally:
        env.close()


def _robot_geoms(model) -> np.ndarray:
    """bool [ngeom]: geom belongs to the (red) Sawyer arm."""
    def on_robot(b: int) -> bool:
        while b != 0:
            if model.body(b).name.startswith("right_") or model.body(b).name == "base":
                return True
            b = model.body_parentid[b]
        return False
    return np.array([on_robot(model.geom_bodyid[g]) for g in range(model.ngeom)])


def _rank(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


@pytest.mark.parametrize("camera", CAMERAS)
def test_frames_are_the_right_way_up(all_cameras_env, camera):
    """World 'up' must point up the image: geoms higher in the world (for the top view: farther from the
    robot) sit on higher image rows; and the red pixels of the RGB frame must be the arm's pixels of that
    same oriented segmentation. A camera left upside down fails both (correlation ~ +0.8, overlap ~ 0)."""
    env, obs = all_cameras_env
    seg = env.segment(camera)                                  # [H, W] geom ids
    ids = [g for g in np.unique(seg) if g >= 0 and (seg == g).sum() >= 3]
    mean_row = np.array([np.nonzero(seg == g)[0].mean() for g in ids])
    up = env.data.geom_xpos[ids, 1 if camera == "topview" else 2]
    assert np.corrcoef(_rank(up), _rank(mean_row))[0, 1] < -0.6

    rgb = obs.rgb[camera].astype(int)                          # [H, W, 3]
    assert rgb.shape == (64, 64, 3)
    red = (rgb[..., 0] > 100) & (rgb[..., 0] > rgb[..., 1] + 50) & (rgb[..., 0] > rgb[..., 2] + 50)
    arm = (seg >= 0) & _robot_geoms(env.model)[np.clip(seg, 0, None)]
    assert red.sum() > 50
    assert (red & arm).sum() / red.sum() > 0.9

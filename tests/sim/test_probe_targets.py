"""benchmarks/probe_policy_features.py reads LIBERO-Goal's object-state probe target out of the recorded flat
simulator state by a joint's index; this pins that index to the live scene: the columns it names hold the
joint's qpos, and they move when the object moves."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("libero.libero", reason="needs roboact[sim]")
pytestmark = pytest.mark.sim

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "probe_policy_features.py"


def _probe_module():
    spec = importlib.util.spec_from_file_location("probe_policy_features", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("task,width", [("put_the_cream_cheese_in_the_bowl", 3), ("turn_on_the_stove", 1)])
def test_object_state_columns_are_the_joints_qpos_in_the_recorded_state(task, width):
    import mujoco

    from roboact.sim.libero import make_env

    probe = _probe_module()
    cols, row_width = probe.libero_object_columns(task)
    assert cols.stop - cols.start == width
    env = make_env(task)
    try:
        env.reset(init_state=0)
        flat = env.sim_state()
        assert flat.shape == (row_width,)
        j = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_JOINT, probe.LIBERO_OBJECT_JOINTS[task])
        adr = env.model.jnt_qposadr[j]
        np.testing.assert_array_equal(flat[cols], env.data.qpos[adr:adr + width])
        env.data.qpos[adr] += 0.01                     # the object moves: only its columns change
        after = np.asarray(env.sim_state())
        assert np.flatnonzero(after != flat).tolist() == [cols.start]
    finally:
        env.close()

"""The shared waypoint controller (no simulator: a fake scene stands in for MuJoCo)."""
from __future__ import annotations

import numpy as np

from roboact.sim.experts.controller import CLOSE, DOWN, Phase, WaypointController, rot_z


class FakeScene:
    """The grip site sits where it is put; the hand points down."""

    def __init__(self, pos=(0.0, 0.0, 1.0), mat=DOWN):
        self.pos, self.mat = np.asarray(pos, dtype=float), np.asarray(mat, dtype=float)

    def eef_pos(self):
        return self.pos.copy()

    def eef_mat(self):
        return self.mat.copy()


def test_a_phase_orientation_overrides_the_controllers_own():
    scene = FakeScene()
    still = WaypointController([Phase("hold", scene.pos, CLOSE)], orientation=DOWN)
    np.testing.assert_allclose(still.act(scene)[3:6], 0.0, atol=1e-9)
    turned = WaypointController([Phase("turn", scene.pos, CLOSE, orientation=rot_z(-90.0) @ DOWN)],
                                orientation=DOWN)
    rot = turned.act(scene)[3:6]
    assert rot[2] < -0.5 and abs(rot[0]) < 1e-9 and abs(rot[1]) < 1e-9   # about world z, negative way


def test_phases_advance_when_reached_and_held():
    scene = FakeScene()
    c = WaypointController([Phase("a", scene.pos, CLOSE, hold=2), Phase("b", scene.pos + [0, 0, 0.1], CLOSE)])
    names = []
    for _ in range(4):
        c.act(scene)
        names.append(c.phase_name)
    assert names == ["a", "a", "b", "b"]


def test_read_once_reads_when_first_asked_and_then_holds():
    """A grasp read once (where a set-down object came to rest) must not follow the object when it is lifted."""
    from roboact.sim.experts.controller import ReadOnce

    obj = {"pos": np.array([0.0, 0.0, 0.9])}
    grasp = ReadOnce(lambda scene: obj["pos"])
    above = grasp + [0.0, 0.0, 0.1]
    obj["pos"] = np.array([0.2, 0.0, 0.9])                 # moved before the first reading: read there
    np.testing.assert_allclose(above(FakeScene()), [0.2, 0.0, 1.0])
    obj["pos"] = np.array([0.2, 0.0, 1.2])                 # lifted afterwards: the reading holds
    np.testing.assert_allclose(grasp(FakeScene()), [0.2, 0.0, 0.9])
    np.testing.assert_allclose(above(FakeScene()), [0.2, 0.0, 1.0])


def test_position_gain_scales_the_position_action_only():
    scene = FakeScene()
    target = scene.pos + [0.01, 0.0, 0.0]
    plain = WaypointController([Phase("a", target, CLOSE, speed=1.0)])
    doubled = WaypointController([Phase("a", target, CLOSE, speed=1.0)], pos_gain=2.0)
    a, b = plain.act(scene), doubled.act(scene)
    np.testing.assert_allclose(a[:3], [0.2, 0.0, 0.0])   # 1 cm / 5 cm of action range
    np.testing.assert_allclose(b[:3], [0.4, 0.0, 0.0])
    np.testing.assert_allclose(a[3:], b[3:])

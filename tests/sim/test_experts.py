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

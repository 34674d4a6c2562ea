"""A shared waypoint controller for scripted experts that drive robosuite's OSC_POSE controller.

An expert is a list of phases. Each phase names a grip-site target (fixed, or recomputed every step from the
true scene, e.g. "4 cm from the knob's pivot, 0.3 rad ahead of its angle"), a gripper command and a speed.
A setpoint moves toward the target at the capped speed and the action asks OSC to reach the setpoint:
`clip(gain * (setpoint - eef) / 0.05, -1, 1)` (0.05 m is OSC_POSE's output range for an action of 1; the
gain is 1 unless an expert needs to settle faster on its waypoints). A capped
setpoint gives smooth, human-like motion and does not overshoot; holding a fixed orientation every step
keeps contacts predictable. Orientations are world-frame rotation matrices; OSC_POSE takes world-frame
axis-angle deltas scaled by 0.5 rad.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

POS_SCALE = 0.05   # m per unit action (robosuite OSC_POSE output_max)
ROT_SCALE = 0.5    # rad per unit action
OPEN, CLOSE = -1.0, 1.0


def rot_x(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# Panda's grip site pointing straight down with the fingers closing along world y (its start pose in LIBERO).
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame axis-angle of target @ current.T (the rotation still to apply)."""
    r = target @ current.T
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # angle ~ pi: take the axis from the symmetric part
        w, v = np.linalg.eigh((r + r.T) / 2.0)
        axis, norm = v[:, np.argmax(w)], 1.0
    return axis / norm * angle


class Scene:
    """True poses read from MuJoCo (model, data); experts see the world only through this."""

    def __init__(self, model, data, eef_site: str = "gripper0_grip_site"):
        self.model, self.data, self.eef_site = model, data, eef_site

    def eef_pos(self) -> np.ndarray:
        return self.data.site(self.eef_site).xpos.copy()

    def eef_mat(self) -> np.ndarray:
        return self.data.site(self.eef_site).xmat.reshape(3, 3).copy()

    def body_pos(self, name: str) -> np.ndarray:
        return self.data.body(name).xpos.copy()

    def geom_pos(self, name: str) -> np.ndarray:
        return self.data.geom(name).xpos.copy()

    def site_pos(self, name: str) -> np.ndarray:
        return self.data.site(name).xpos.copy()

    def qpos(self, joint: str) -> float:
        return float(self.data.joint(joint).qpos[0])

    def touching(self, body: str) -> set[str]:
        """Names of the bodies in contact with `body` now (MuJoCo's contact list after the last step)."""
        d, m = self.data, self.model
        me = m.body(body).id
        out = set()
        for c in d.contact[:d.ncon]:
            a, b = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            if a == me and b != me:
                out.add(m.body(b).name)
            elif b == me and a != me:
                out.add(m.body(a).name)
        return out

    def body_up(self, name: str) -> float:
        """Cosine between the body's z axis and the world's (1: upright)."""
        return float(self.data.body(name).xmat[8])


Target = Union[np.ndarray, Callable[[Scene], np.ndarray]]


class ReadOnce:
    """A point read from the scene the first time a phase asks for it, then held.

    For waypoints that are only known once an earlier phase has run (where a set-down object came to rest),
    yet must not follow the object afterwards: a grasp read every step would move with the lifted object and
    the lift would never end. `point + offset` is a target at a fixed offset from the same reading. Plans are
    built anew at every reset, so a reading never outlives its episode.
    """

    def __init__(self, read: Callable[[Scene], np.ndarray]):
        self.read = read
        self.value: np.ndarray | None = None

    def __call__(self, scene: Scene) -> np.ndarray:
        if self.value is None:
            self.value = np.asarray(self.read(scene), dtype=np.float64)
        return self.value.copy()

    def __add__(self, offset) -> Callable[[Scene], np.ndarray]:
        offset = np.asarray(offset, dtype=np.float64)
        return lambda scene: self(scene) + offset


@dataclass
class Phase:
    """Move the grip site to `target` with the gripper at `gripper`; done when reached and held `hold` steps,
    or when `until(scene)` is true, or after `timeout` steps (the expert then moves on regardless)."""

    name: str
    target: Target
    gripper: float = OPEN
    speed: float = 0.01          # m per step for the setpoint (0.01 = 0.2 m/s at 20 Hz)
    tol: float = 0.01            # m; reached when the eef is this close to the target
    hold: int = 0
    until: Callable[[Scene], bool] | None = None
    timeout: int = 80
    orientation: np.ndarray | None = None   # grip-site orientation to hold; None: the controller's own

    def goal(self, scene: Scene) -> np.ndarray:
        t = self.target(scene) if callable(self.target) else self.target
        return np.asarray(t, dtype=np.float64)


@dataclass
class WaypointController:
    """Runs phases in order and turns them into 7-d OSC_POSE actions."""

    phases: list[Phase]
    orientation: np.ndarray = field(default_factory=lambda: DOWN.copy())
    pos_gain: float = 1.0        # > 1 settles on each waypoint sooner (an expert with many waypoints to fit a cap)
    rot_gain: float = 1.0
    index: int = 0
    _setpoint: np.ndarray | None = None
    _in_phase: int = 0
    _held: int = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.phases)

    @property
    def phase_name(self) -> str:
        return "done" if self.done else self.phases[self.index].name

    def act(self, scene: Scene) -> np.ndarray:
        eef = scene.eef_pos()
        if self._setpoint is None:
            self._setpoint = eef.copy()
        phase = self.phases[min(self.index, len(self.phases) - 1)]
        goal = phase.goal(scene)
        delta = goal - self._setpoint
        dist = np.linalg.norm(delta)
        if dist > phase.speed:
            delta *= phase.speed / dist
        self._setpoint = self._setpoint + delta
        if not self.done:
            self._advance(phase, scene, eef, goal)
        action = np.zeros(7)
        action[:3] = np.clip(self.pos_gain * (self._setpoint - eef) / POS_SCALE, -1.0, 1.0)
        orientation = self.orientation if phase.orientation is None else phase.orientation
        action[3:6] = np.clip(self.rot_gain * rotation_error(orientation, scene.eef_mat()) / ROT_SCALE, -1.0, 1.0)
        action[6] = phase.gripper
        return action

    def _advance(self, phase: Phase, scene: Scene, eef: np.ndarray, goal: np.ndarray) -> None:
        self._in_phase += 1
        if phase.until is not None:
            finished = phase.until(scene)
        else:
            reached = np.linalg.norm(goal - eef) < phase.tol and np.allclose(self._setpoint, goal)
            self._held = self._held + 1 if reached else 0
            finished = reached and self._held > phase.hold
        if finished or self._in_phase >= phase.timeout:
            self.index += 1
            self._in_phase = self._held = 0

"""Per-episode appearance randomisation of a MuJoCo scene: camera pose, lighting, table/floor colour.

Why: a corpus rendered from three fixed viewpoints under one light teaches an encoder those pixels, not the
action; unseen-viewpoint and new-scene evaluation (issue #7) need training clips whose camera, light and
surfaces vary. Only model fields that the renderer reads on every frame are changed (camera and light
poses go through mj_kinematics into `data`; colours, intensities and field of view are read by
mjv_updateScene), so nothing has to be re-uploaded to the GL context. Textures are left alone: swapping
one would need `mjr_uploadTexture` per episode.

Sampling is a pure function of (episode seed, kind, camera name), so a sample never depends on which other
cameras or kinds were asked for (an episode redone for a new camera keeps the old cameras' poses), on the
worker, or on the order of episodes. Values are rounded before they are applied, so the recorded numbers
are exactly what was rendered. Dynamics never change: the trajectory of a randomised episode is identical
to the plain one.

Bounds (chosen by rendering every offered Meta-World camera at the corners of each range and looking at
the frames; the reasons are in docs/simulate.md, "Randomised scenes"):
- camera: a rigid orbit about the workspace centre (a camera that tracks a body: about the point of its
  optical axis nearest that body), azimuth +-15 deg about the vertical, elevation +-10 deg, distance
  x[0.9, 1.1]; field of view x[0.9, 1.1]. The orientation turns with the orbit, so the pivot stays at the
  same pixel and the workspace stays in view.
- light: each light's direction tilted by up to 25 deg in a random direction; the diffuse intensity of
  all lights and the headlight scaled by one factor in [0.6, 1.4]; headlight ambient in [0.25, 0.55]
  (Meta-World's is 0.4).
- table: table and floor material colour = brightness in [0.6, 1.0] x a tint whose channels are in
  [0.7, 1.0] (largest channel 1), multiplying their textures.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

KINDS: tuple[str, ...] = ("camera", "light", "table")

AZIMUTH_DEG = 15.0
ELEVATION_DEG = 10.0
DISTANCE_SCALE = (0.9, 1.1)
FOVY_SCALE = (0.9, 1.1)
LIGHT_TILT_DEG = 25.0
DIFFUSE_SCALE = (0.6, 1.4)
AMBIENT = (0.25, 0.55)
BRIGHTNESS = (0.6, 1.0)
TINT = (0.7, 1.0)

# Materials recoloured by "table", by role; a scene without one of them simply has it left out.
SURFACES: dict[str, str] = {"table": "table_wood", "floor": "basic_floor"}
# Meta-World's workspace centre (hand start ~(0, 0.6, 0.2), objects at y 0.6-0.9 on the table top z=0):
# the pivot of world-fixed cameras; every offered camera shows it.
WORKSPACE_PIVOT = (0.0, 0.7, 0.1)


def _rng(seed: int, *key: str) -> np.random.Generator:
    digest = hashlib.sha256("\0".join(("appearance", str(int(seed)), *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _u(rng: np.random.Generator, lo: float, hi: float, nd: int = 3) -> float:
    return round(float(rng.uniform(lo, hi)), nd)


def sample_appearance(seed: int, kinds, cameras, n_lights: int) -> dict:
    """The randomisation of one episode as JSON-able numbers: {"camera": {name: pose}, "light": ..., "table": ...}.

    Only the requested kinds appear; an empty `kinds` gives {} (no randomisation).
    """
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown randomisation kind {bad[0]!r}; known: {', '.join(KINDS)}")
    out: dict = {}
    if "camera" in kinds:
        out["camera"] = {}
        for cam in cameras:
            r = _rng(seed, "camera", cam)
            out["camera"][cam] = {"azimuth_deg": _u(r, -AZIMUTH_DEG, AZIMUTH_DEG, 2),
                                  "elevation_deg": _u(r, -ELEVATION_DEG, ELEVATION_DEG, 2),
                                  "distance_scale": _u(r, *DISTANCE_SCALE),
                                  "fovy_scale": _u(r, *FOVY_SCALE)}
    if "light" in kinds:
        r = _rng(seed, "light")
        out["light"] = {"tilt_deg": [_u(r, 0.0, LIGHT_TILT_DEG, 2) for _ in range(n_lights)],
                        "spin_deg": [_u(r, 0.0, 360.0, 2) for _ in range(n_lights)],
                        "diffuse_scale": _u(r, *DIFFUSE_SCALE), "ambient": _u(r, *AMBIENT)}
    if "table" in kinds:
        r = _rng(seed, "table")
        out["table"] = {}
        for role in SURFACES:
            tint = r.uniform(*TINT, size=3)
            rgb = float(r.uniform(*BRIGHTNESS)) * tint / tint.max()
            out["table"][role] = [round(float(c), 3) for c in rgb]
    return out


# --- geometry ------------------------------------------------------------------------------------------

def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by `angle` radians about `axis` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def orbit(pos: np.ndarray, mat: np.ndarray, target: np.ndarray, azimuth_deg: float, elevation_deg: float,
          distance_scale: float, up=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Move a camera (position, 3x3 orientation with columns x, y, -view) on a sphere about `target`.

    Positive elevation raises the camera. A camera looking straight down has no elevation direction of its
    own; it tilts about its image x axis instead.
    """
    up = np.asarray(up, dtype=np.float64)
    v = np.asarray(pos, dtype=np.float64) - target
    r_az = rotation(up, math.radians(azimuth_deg))
    v1 = r_az @ v
    axis = np.cross(v1, up)
    if np.linalg.norm(axis) < 1e-6 * max(np.linalg.norm(v1), 1e-9):
        axis = r_az @ mat[:, 0]
    r = rotation(axis, math.radians(elevation_deg)) @ r_az
    return target + distance_scale * (r @ v), r @ mat


def elevation_of(v: np.ndarray, up=(0.0, 0.0, 1.0)) -> float:
    """Angle (degrees) of vector v above the plane normal to `up`."""
    v = np.asarray(v, dtype=np.float64)
    return math.degrees(math.asin(float(np.dot(v, up)) / float(np.linalg.norm(v))))


def axis_point_nearest(pos: np.ndarray, mat: np.ndarray, point=(0.0, 0.0, 0.0)) -> np.ndarray:
    """The point of the camera's optical axis (in front of it) nearest `point`."""
    fwd = -mat[:, 2]
    t = float(np.dot(np.asarray(point) - pos, fwd))
    return pos + float(np.clip(t, 0.1, 5.0)) * fwd


# --- applying to a model -------------------------------------------------------------------------------

class SceneAppearance:
    """Remembers a model's own camera/light/material values and applies a sample on top of them.

    `apply({})` restores the model exactly, so one env can be reused across plain and randomised episodes.
    Call before the state is forwarded (the env's reset), so `data` picks up camera and light poses.
    """

    _FIELDS = ("cam_pos", "cam_quat", "cam_pos0", "cam_mat0", "cam_fovy", "light_dir", "light_diffuse",
               "mat_rgba")

    def __init__(self, model):
        import mujoco

        self.model = model
        self._base = {f: getattr(model, f).copy() for f in self._FIELDS}
        self._head = (model.vis.headlight.ambient.copy(), model.vis.headlight.diffuse.copy())
        self._mat = {role: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, name)
                     for role, name in SURFACES.items()}
        self._mat = {role: i for role, i in self._mat.items() if i >= 0}

    def camera_id(self, name: str) -> int:
        import mujoco

        i = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if i < 0:
            raise ValueError(f"no camera {name!r} in the model")
        return i

    def restore(self) -> None:
        for f, v in self._base.items():
            getattr(self.model, f)[:] = v
        self.model.vis.headlight.ambient[:] = self._head[0]
        self.model.vis.headlight.diffuse[:] = self._head[1]

    def apply(self, sample: dict) -> dict:
        """Restore, then apply `sample`; returns what was applied, with each camera's absolute `fovy` added."""
        self.restore()
        applied: dict = {}
        for cam, pose in sample.get("camera", {}).items():
            applied.setdefault("camera", {})[cam] = self._apply_camera(cam, pose)
        if "light" in sample:
            self._apply_light(sample["light"])
            applied["light"] = sample["light"]
        if "table" in sample:
            applied["table"] = {}
            for role, rgb in sample["table"].items():
                if role in self._mat:
                    self.model.mat_rgba[self._mat[role], :3] = rgb
                    applied["table"][role] = rgb
        return applied

    def _apply_camera(self, name: str, pose: dict) -> dict:
        import mujoco

        m, i = self.model, self.camera_id(name)
        mode = int(m.cam_mode[i])
        args = (pose["azimuth_deg"], pose["elevation_deg"], pose["distance_scale"])
        if mode == mujoco.mjtCamLight.mjCAMLIGHT_FIXED:
            mat = np.empty(9)
            mujoco.mju_quat2Mat(mat, m.cam_quat[i])
            mat = mat.reshape(3, 3)
            pos = m.cam_pos[i].copy()
            pivot = (np.asarray(WORKSPACE_PIVOT) if int(m.cam_bodyid[i]) == 0  # else: body frame
                     else axis_point_nearest(pos, mat))
            new_pos, new_mat = orbit(pos, mat, pivot, *args)
            quat = np.empty(4)
            mujoco.mju_mat2Quat(quat, new_mat.reshape(-1))
            m.cam_pos[i], m.cam_quat[i] = new_pos, quat
        elif mode in (mujoco.mjtCamLight.mjCAMLIGHT_TRACK, mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM):
            # A tracking camera is placed from its world offset and world orientation at compile time.
            pos, mat = m.cam_pos0[i].copy(), m.cam_mat0[i].reshape(3, 3).copy()
            new_pos, new_mat = orbit(pos, mat, axis_point_nearest(pos, mat), *args)
            m.cam_pos0[i], m.cam_mat0[i] = new_pos, new_mat.reshape(-1)
        else:
            raise ValueError(f"camera {name!r}: pose randomisation supports fixed and tracking cameras, "
                             f"not mode {mode}")
        m.cam_fovy[i] = round(float(self._base["cam_fovy"][i]) * pose["fovy_scale"], 3)
        return {**pose, "fovy": float(m.cam_fovy[i])}

    def _apply_light(self, light: dict) -> None:
        m = self.model
        for i, (tilt, spin) in enumerate(zip(light["tilt_deg"], light["spin_deg"])):
            if i >= m.nlight:
                break
            d = self._base["light_dir"][i].astype(np.float64)
            # a unit vector perpendicular to d, turned by `spin` about d, is the tilt axis
            ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 * np.linalg.norm(d) else np.array([1.0, 0.0, 0.0])
            perp = np.cross(d, ref)
            axis = rotation(d, math.radians(spin)) @ (perp / np.linalg.norm(perp))
            m.light_dir[i] = rotation(axis, math.radians(tilt)) @ d
        s = light["diffuse_scale"]
        m.light_diffuse[:] = np.clip(self._base["light_diffuse"] * s, 0.0, 1.0)
        m.vis.headlight.diffuse[:] = np.clip(self._head[1] * s, 0.0, 1.0)
        m.vis.headlight.ambient[:] = light["ambient"]

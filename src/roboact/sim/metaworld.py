"""Meta-World 3.1.x (Sawyer, MuJoCo) behind the `SimEnv` interface, plus its scripted experts.

One Meta-World task is one atomic action, so `ATOMIC_TASKS` below is the single place that names the
(action, object) of each task; the corpus, its captions and the compositional split all read it. Only tasks
whose expert succeeds reliably (docs/design.md §4, re-measured in docs/simulate.md) are listed, and the
pairs are chosen so that actions share objects and objects share actions (open/close x drawer/window/door,
push/pull x plate/mug, ...), which a compositional split needs.

Scenes are MT1-style: one task, object and goal positions drawn from the task's own random range, seeded
through the environment's generator, so `reset(seed=s)` gives the same scene and, with the expert, the same
trajectory on every machine and in every worker.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

from roboact.sim.render import FastRenderer  # sets MUJOCO_GL before mujoco is imported anywhere

import numpy as np

from roboact.sim.base import Observation, SimError


@dataclass(frozen=True)
class AtomicLabel:
    action: str
    object: str


# THE mapping table: Meta-World task -> (action, object). Order is the corpus order.
ATOMIC_TASKS: dict[str, AtomicLabel] = {
    "drawer-open-v3": AtomicLabel("open", "drawer"),
    "drawer-close-v3": AtomicLabel("close", "drawer"),
    "window-open-v3": AtomicLabel("open", "window"),
    "window-close-v3": AtomicLabel("close", "window"),
    "door-open-v3": AtomicLabel("open", "door"),
    "door-close-v3": AtomicLabel("close", "door"),
    "door-lock-v3": AtomicLabel("lock", "door"),
    "door-unlock-v3": AtomicLabel("unlock", "door"),
    "box-close-v3": AtomicLabel("close", "box"),
    "faucet-open-v3": AtomicLabel("turn on", "faucet"),
    "faucet-close-v3": AtomicLabel("turn off", "faucet"),
    "button-press-topdown-v3": AtomicLabel("press", "button"),
    "coffee-button-v3": AtomicLabel("press", "coffee machine"),
    "handle-press-v3": AtomicLabel("press", "handle"),
    "handle-pull-v3": AtomicLabel("pull", "handle"),
    "lever-pull-v3": AtomicLabel("pull", "lever"),
    "plate-slide-v3": AtomicLabel("push", "plate"),
    "plate-slide-back-v3": AtomicLabel("pull", "plate"),
    "push-v3": AtomicLabel("push", "puck"),
    "pick-place-v3": AtomicLabel("place", "puck"),
    "sweep-v3": AtomicLabel("sweep", "puck"),
    "coffee-push-v3": AtomicLabel("push", "mug"),
    "coffee-pull-v3": AtomicLabel("pull", "mug"),
    "dial-turn-v3": AtomicLabel("turn", "dial"),
}

# Cameras offered, each checked by eye and by tests/sim/test_metaworld.py. The `corner*` cameras of the
# Meta-World XML render upside down; we turn them 180 degrees. `gripperPOV` is left out: it mostly shows
# the inside of the fingers.
CAMERAS: tuple[str, ...] = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper")
UPSIDE_DOWN: frozenset[str] = frozenset({"corner", "corner2", "corner3", "corner4"})
DEFAULT_CAMERAS: tuple[str, ...] = ("corner", "corner3", "corner4")

ACTION_DIM = 4          # dx, dy, dz (scaled by 1/100 m), gripper effort
PROPRIO_DIM = 4         # end-effector xyz, gripper opening in [0, 1]
CONTROL_HZ = 80.0       # frame_skip 5 x timestep 0.0025 s


def known_tasks() -> list[str]:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return list(ALL_V3_ENVIRONMENTS)


def label_for(task: str) -> AtomicLabel:
    """(action, object) of a task of the table; SimError listing the table otherwise."""
    if task not in ATOMIC_TASKS:
        raise SimError(f"Meta-World task {task!r} has no atomic (action, object) label; "
                       f"labelled tasks: {', '.join(ATOMIC_TASKS)}")
    return ATOMIC_TASKS[task]


def instruction_for(task: str) -> str:
    """'open the drawer' for labelled tasks; the task name in words otherwise ('stick push')."""
    if task in ATOMIC_TASKS:
        lab = ATOMIC_TASKS[task]
        return f"{lab.action} the {lab.object}"
    return task.removesuffix("-v3").replace("-", " ")


def _check_task(task: str) -> None:
    valid = known_tasks()
    if task not in valid:
        raise SimError(f"unknown Meta-World task {task!r}; valid tasks: {', '.join(valid)}")


def expert_for(task: str):
    """The scripted expert of `metaworld.policies` for `task`; call `.get_action(obs.state)`."""
    from metaworld.policies import ENV_POLICY_MAP

    _check_task(task)
    if task not in ENV_POLICY_MAP:
        raise SimError(f"Meta-World task {task!r} has no scripted expert; "
                       f"experts exist for: {', '.join(ENV_POLICY_MAP)}")
    return ENV_POLICY_MAP[task]()


def quiet_experts() -> None:
    """The experts warn on every step whose gain saturates (harmless; the env clips). Silence just that."""
    warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high", category=UserWarning)


def _make_raw_env(task: str, max_steps: int):
    """A goal-observable single-task env (the experts read the goal from the last 3 observation entries)."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS[task]()
    env._partially_observable = False
    with contextlib.suppress(AttributeError):  # cached observation space was built partially observable
        del env.sawyer_observation_space
    env._set_task_called = True
    env.max_path_length = max_steps
    return env


class MetaWorldEnv:
    """One Meta-World task with seeded random scenes, rendered through the fast renderer.

    `reset(seed=s)` draws the object/goal positions from the env's own generator seeded with `s`;
    `init_state=i` is accepted for interface parity with LIBERO and means the same as `seed=i`.
    """

    action_dim = ACTION_DIM
    fps = CONTROL_HZ

    def __init__(self, task: str, cameras: tuple[str, ...] = ("corner",), image_size: int = 128,
                 max_steps: int = 200):
        _check_task(task)
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise SimError(f"unknown Meta-World camera {bad[0]!r}; valid cameras: {', '.join(CAMERAS)}")
        if image_size < 16:
            raise SimError(f"image_size must be >= 16, got {image_size}")
        if max_steps < 1:
            raise SimError(f"max_steps must be >= 1, got {max_steps}")
        self.task, self.instruction = task, instruction_for(task)
        self.cameras, self.max_steps, self.image_size = tuple(cameras), int(max_steps), int(image_size)
        try:
            self._env = _make_raw_env(task, self.max_steps)
        except Exception as e:
            raise SimError(f"Meta-World task {task!r} failed to start ({type(e).__name__}: {e})") from e
        self._renderer = FastRenderer(self._env.model, image_size, image_size) if self.cameras else None
        self._steps = 0
        self._obs: np.ndarray | None = None
        self._scene = None          # SceneAppearance, made on the first randomised reset
        self.appearance: dict = {}  # what the last reset applied (roboact.sim.appearance)

    def reset(self, seed: int | None = None, init_state: int | None = None,
              appearance: dict | None = None) -> Observation:
        """`appearance`: a `sample_appearance(...)` dict applied to the scene for this episode (camera poses,
        lights, table/floor colour); None or {} renders the model's own scene. Dynamics are unaffected."""
        import mujoco

        if seed is not None and init_state is not None and seed != init_state:
            raise SimError(f"Meta-World reset: pass seed or init_state, not both ({seed} vs {init_state})")
        seed = seed if seed is not None else init_state
        env = self._env
        self._set_appearance(appearance or {})
        # Clear solver warm-starts etc. so a reused env and a fresh one give bit-identical episodes.
        mujoco.mj_resetData(env.model, env.data)
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        if seed is not None:
            env.seed(int(seed))
        self._obs, _ = env.reset()
        self._steps = 0
        return self._observation(success=False, info={})

    def step(self, action: np.ndarray) -> Observation:
        if self._obs is None:
            raise SimError(f"{self.task}: step() before reset()")
        if self._steps >= self.max_steps:
            raise SimError(f"{self.task}: episode is over (max_steps={self.max_steps}); call reset()")
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != (ACTION_DIM,):
            raise SimError(f"{self.task}: action must have {ACTION_DIM} entries, got shape {action.shape}")
        self._obs, reward, _, truncated, info = self._env.step(np.clip(action, -1.0, 1.0))
        self._steps += 1
        extra = {"reward": float(reward), "truncated": bool(truncated), "step": self._steps}
        return self._observation(success=bool(info.get("success", 0.0)), info=extra)

    def _set_appearance(self, sample: dict) -> None:
        """Before the reset forwards the state, so `data` gets the new camera and light poses."""
        if not sample and self._scene is None:
            return
        from roboact.sim.appearance import SceneAppearance

        if self._scene is None:
            self._scene = SceneAppearance(self._env.model)
        try:
            self.appearance = self._scene.apply(sample)
        except ValueError as e:
            raise SimError(f"{self.task}: {e}") from None

    def _observation(self, success: bool, info: dict) -> Observation:
        obs = self._obs
        rgb = {cam: self.render(cam) for cam in self.cameras}
        return Observation(rgb=rgb, proprio=obs[:PROPRIO_DIM].astype(np.float32),
                           state=obs.astype(np.float32), success=success, info=info)

    def render(self, camera: str) -> np.ndarray:
        """uint8 [H, W, 3] of `camera`, the right way up."""
        if self._renderer is None:
            raise SimError(f"{self.task}: env was created without cameras")
        return self._renderer.render(self._env.data, camera, rotate180=camera in UPSIDE_DOWN)

    def segment(self, camera: str) -> np.ndarray:
        """int32 [H, W] geom id per pixel (-1 where no geom), oriented exactly like `render(camera)`."""
        if self._renderer is None:
            raise SimError(f"{self.task}: env was created without cameras")
        return self._renderer.segment(self._env.data, camera, rotate180=camera in UPSIDE_DOWN)

    @property
    def model(self):
        return self._env.model

    @property
    def data(self):
        return self._env.data

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()

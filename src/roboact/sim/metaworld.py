"""Meta-World 3.1.x (Sawyer, MuJoCo) behind the `SimEnv` interface, plus its scripted experts.

One Meta-World task is one atomic action, so `ATOMIC_TASKS` below is the single place that names the
(action, object) of each task; the corpus, its captions and the compositional split all read it. Only tasks
whose expert succeeds reliably (>= 80% of the corpus's scenes, docs/results/expert_success_metaworld.json)
are listed, and the words are shared wherever the motion is, so that actions share objects and objects
share actions (open/close x drawer/window/door, push/pull x plate/mug/thermos, ...), which a compositional
split needs. Which of them may enter a pretraining corpus is decided elsewhere (roboact.data.heldout).

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
#
# Every task whose scripted expert succeeds in >= 80% of the scenes of a default corpus is here; the
# evidence is docs/results/expert_success_metaworld.json (20 scenes per task, 200-step cap; the command is
# in docs/simulate.md). The comment on each new entry says what the expert does and why the words: verbs
# and nouns are reused wherever the motion and the object really are the same (Meta-World's red cylinder
# and its small wooden cube are both "puck", as sweep-v3 and pick-place-v3 had them; a blue or green cube
# is "block"). Benchmark and reserve tasks and their near-duplicates are labelled too (the demos and the
# benchmark need their words) but never enter a pretraining corpus: roboact.data.heldout.
#
# Left unlabelled: their experts succeed in fewer than 80% of the scenes (why they fail was not examined):
#   disassemble-v3  15/20 (lift the nut off the peg)
#   soccer-v3       15/20 (push the ball into the goal)
#   push-back-v3    13/20 (draw the puck back towards the robot)
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
    # The same button pressed from the front, and with a wall in the scene: "press button".
    "button-press-v3": AtomicLabel("press", "button"),
    "button-press-wall-v3": AtomicLabel("press", "button"),
    "button-press-topdown-wall-v3": AtomicLabel("press", "button"),
    # The handle of handle-press/handle-pull, mounted sideways: pressed down / grasped and lifted, as there.
    "handle-press-side-v3": AtomicLabel("press", "handle"),
    "handle-pull-side-v3": AtomicLabel("pull", "handle"),
    # plate-slide-back's motion from the side: the plate is dragged out of the net towards the robot.
    "plate-slide-back-side-v3": AtomicLabel("pull", "plate"),
    # plate-slide's motion from the side: a near-duplicate of that benchmark task, so never pretrained on.
    "plate-slide-side-v3": AtomicLabel("push", "plate"),
    # The red puck pushed along the table with a wall in the scene: push-v3's motion.
    "push-wall-v3": AtomicLabel("push", "puck"),
    # The wooden puck of sweep-v3, swept across the table into a hole at its edge.
    "sweep-into-v3": AtomicLabel("sweep", "puck"),
    # Grasp the red puck and carry it to a goal in the air: pick-place's motion (with a wall in the scene;
    # starting in a hole in the table), so both are near-duplicates of that benchmark task.
    "pick-place-wall-v3": AtomicLabel("place", "puck"),
    "pick-out-of-hole-v3": AtomicLabel("place", "puck"),
    # Grasp the wooden puck and lower it into a hole in the table: "insert", as the peg; not "place", whose
    # goal (pick-place) is up in the air.
    "hand-insert-v3": AtomicLabel("insert", "puck"),
    # Grasp the peg and push it sideways into the hole of the box / grasp it and draw it out of the hole.
    "peg-insert-side-v3": AtomicLabel("insert", "peg"),
    "peg-unplug-side-v3": AtomicLabel("pull", "peg"),
    # Grasp the cube, lift it and set it down at the goal: on a shelf (a reserve task) / in the other bin
    # (so a near-duplicate of that reserve task).
    "shelf-place-v3": AtomicLabel("place", "block"),
    "bin-picking-v3": AtomicLabel("place", "block"),
    # Grasp, lift and set down elsewhere, like pick-place, on other objects: the ball carried to the hoop;
    # the nut (a ring with a handle) lowered over the peg.
    "basketball-v3": AtomicLabel("place", "ball"),
    "assembly-v3": AtomicLabel("place", "nut"),
    # Grasp the stick, line it up with the thermos and push (pull) the thermos to the goal with it; the
    # thermos is what moves to the goal, the stick is the tool.
    "stick-push-v3": AtomicLabel("push", "thermos"),
    "stick-pull-v3": AtomicLabel("pull", "thermos"),
    # Grasp the hammer and drive the nail in with its head.
    "hammer-v3": AtomicLabel("hammer", "nail"),
    # Move the gripper to a goal point in the air (the small goal sphere), in the open / over a wall.
    "reach-v3": AtomicLabel("reach", "target"),
    "reach-wall-v3": AtomicLabel("reach", "target"),
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


def expert_tasks() -> list[str]:
    """Every task with a scripted expert in `metaworld.policies` (all 50 in metaworld 3.1)."""
    from metaworld.policies import ENV_POLICY_MAP

    return [t for t in known_tasks() if t in ENV_POLICY_MAP]


def label_pairs() -> dict[str, tuple[str, str]]:
    """task -> (action, object) for every task of the table (what roboact.data.heldout compares)."""
    return {t: (lab.action, lab.object) for t, lab in ATOMIC_TASKS.items()}


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
        self._render_steps: frozenset[int] | None = None  # None: every observation renders its cameras
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

    @contextlib.contextmanager
    def rendering_only(self, steps):
        """Observations render their cameras only after these step counts (0: the reset); others get rgb={}.

        Rendering is ~97% of a recorded episode's cost, so a corpus that keeps a subsampled video runs the
        (deterministic) episode once without images to learn its length, then again rendering only the kept
        frames: the same pixels as a full render, at a fraction of the cost (roboact.sim.corpus)."""
        old, self._render_steps = self._render_steps, frozenset(int(s) for s in steps)
        try:
            yield self
        finally:
            self._render_steps = old

    def _observation(self, success: bool, info: dict) -> Observation:
        obs = self._obs
        keep = self._render_steps is None or self._steps in self._render_steps
        rgb = {cam: self.render(cam) for cam in self.cameras} if keep else {}
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

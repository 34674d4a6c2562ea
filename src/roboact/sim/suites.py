"""What the corpus builder, the demo generator, the expert table and the policy runner need to know about
each simulator suite, in one place.

A suite names its default tasks and their (action, object) labels, builds an env and an expert for a task,
and turns recorded steps into an `Episode` of the robomimic/LIBERO layout. `Suite.make_env` is the one
place an env is built, and `cached_env` the one per-process env cache, so a third suite needs a class here
and an entry in `get_suite`, nothing else. Simulators are imported only when an env is built, so this
module imports without them.
"""
from __future__ import annotations

import atexit
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from roboact.sim.base import Observation, SimError
from roboact.sim.demos import Episode

SIM_SUITES = ("libero_goal", "metaworld")


@dataclass(frozen=True)
class TaskLabel:
    action: str
    object: str
    note: str = ""


class Suite(Protocol):
    name: str
    source: str            # manifest `source`, e.g. "libero"
    embodiment: str        # manifest `embodiment`, e.g. "panda"
    default_cameras: tuple[str, ...]

    def tasks(self) -> list[str]: ...         # the default tasks
    def all_tasks(self) -> list[str]: ...     # what "--tasks all" selects: every task with an expert and a label
    def expert_tasks(self) -> list[str]: ...  # every task with a scripted expert, labelled or not
    def expert_reset(self, task: str, i: int) -> dict: ...  # how episode i of the expert table resets
    def episode_cap(self, task: str) -> int | None: ...  # a demonstration's step cap; None: the env's own
    def canonical(self, task: str) -> str: ...
    def label(self, task: str) -> TaskLabel: ...
    def label_table(self) -> dict[str, tuple[str, str]]: ...  # task -> (action, object), every labelled task
    def instruction(self, task: str) -> str: ...  # the language instruction the env and its demos carry
    def make_env(self, task: str, image_size: int, cameras: tuple[str, ...],
                 max_steps: int | None = None): ...  # cameras () renders nothing; None: the env's own cap
    def make_expert(self, task: str): ...
    def phase(self, expert) -> str: ...
    def video_frame(self, obs: Observation) -> np.ndarray: ...
    def file_attrs(self, env) -> dict[str, Any]: ...
    def sim_state(self, env, obs: Observation) -> np.ndarray: ...
    def episode(self, steps: list, final: Observation, seed: int) -> Episode: ...


class LiberoGoalSuite:
    name, source, embodiment = "libero_goal", "libero", "panda"
    default_cameras = ("agentview",)
    obs_keys = {"agentview": "agentview_rgb", "robot0_eye_in_hand": "eye_in_hand_rgb"}
    low_dim = ("ee_pos", "ee_ori", "gripper_states", "joint_states")

    def tasks(self) -> list[str]:
        """The paper's four: what the benchmark and a plain `roboact demos` run."""
        from roboact.sim.libero import PAPER_LIBERO_TASKS

        return list(PAPER_LIBERO_TASKS)

    def all_tasks(self) -> list[str]:
        """All ten LIBERO-Goal tasks, in LIBERO's order (each has a scripted expert)."""
        from roboact.sim.experts import EXPERTS
        from roboact.sim.libero import LIBERO_GOAL_TASKS

        return [t for t in LIBERO_GOAL_TASKS if t in EXPERTS]

    def expert_tasks(self) -> list[str]:
        return self.all_tasks()

    def expert_reset(self, task: str, i: int) -> dict:
        """LIBERO's own evaluation protocol: fixed initial state i."""
        return {"init_state": i}

    def episode_cap(self, task: str) -> int | None:
        """200 (the paper's cap), or more for a task whose expert needs it (LiberoTask.max_steps)."""
        from roboact.sim.libero import LIBERO_GOAL_TASKS

        return LIBERO_GOAL_TASKS[self.canonical(task)].max_steps

    def canonical(self, task: str) -> str:
        from roboact.sim.libero import short_name

        name = short_name(task, self.name)
        if name not in self.all_tasks():
            raise SimError(f"no scripted expert for {self.name} task {task!r}; "
                           f"tasks with experts: {', '.join(self.all_tasks())}")
        return name

    def label(self, task: str) -> TaskLabel:
        from roboact.sim.libero import LIBERO_GOAL_TASKS

        t = LIBERO_GOAL_TASKS[self.canonical(task)]
        return TaskLabel(t.action, t.object, t.note)

    def label_table(self) -> dict[str, tuple[str, str]]:
        from roboact.sim.libero import LIBERO_GOAL_TASKS

        return {name: (t.action, t.object) for name, t in LIBERO_GOAL_TASKS.items()}

    def instruction(self, task: str) -> str:
        """LIBERO's own language instruction (from the task's BDDL problem), as its demos record it."""
        from roboact.sim.libero import task_files

        return task_files(self.canonical(task)).instruction

    def make_env(self, task: str, image_size: int, cameras: tuple[str, ...], max_steps: int | None = None):
        """Any task of the suite (LiberoEnv names an unknown one), not only those with an expert."""
        from roboact.sim.libero import LiberoConfig, LiberoEnv

        cap = {} if max_steps is None else {"max_steps": max_steps}
        return LiberoEnv(LiberoConfig(task=task, image_size=image_size, cameras=tuple(cameras), **cap))

    def make_expert(self, task: str):
        from roboact.sim.experts import expert_for

        return expert_for(self.canonical(task))

    def phase(self, expert) -> str:
        return getattr(expert, "phase", "?")

    def video_frame(self, obs: Observation) -> np.ndarray:
        return obs.rgb[next(iter(obs.rgb))]

    def file_attrs(self, env) -> dict[str, Any]:
        return env.record_attrs()

    def sim_state(self, env, obs: Observation) -> np.ndarray:
        return obs.state  # LIBERO's flattened MuJoCo state already

    def episode(self, steps: list[tuple], final: Observation, seed: int) -> Episode:
        obs = [o for o, *_ in steps]
        low = {k: np.stack([o.info[k] for o in obs]) for k in self.low_dim}
        images = {self.obs_keys[c]: np.stack([o.rgb[c] for o in obs]) for c in obs[0].rgb}
        robot = np.concatenate([low["gripper_states"], low["ee_pos"],
                                np.stack([o.info["ee_quat"] for o in obs])], axis=1)   # (T, 9) as LIBERO
        ee_states = np.concatenate([low["ee_pos"], low["ee_ori"]], axis=1)              # (T, 6)
        return make_episode(steps, final, seed, {**images, **low, "ee_states": ee_states}, robot)


class MetaWorldSuite:
    """Meta-World (Sawyer) through roboact.sim.metaworld; tasks are those with an atomic (action, object) label.

    `states` holds MuJoCo's [time, qpos, qvel] (replayable, like robomimic's); the 39-d Meta-World observation
    vector the experts read is stored as obs/object_state beside obs/ee_pos and obs/gripper_states.
    """

    name, source, embodiment = "metaworld", "metaworld", "sawyer"
    default_cameras = ("corner",)

    def tasks(self) -> list[str]:
        from roboact.sim.metaworld import ATOMIC_TASKS

        return list(ATOMIC_TASKS)

    def all_tasks(self) -> list[str]:
        return self.tasks()

    def expert_tasks(self) -> list[str]:
        """All of Meta-World's scripted experts: the expert table measures unlabelled tasks too, since a task
        is labelled only once its expert is shown to succeed."""
        from roboact.sim.metaworld import expert_tasks

        return expert_tasks()

    def expert_reset(self, task: str, i: int) -> dict:
        """Episode i of a default (seed 0) corpus: the table measures the very scenes `roboact simulate
        metaworld` runs, not some other draw of the task's random range."""
        from roboact.sim.corpus import episode_seed

        return {"seed": episode_seed(0, task, i)}

    def episode_cap(self, task: str) -> int | None:
        return None  # MetaWorldEnv's own

    def canonical(self, task: str) -> str:
        from roboact.sim.metaworld import label_for

        task = task.strip().removeprefix("metaworld/")
        label_for(task)  # SimError listing the labelled tasks
        return task

    def label(self, task: str) -> TaskLabel:
        from roboact.sim.metaworld import label_for

        lab = label_for(self.canonical(task))
        return TaskLabel(lab.action, lab.object)

    def label_table(self) -> dict[str, tuple[str, str]]:
        from roboact.sim.metaworld import label_pairs

        return label_pairs()

    def instruction(self, task: str) -> str:
        """'open the drawer' for a labelled task (roboact.sim.metaworld.instruction_for), as the env says it."""
        from roboact.sim.metaworld import instruction_for

        return instruction_for(self.canonical(task))

    def make_env(self, task: str, image_size: int, cameras: tuple[str, ...], max_steps: int | None = None):
        """Any Meta-World task (MetaWorldEnv names an unknown one), not only those with an atomic label."""
        from roboact.sim.metaworld import MetaWorldEnv

        cap = {} if max_steps is None else {"max_steps": max_steps}
        return MetaWorldEnv(task.strip().removeprefix("metaworld/"), cameras=tuple(cameras), image_size=image_size,
                            **cap)

    def make_expert(self, task: str):
        """Any task with a scripted expert (`expert_for` names one without), labelled or not, like `make_env`."""
        from roboact.sim.metaworld import expert_for, quiet_experts

        quiet_experts()
        return _PolicyExpert(expert_for(task.strip().removeprefix("metaworld/")))

    def phase(self, expert) -> str:
        return "metaworld policy"

    def video_frame(self, obs: Observation) -> np.ndarray:
        return obs.rgb[next(iter(obs.rgb))]

    def file_attrs(self, env) -> dict[str, Any]:
        problem = {"problem_name": env.task, "domain_name": "metaworld", "language_instruction": env.instruction}
        kwargs = {"cameras": list(env.cameras), "image_size": env.image_size, "max_steps": env.max_steps}
        return {"env_name": env.task, "problem_info": problem, "language_instruction": env.instruction,
                "env_args": {"type": 2, "env_name": env.task, "env_kwargs": kwargs},
                "macros_image_convention": "opencv", "task": f"metaworld/{env.task}"}

    def sim_state(self, env, obs: Observation) -> np.ndarray:
        d = env.data
        return np.concatenate([[d.time], d.qpos, d.qvel]).astype(np.float64)

    def episode(self, steps: list[tuple], final: Observation, seed: int) -> Episode:
        obs = [o for o, *_ in steps]
        images = {f"{c}_rgb": np.stack([o.rgb[c] for o in obs]) for c in obs[0].rgb}
        vec = np.stack([o.state for o in obs]).astype(np.float64)                      # (T, 39)
        low = {"ee_pos": vec[:, :3], "gripper_states": vec[:, 3:4], "object_state": vec}
        return make_episode(steps, final, seed, {**images, **low}, None)


class _PolicyExpert:
    """Meta-World's scripted policies read the observation vector; adapt them to reset(env) / act(obs)."""

    def __init__(self, policy):
        self.policy = policy

    def reset(self, env) -> None:
        pass

    def act(self, obs: Observation) -> np.ndarray:
        return np.asarray(self.policy.get_action(obs.state), dtype=np.float64)


def make_episode(steps: list[tuple], final: Observation, seed: int, obs: dict[str, np.ndarray],
                 robot_states: np.ndarray | None) -> Episode:
    """robomimic convention: obs/state at t are before action t; reward/done at t follow it."""
    t = len(steps)
    rewards = np.array([float(o.success) for o, *_ in steps[1:]] + [float(final.success)])
    dones = np.zeros(t, dtype=np.uint8)
    dones[-1] = 1
    states = np.stack([s for *_, s in steps])
    return Episode(actions=np.stack([a for _, a, _ in steps]), states=states, rewards=rewards, dones=dones,
                   robot_states=robot_states, obs=obs,
                   attrs={"seed": seed, "init_state": states[0], "success": bool(final.success)})


def select_tasks(suite: Suite, names: list[str]) -> list[str]:
    """A config's `tasks` as canonical names: none given, the suite's defaults; ["all"], every task with an
    expert; otherwise each name checked (a SimError lists the tasks with experts)."""
    if not names:
        return suite.tasks()
    if [n.strip().lower() for n in names] == ["all"]:
        return suite.all_tasks()
    return [suite.canonical(t) for t in names]


def get_suite(name: str):
    if name == "libero_goal":
        return LiberoGoalSuite()
    if name == "metaworld":
        return MetaWorldSuite()
    raise SimError(f"unknown suite {name!r}; known: {', '.join(SIM_SUITES)}")


# --- the per-process env cache ------------------------------------------------------------------------

_ENVS: dict[tuple, Any] = {}
_CLOSE_AT_EXIT: list[bool] = []


def cached_env(suite: Suite, task: str, image_size: int, cameras: tuple[str, ...], max_steps: int | None = None):
    """This process's env for (suite, task, settings), built by `suite.make_env` on first use.

    Building an env and its renderer costs 0.2 s (Meta-World) to 5 s (LIBERO), reusing one nothing, and a
    worker runs many episodes of one task in a row. A new key closes the old env first, so a process holds
    one GL context at a time. A pool worker exits with its env still cached: the exit hook, registered
    after the first env started EGL (whose own hook terminates the display), frees it before EGL is gone,
    so no EGLError is printed at exit."""
    key = (suite.name, task, image_size, tuple(cameras), max_steps)
    if key not in _ENVS:
        close_envs()
        _ENVS[key] = suite.make_env(task, image_size, tuple(cameras), max_steps=max_steps)
        if not _CLOSE_AT_EXIT:
            atexit.register(close_envs)
            _CLOSE_AT_EXIT.append(True)
    return _ENVS[key]


def close_envs() -> None:
    """Free this process's cached env (its GL context would otherwise be torn down noisily at exit)."""
    for env in _ENVS.values():
        env.close()
    _ENVS.clear()

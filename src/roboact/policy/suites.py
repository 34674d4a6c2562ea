"""The two policy benchmarks, as plain data: which tasks, which camera, which demo fields, which initial states.

Everything suite-specific that the dataset, the env runner and the table builder need lives here, so the
rest of `roboact.policy` never branches on the simulator. Simulators are imported only when an env or an
expert is built (through `roboact.sim.suites`), so this module imports without them.

Initial states. LIBERO evaluates on its 50 fixed initial states per task (`reset(init_state=i)`);
demonstrations are made from freshly sampled placements, so they never coincide. Meta-World has no fixed
states: rollout i resets with seed `eval_seed_base + i` (100000 + i), far from the seeds `roboact demos`
gives demonstrations (0, 1, 2, ...); the dataset refuses demo files whose seeds collide with them.
"""
from __future__ import annotations

from dataclasses import dataclass

from roboact.data.heldout import BENCHMARK_TASKS


class PolicyError(ValueError):
    """Bad benchmark input (unknown task, wrong checkpoint, missing or short demos, broken expert check);
    the message names what and where. Simulator failures stay `roboact.sim.base.SimError`."""


@dataclass(frozen=True)
class BenchSuite:
    name: str                          # "libero_goal" | "metaworld"
    tasks: tuple[str, ...]             # Table II order (tasks 1-4)
    smoke_task: str                    # the one task smoke mode runs (short expert episodes)
    smoke_max_steps: int               # a cap the smoke task's expert meets with margin
    smoke_multitask: tuple[str, ...]   # the multi-task smoke run's tasks: experts within smoke_max_steps
    camera: str                        # the policy's camera, as the env names it
    image_key: str                     # its frames in a demo file: obs/<image_key>
    proprio_keys: tuple[str, ...]      # demo fields whose concatenation equals the env's Observation.proprio
    proprio_dim: int
    action_dim: int
    max_init_states: int | None        # LIBERO: 50 fixed states; Meta-World: unbounded (seeded)
    eval_seed_base: int = 0            # Meta-World: rollout i uses seed eval_seed_base + i
    analogue_of: tuple[str, ...] = ()  # what each task stands for in the paper's Table II

    def reset_kwargs(self, i: int) -> dict:
        """How rollout i resets its env: the same i always gives the same scene."""
        if self.max_init_states is not None:
            if not 0 <= i < self.max_init_states:
                raise PolicyError(f"{self.name}: rollout {i} needs fixed initial state {i}, but the suite has "
                               f"{self.max_init_states}; ask for at most {self.max_init_states} rollouts")
            return {"init_state": i}
        return {"seed": self.eval_seed_base + i}

    def eval_seeds(self, episodes: int) -> set[int]:
        """Seeds rollouts will use (empty for fixed-state suites): demos must avoid them."""
        return set() if self.max_init_states is not None else {self.eval_seed_base + i for i in range(episodes)}

    def canonical(self, task: str) -> str:
        """A task name as the suite's files call it; PolicyError naming the known tasks otherwise."""
        from roboact.sim.base import SimError
        from roboact.sim.suites import get_suite

        try:
            return get_suite(self.name).canonical(task)
        except SimError as e:
            raise PolicyError(f"unknown {self.name} task {task!r}: {e}") from None


# The paper's Table II columns (its Tasks 1-4): what each suite's four tasks stand for. The LIBERO-Goal task
# objects themselves live in roboact.sim.libero.PAPER_LIBERO_TASKS.
PAPER_TASK_LABELS = ("open the middle drawer", "push the plate to the front of the stove",
                     "put the cream cheese in the bowl", "turn on the stove")

BENCH_SUITES: dict[str, BenchSuite] = {
    "libero_goal": BenchSuite(
        name="libero_goal",
        tasks=BENCHMARK_TASKS["libero_goal"],  # one home, shared with the never-pretrain list
        smoke_task="turn_on_the_stove", smoke_max_steps=130,
        smoke_multitask=("turn_on_the_stove", "open_the_middle_drawer_of_the_cabinet"),
        camera="agentview", image_key="agentview_rgb", proprio_keys=("joint_states", "gripper_states"),
        proprio_dim=9, action_dim=7, max_init_states=50, analogue_of=PAPER_TASK_LABELS),
    "metaworld": BenchSuite(
        name="metaworld",
        # analogues of the paper's four: open a drawer, slide a plate, pick and place an object, turn a knob
        tasks=BENCHMARK_TASKS["metaworld"],
        smoke_task="plate-slide-v3", smoke_max_steps=80,
        smoke_multitask=("plate-slide-v3", "pick-place-v3"),
        camera="corner", image_key="corner_rgb", proprio_keys=("ee_pos", "gripper_states"),
        proprio_dim=4, action_dim=4, max_init_states=None, eval_seed_base=100_000, analogue_of=PAPER_TASK_LABELS),
}


def get_bench_suite(name: str) -> BenchSuite:
    if name not in BENCH_SUITES:
        raise PolicyError(f"unknown policy benchmark suite {name!r}; known: {', '.join(BENCH_SUITES)}")
    return BENCH_SUITES[name]

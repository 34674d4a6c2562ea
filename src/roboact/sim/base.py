"""One small environment interface over the simulators, so data generation and policy rollouts don't care
whether they drive Meta-World's Sawyer or LIBERO's Panda.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class SimError(RuntimeError):
    """A simulator failed to start or step, a task is unknown, or an asset is missing; names which."""


@dataclass
class Observation:
    rgb: dict[str, np.ndarray]          # camera name -> uint8 [H, W, 3], right way up
    proprio: np.ndarray                 # float32 [P]: robot joint/eef/gripper state
    state: np.ndarray                   # float32 [S]: full simulator observation vector (for records)
    success: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class SimEnv(Protocol):
    """What every simulator wrapper provides."""

    task: str                 # task name, e.g. "drawer-open-v3" or "libero_goal/open_the_middle_drawer_of_the_cabinet"
    instruction: str          # the task's language instruction
    cameras: tuple[str, ...]  # cameras rendered into Observation.rgb
    action_dim: int
    max_steps: int            # episode cap (200 by default, as in the paper)
    fps: float                # control frequency

    def reset(self, seed: int | None = None, init_state: int | None = None) -> Observation: ...

    def step(self, action: np.ndarray) -> Observation: ...

    def close(self) -> None: ...

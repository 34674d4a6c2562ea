"""Scripted experts that use true object poses: waypoints plus one shared controller (controller.py).

`expert_for("libero_goal/turn_on_the_stove")` returns a fresh expert; `reset(env)` plans it for the current
scene and `act(obs)` gives the next action. Importing this package needs no simulator.
"""
from __future__ import annotations

from roboact.sim.base import SimError
from roboact.sim.experts.libero_goal import EXPERTS, LiberoExpert


def expert_for(task: str) -> LiberoExpert:
    name = task.split("/", 1)[1] if task.startswith("libero_goal/") else task
    name = name.strip().replace(" ", "_")
    if name not in EXPERTS:
        raise SimError(f"no scripted expert for task {task!r}; experts exist for: {', '.join(EXPERTS)}")
    return EXPERTS[name]()


__all__ = ["EXPERTS", "LiberoExpert", "expert_for"]

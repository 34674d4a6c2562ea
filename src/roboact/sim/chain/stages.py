"""The instruction chain as data: four stages in LIBERO-Goal's kitchen, each an atomic instruction with its own
success predicate on the simulator state and a scripted expert that starts from whatever the previous stage left.

The paper's sequential task (open the drawer, pick up the object, place it on the table, close the drawer)
needs an object inside a closed drawer, which none of LIBERO-Goal's initial states has; the chain's initial
states put the black bowl there with our own experts (roboact.sim.chain.starts). The stages:

    1. "open the top drawer of the cabinet"   top drawer's joint < -0.14 (LIBERO's own "open" for this cabinet)
    2. "pick up the black bowl"               the bowl touches the gripper and nothing else, its foot at least
                                              2 cm above the drawer's floor
    3. "place the black bowl on the table"    the bowl touches the table, not the gripper, and stands upright
    4. "close the top drawer of the cabinet"  top drawer's joint > -0.005 (within 5 mm of shut)

A stage is done at the first step its predicate holds, and the next instruction starts at once, as in
CALVIN: so each expert begins by freeing the hand from what the previous stage left it doing (holding the
drawer's handle mid-pull, the bowl mid-lift, the bowl just let go), and a policy under the same switching
sees the same hand-overs. Predicates read MuJoCo's state through `Scene`, never the images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from roboact.sim.experts.controller import CLOSE, DOWN, OPEN, Phase, ReadOnce, Scene
from roboact.sim.experts.libero_goal import (BOWL, BOWL_CARRY, BOWL_GRIP_Z, BOWL_RIM, HOOK, TOP_HANDLE, TOP_JOINT,
                                             LiberoExpert, hook_drawer, place)

# Thresholds (docs/libero.md, "The instruction chain", says how each was measured).
OPEN_BELOW = -0.14        # LIBERO's WoodenCabinet.is_open; the drawer's stop is -0.16
CLOSED_ABOVE = -0.005     # LIBERO's is_close is q > 0 (shut is 0.0); 5 mm of slack for a pushed drawer
DRAWER_FLOOR_Z = 1.064    # top of the top drawer's floor (geom wooden_cabinet_1_g16), any drawer position
LIFT_MARGIN = 0.02        # the bowl's foot this far above the drawer's floor counts as lifted out
UPRIGHT_COS = 0.9         # the bowl's axis within 26 deg of vertical counts as standing
GRIPPER_PREFIX = "gripper0_"
TABLE = "table"
CARRY_Z = 1.21            # grip-site height while carrying the bowl (its foot 1.17: above the drawer's walls, 1.121)


def drawer_open(scene: Scene) -> bool:
    return scene.qpos(TOP_JOINT) < OPEN_BELOW


def drawer_closed(scene: Scene) -> bool:
    return scene.qpos(TOP_JOINT) > CLOSED_ABOVE


def bowl_picked(scene: Scene) -> bool:
    touching = scene.touching(BOWL)
    return (bool(touching) and all(b.startswith(GRIPPER_PREFIX) for b in touching)
            and scene.body_pos(BOWL)[2] > DRAWER_FLOOR_Z + LIFT_MARGIN)


def bowl_on_table(scene: Scene) -> bool:
    touching = scene.touching(BOWL)
    return (TABLE in touching and not any(b.startswith(GRIPPER_PREFIX) for b in touching)
            and scene.body_up(BOWL) > UPRIGHT_COS)


class _ChainExpert(LiberoExpert):
    """A stage's expert: planned from the scene when its stage starts; fast moves as the top-drawer expert's."""

    pos_gain = 2.0
    fast, via_tol = 0.025, 0.03

    def __init__(self, place_at: np.ndarray | None = None) -> None:
        super().__init__()
        self.place_at = place_at


class OpenTopDrawer(_ChainExpert):
    """Hook the top drawer's handle and pull it to its stop (the top-drawer expert's drawer phases)."""

    orientation = HOOK

    def plan(self, scene: Scene) -> list[Phase]:
        return hook_drawer(scene.geom_pos(TOP_HANDLE), TOP_JOINT, pull_speed=0.012, open_at=-0.155, speed=self.fast,
                           reach_from=0.08, reach_speed=0.01, hold=9, via_tol=self.via_tol)


class PickBowlFromDrawer(_ChainExpert):
    """Let go of the handle, grip the bowl's -x wall from above with the fingers closing along x (the way the
    top-drawer expert lowered it in), lift it 6 mm, slide it 2 cm toward the drawer's front, lift it clear.

    The slide is for a drawer opened only as far as "open" needs (-0.14, where stage 1 hands over): then the
    bowl's far rim is still 1 cm under the cabinet's top panel, which a straight lift would catch
    (docs/results/chain/geometry.txt).
    """

    orientation = BOWL_CARRY

    def plan(self, scene: Scene) -> list[Phase]:
        f, tol = self.fast, self.via_tol
        here = ReadOnce(lambda s: s.eef_pos())
        grasp = ReadOnce(lambda s: s.body_pos(BOWL) + [-BOWL_RIM, 0.0, BOWL_GRIP_Z + 0.006])
        o = {"orientation": HOOK}
        return [
            Phase("let go", here, OPEN, hold=3, tol=0.02, timeout=8, **o),
            Phase("back off", here + [0.0, 0.08, 0.05], OPEN, speed=f, tol=tol, timeout=25, **o),
            # straight from HOOK to BOWL_CARRY the wrist ends 16 deg short (and the hand 4 cm off in x); through
            # DOWN, as the top-drawer expert turns, it gets there
            Phase("turn down", here + [0.0, 0.08, 0.05], OPEN, hold=2, tol=0.02, timeout=20, orientation=DOWN),
            Phase("above bowl", lambda s: np.r_[grasp(s)[:2], CARRY_Z], OPEN, speed=f, tol=tol, timeout=50),
            Phase("descend", grasp, OPEN, speed=0.012, tol=0.008, timeout=40),
            Phase("grasp", grasp, CLOSE, hold=9, tol=0.02, timeout=20),
            Phase("loosen", grasp + [0.0, 0.0, 0.006], CLOSE, speed=0.006, tol=0.005, timeout=10),
            Phase("slide out", grasp + [0.0, 0.02, 0.006], CLOSE, speed=0.006, tol=0.006, timeout=15),
            Phase("lift", lambda s: np.r_[grasp(s)[:2] + [0.0, 0.02], CARRY_Z], CLOSE, speed=0.012, tol=tol,
                  timeout=40),
        ]


class PlaceBowlOnTable(_ChainExpert):
    """Lift the held bowl to carrying height, carry it over `place_at` (where the chain's initial state was built
    from, the bowl's spot before it went into the drawer: clear in that scene), lower it onto the table, let go.
    """

    orientation = BOWL_CARRY

    def plan(self, scene: Scene) -> list[Phase]:
        if self.place_at is None:
            raise ValueError("PlaceBowlOnTable needs place_at, the table spot for the bowl's foot")
        here = ReadOnce(lambda s: s.eef_pos())
        release = np.asarray(self.place_at, dtype=np.float64) + [-BOWL_RIM, 0.0, BOWL_GRIP_Z + 0.006]
        return [Phase("lift", lambda s: np.r_[here(s)[:2], CARRY_Z], CLOSE, speed=0.015, tol=self.via_tol,
                      timeout=30),
                *place(release, carry=CARRY_Z - release[2], speed=self.fast, via_tol=self.via_tol)]


class CloseTopDrawer(_ChainExpert):
    """Rise off what the hand let go of, hook the top drawer's handle, push the drawer shut, let go, back off."""

    orientation = HOOK

    def plan(self, scene: Scene) -> list[Phase]:
        f, tol = self.fast, self.via_tol
        here = ReadOnce(lambda s: s.eef_pos())
        handle = ReadOnce(lambda s: s.geom_pos(TOP_HANDLE))   # where the drawer is when the approach starts
        return [
            Phase("rise", here + [0.0, 0.0, 0.08], OPEN, speed=0.015, tol=tol, timeout=20, orientation=BOWL_CARRY),
            Phase("approach handle", handle + [0.0, 0.08, 0.03], OPEN, speed=f, tol=tol, timeout=60),
            Phase("reach handle", handle, OPEN, speed=0.01, tol=0.008, timeout=40),
            Phase("close on handle", handle, CLOSE, hold=6, tol=0.02, timeout=15),
            Phase("push", handle + [0.0, -0.20, 0.0], CLOSE, speed=0.012, tol=0.01,
                  until=lambda s: s.qpos(TOP_JOINT) > -0.002, timeout=60),
            Phase("let go", ReadOnce(lambda s: s.eef_pos()), OPEN, hold=3, tol=0.02, timeout=8),
            Phase("back off", lambda s: handle(s) + [0.0, 0.12, 0.06], OPEN, speed=f, tol=tol, timeout=25),
        ]


@dataclass(frozen=True)
class Stage:
    """One instruction of the chain: what it says, when it is done, who demonstrates it, and its step budget."""

    name: str                                   # task name of its demo file, e.g. "chain_open_the_top_drawer"
    instruction: str
    action: str                                 # (action, object) label, as the demo captions use
    object: str
    done: Callable[[Scene], bool]
    expert: type[_ChainExpert]
    budget: int                                 # steps allowed to reach `done`

    def make_expert(self, place_at: np.ndarray | None = None) -> _ChainExpert:
        return self.expert(place_at)


# Budgets: 150 steps each, about twice the longest expert stage measured (77 steps, docs/libero.md); the chain 600.
STAGES: tuple[Stage, ...] = (
    Stage("chain_open_the_top_drawer_of_the_cabinet", "open the top drawer of the cabinet", "open", "drawer",
          drawer_open, OpenTopDrawer, 150),
    Stage("chain_pick_up_the_black_bowl", "pick up the black bowl", "pick up", "bowl",
          bowl_picked, PickBowlFromDrawer, 150),
    Stage("chain_place_the_black_bowl_on_the_table", "place the black bowl on the table", "place", "bowl",
          bowl_on_table, PlaceBowlOnTable, 150),
    Stage("chain_close_the_top_drawer_of_the_cabinet", "close the top drawer of the cabinet", "close", "drawer",
          drawer_closed, CloseTopDrawer, 150),
)


def chain_budget(stages: tuple[Stage, ...] = STAGES) -> int:
    return sum(s.budget for s in stages)

"""Scripted experts for LIBERO-Goal's ten tasks, planned from true object poses at reset.

Each expert reads the scene once after the reset (object poses differ per initial state: the cabinet moves
about 2 cm, the plate and cream cheese more), some phases re-read it every step (the knob's angle while
pushing it) and some once, when they start (where a set-down bowl came to rest). The phases several tasks
are built from (hook and pull a drawer, pick an object, carry it and let go) are the functions below the
experts' base class; each expert only says where.
Geometry, orientations and offsets follow docs/design.md §4, where each was measured against all 50 fixed
initial states.
"""
from __future__ import annotations

import numpy as np

from roboact.sim.experts.controller import (CLOSE, DOWN, OPEN, Phase, ReadOnce, Scene, WaypointController,
                                            rot_x, rot_z)

# Contact geoms, joints and sites of LIBERO-Goal's kitchen scene.
DRAWER_HANDLE = "wooden_cabinet_1_g29"          # middle drawer's handle bar (box along x)
DRAWER_JOINT = "wooden_cabinet_1_middle_level"  # slides; q < -0.14 is open (drawer comes out toward +y)
TOP_HANDLE, TOP_JOINT = "wooden_cabinet_1_g18", "wooden_cabinet_1_top_level"   # 7.4 cm above the middle one
CABINET, CABINET_TOP = "wooden_cabinet_1_main", "wooden_cabinet_1_top_side"
CABINET_FRONT = 0.078                           # the closed drawers' fronts: this far +y of the cabinet's origin
KNOB_BODY, KNOB_JOINT, KNOB_LEVER = "flat_stove_1_button", "flat_stove_1_button", "flat_stove_1_g19"
PLATE, CHEESE, BOWL = "plate_1_main", "cream_cheese_1_main", "akita_black_bowl_1_main"
BOTTLE = "wine_bottle_1_main"                   # body origin: the centre of the bottle's bottom
STOVE_FRONT, COOK_REGION = "main_table_stove_front_region", "flat_stove_1_cook_region"
RACK_TOP = "wine_rack_1_top_region"             # the upper shelf's front lip

# Hand orientations. DOWN closes the fingers along world y; ACROSS_X closes them along world x.
HOOK = rot_x(-80.0) @ DOWN                      # points into the cabinet, tilted 10 deg down
ACROSS_X = rot_z(90.0) @ DOWN
BOWL_CARRY = rot_z(-90.0) @ DOWN                # also across x; a bowl held at its -y side swings to +x

# Bowl (akita black bowl, 11 cm across, 5.3 cm tall; body origin at the centre of its foot): the fingers
# straddle the wall on the bowl's -y side, pads 3.2 cm above the foot.
BOWL_RIM, BOWL_GRIP_Z = 0.050, 0.032
# Wine bottle (4.2 cm body, 1 cm neck up to 15.8 cm): pinch the neck 13 cm up, so the palm (3 cm above the
# grip site) stays clear of the neck's top.
BOTTLE_GRIP_Z = 0.13


class LiberoExpert:
    """Base: `reset(env)` plans from the env's true scene, `act(obs)` returns the next 7-d action."""

    task = ""
    orientation = DOWN
    pos_gain = 1.0

    def __init__(self) -> None:
        self.scene: Scene | None = None
        self.controller: WaypointController | None = None

    def reset(self, env) -> None:
        self.scene = Scene(env.model, env.data)
        self.controller = WaypointController(self.plan(self.scene), orientation=self.orientation.copy(),
                                             pos_gain=self.pos_gain)

    def plan(self, scene: Scene) -> list[Phase]:
        raise NotImplementedError

    def act(self, obs=None) -> np.ndarray:
        if self.controller is None:
            raise RuntimeError(f"{type(self).__name__}: call reset(env) before act()")
        return self.controller.act(self.scene)

    @property
    def phase(self) -> str:
        return self.controller.phase_name if self.controller else "unset"


# ------------------------------------------------------------------ shared phases
def hook_drawer(handle: np.ndarray, joint: str, pull_speed: float = 0.004, open_at: float = -0.15,
                orientation: np.ndarray | None = None, speed: float = 0.012, reach_from: float = 0.12,
                reach_speed: float = 0.006, hold: int = 12, via_tol: float = 0.015) -> list[Phase]:
    """Hook a drawer's handle bar (its position at reset) from the front and pull until `joint` < `open_at`.

    Meant for the HOOK orientation (see OpenMiddleDrawer for why); `orientation` goes on every phase when the
    expert's other phases hold another one. The hand comes to `reach_from` in front of the bar, then onto it.
    """
    o = {"orientation": orientation}
    return [
        Phase("approach handle", handle + [0.0, reach_from, 0.02], OPEN, speed=speed, tol=via_tol, timeout=70, **o),
        Phase("reach handle", handle, OPEN, speed=reach_speed, tol=0.008, timeout=40, **o),
        Phase("close on handle", handle, CLOSE, hold=hold, tol=0.02, timeout=20, **o),
        Phase("pull", handle + [0.0, 0.20, 0.0], CLOSE, speed=pull_speed, tol=0.01,
              until=lambda s: s.qpos(joint) < open_at, timeout=80, **o),
    ]


def pick(grasp: np.ndarray | ReadOnce, lift: float, clearance: float = 0.10, speed: float = 0.015, hold: int = 10,
         orientation: np.ndarray | None = None, descend_speed: float = 0.008,
         via_tol: float = 0.015) -> list[Phase]:
    """Come down on `grasp` from `clearance` above it with open fingers, close, lift by `lift`.

    `grasp` is a point known at reset, or a ReadOnce for an object that an earlier phase moved.
    """
    o = {"orientation": orientation}
    return [
        Phase("above object", grasp + [0.0, 0.0, clearance], OPEN, speed=speed, tol=via_tol, **o),
        Phase("descend", grasp, OPEN, speed=descend_speed, tol=0.008, timeout=40, **o),
        Phase("grasp", grasp, CLOSE, hold=hold, tol=0.02, timeout=20, **o),
        Phase("lift", grasp + [0.0, 0.0, lift], CLOSE, speed=0.012, tol=0.015, timeout=40, **o),
    ]


def place(release: np.ndarray, carry: float, speed: float = 0.012, retreat: float = 0.08, hold: int = 8,
          orientation: np.ndarray | None = None, via_tol: float = 0.015) -> list[Phase]:
    """Carry the held object to `carry` above `release`, lower it there, let go and back off upward."""
    o = {"orientation": orientation}
    return [
        Phase("carry", release + [0.0, 0.0, carry], CLOSE, speed=speed, tol=via_tol, timeout=60, **o),
        Phase("lower", release, CLOSE, speed=0.008, tol=0.01, timeout=30, **o),
        Phase("release", release, OPEN, hold=hold, tol=0.02, timeout=15, **o),
        Phase("retreat", release + [0.0, 0.0, retreat], OPEN, speed=0.012, tol=0.015, timeout=30, **o),
    ]


def bowl_grasp(scene: Scene) -> np.ndarray:
    """Grip-site target on the bowl's wall at its -y side (clear of the plate at +x and the cheese at +y)."""
    return scene.body_pos(BOWL) + [0.0, -BOWL_RIM, BOWL_GRIP_Z]


def bottle_grasp(scene: Scene) -> np.ndarray:
    return scene.body_pos(BOTTLE) + [0.0, 0.0, BOTTLE_GRIP_Z]


class OpenMiddleDrawer(LiberoExpert):
    """Hook the handle bar from the front with the hand pointing into the cabinet, close, pull out.

    The hand is turned -80 deg about world x from pointing down (so it points at the cabinet, tilted 10 deg
    down) and the fingers open one above and one below the bar. Approaching level plows the hand through
    the plate or bowl; grasping from above catches the top drawer's handle instead.
    """

    task = "open_the_middle_drawer_of_the_cabinet"
    orientation = HOOK

    def plan(self, scene: Scene) -> list[Phase]:
        return [*hook_drawer(scene.geom_pos(DRAWER_HANDLE), DRAWER_JOINT),
                Phase("release", lambda s: s.eef_pos(), OPEN, hold=5, timeout=10)]


class PutCreamCheeseInBowl(LiberoExpert):
    """Top-down pick of the cream cheese box and place into the bowl."""

    task = "put_the_cream_cheese_in_the_bowl"

    def plan(self, scene: Scene) -> list[Phase]:
        c, b = scene.body_pos(CHEESE), scene.body_pos(BOWL)
        return [*pick(c + [0.0, 0.0, 0.005], lift=0.115, clearance=0.095), *place(b + [0.0, 0.0, 0.07], carry=0.05)]


class TurnOnStove(LiberoExpert):
    """With the gripper closed and pointing down, push the knob's lever around its pivot.

    The target is recomputed every step: 4 cm from the pivot, 0.3 rad ahead of the lever's current angle,
    so the push follows the lever's arc instead of a straight line that would slide off it.
    """

    task = "turn_on_the_stove"
    reach, lead, z_push = 0.04, 0.3, 0.925

    def plan(self, scene: Scene) -> list[Phase]:
        lever = scene.geom_pos(KNOB_LEVER)
        start = lever + [0.0, 0.06, 0.0]
        return [
            Phase("above lever", np.r_[start[:2], self.z_push + 0.08], CLOSE, speed=0.015, tol=0.015),
            Phase("descend", np.r_[start[:2], self.z_push], CLOSE, speed=0.008, tol=0.008, timeout=40),
            Phase("push", self._push_target, CLOSE, speed=0.006, tol=0.005,
                  until=lambda s: s.qpos(KNOB_JOINT) > 0.7, timeout=100),
            Phase("retreat", lambda s: s.eef_pos() + [0.0, 0.0, 0.05], CLOSE, speed=0.01, hold=3, timeout=15),
        ]

    def _push_target(self, scene: Scene) -> np.ndarray:
        pivot = scene.body_pos(KNOB_BODY)
        lever = scene.geom_pos(KNOB_LEVER) - pivot
        angle = np.arctan2(lever[1], lever[0]) + self.lead
        return np.array([pivot[0] + self.reach * np.cos(angle), pivot[1] + self.reach * np.sin(angle),
                         self.z_push])


class PushPlateToStoveFront(LiberoExpert):
    """Carry the plate (pinch its near rim, lift 4 cm, set it down in front of the stove).

    The task says "push", but a push jams: the cream cheese sits between plate and goal in every initial
    state and the plate's rim slopes about 20 deg. Demonstrations made by this expert are carries.
    The fingers close along world x (so tilting about x keeps both at the same height) and the hand is
    tilted 35 deg toward the plate so it stays clear of the bottom drawer's handle.
    """

    task = "push_the_plate_to_the_front_of_the_stove"
    orientation = rot_x(-35.0) @ rot_z(90.0) @ DOWN
    lift = 0.04

    def plan(self, scene: Scene) -> list[Phase]:
        p, goal = scene.body_pos(PLATE), scene.site_pos(STOVE_FRONT)
        x, y = p[0], p[1]
        grip = np.array([x, y - 0.065, 0.914])
        carry = np.array([goal[0], goal[1] - 0.065, 0.914 + self.lift])
        return [
            Phase("above rim", [x, y - 0.06, 0.994], OPEN, speed=0.015, tol=0.015),
            Phase("down inside rim", [x, y - 0.06, 0.930], OPEN, speed=0.008, tol=0.008, timeout=30),
            Phase("back over rim", [x, y - 0.085, 0.930], OPEN, speed=0.006, tol=0.006, timeout=20),
            Phase("descend", [x, y - 0.085, 0.914], OPEN, speed=0.005, tol=0.005, timeout=20),
            Phase("straddle rim", grip, OPEN, speed=0.005, tol=0.005, timeout=20),
            Phase("pinch", grip, CLOSE, hold=10, tol=0.02, timeout=15),
            Phase("lift", grip + [0.0, 0.0, self.lift], CLOSE, speed=0.006, tol=0.008, timeout=20),
            Phase("carry", carry, CLOSE, speed=0.008, tol=0.008, timeout=60),
            Phase("lower", carry - [0.0, 0.0, self.lift - 0.004], CLOSE, speed=0.005, tol=0.006, timeout=20),
            Phase("release", carry - [0.0, 0.0, self.lift - 0.004], OPEN, hold=6, tol=0.02, timeout=12),
            Phase("retreat", carry + [0.0, -0.04, 0.06], OPEN, speed=0.01, tol=0.015, timeout=20),
        ]


class _PutBowl(LiberoExpert):
    """Pick the bowl by the -y side of its wall, lift it by `lift`, turn the hand -90 deg about z so the bowl
    swings round to the +x side of the fingers, carry it `carry` above where its foot should go (`target`),
    lower it there and let go.

    Why the turn: picked at its -y side (the only side clear of the bottle, plate and cheese in every
    initial state), the hand's 20 cm length lies along y; carried that way it hits the cabinet's drawer
    handles next to the plate and the cabinet's top next to the top drawer. Turned, it lies along x.
    """

    lift, carry = 0.08, 0.05

    def target(self, scene: Scene) -> np.ndarray:
        raise NotImplementedError

    def plan(self, scene: Scene) -> list[Phase]:
        grasp = bowl_grasp(scene)
        return [*pick(grasp, lift=self.lift),
                Phase("turn", grasp + [0.0, 0.0, self.lift], CLOSE, hold=4, tol=0.015, timeout=15,
                      orientation=BOWL_CARRY),
                *place(self.target(scene) + [-BOWL_RIM, 0.0, BOWL_GRIP_Z], carry=self.carry,
                       orientation=BOWL_CARRY)]


class PutBowlOnPlate(_PutBowl):
    """Set the bowl down 1 cm above the plate's centre (success needs the centres within 3 cm)."""

    task = "put_the_bowl_on_the_plate"

    def target(self, scene: Scene) -> np.ndarray:
        return scene.body_pos(PLATE) + [0.0, 0.0, 0.012]


class PutBowlOnStove(_PutBowl):
    """Set the bowl down 1 cm above the burner's centre (the cook region, 15 cm square)."""

    task = "put_the_bowl_on_the_stove"
    lift = 0.10

    def target(self, scene: Scene) -> np.ndarray:
        return scene.site_pos(COOK_REGION) + [0.0, 0.0, 0.035]


class PutBowlOnCabinet(_PutBowl):
    """Lift the bowl 30 cm (its foot then clears the cabinet's top, 23 cm above the table), carry it over the
    near half of the top and set it down there."""

    task = "put_the_bowl_on_top_of_the_cabinet"
    lift = 0.30

    def target(self, scene: Scene) -> np.ndarray:
        return scene.site_pos(CABINET_TOP) + [-0.03, 0.03, 0.012]


class OpenTopDrawerPutBowlInside(LiberoExpert):
    """Move the bowl out of the top drawer's way, open the drawer, put the bowl in it.

    Opened first, the top drawer would hang 10 cm above the bowl (docs/libero.md), with no room to lift it. So
    the bowl is picked (the bowl pick of _PutBowl) and set down 24.5 cm to +y, beyond the cream cheese (it is
    carried 3.5 cm up, over the 1.8 cm box), where the open drawer, its handle and the hand picking the bowl
    again are at least 4 cm apart in every initial state. The drawer is hooked and pulled as the middle one,
    to its stop. The bowl is picked again where it came to rest (read when that pick starts), 6 mm higher,
    so the fingers pass over the cheese box; lifted 4 cm, then straight up to 1.165 m, while turning -90 deg
    about z as the other bowl experts do, so that the hand lies along the drawer's 21 cm width and its ends
    stay clear of the drawer's front; then carried over the part of the drawer that sticks out of the cabinet
    and lowered in. LIBERO's goal is the bowl's foot inside the drawer's region, so success comes as the
    bowl goes down into the drawer.

    Two pick-and-places and a drawer do not fit 200 steps; LIBERO-Goal's episodes for this task are capped at
    300 (LiberoTask.max_steps). To fit that with room to spare, the free moves are faster than the other
    experts' and the position gain is doubled, which halves the settling at each of its 23 waypoints.
    """

    task = "open_the_top_drawer_and_put_the_bowl_inside"
    pos_gain = 2.0
    park_dy = 0.245          # where the bowl waits: this far +y of where it starts
    carry_foot_z = 1.165     # the bowl's foot while carried over the open drawer (its walls' tops: 1.121)
    fast, via_tol = 0.025, 0.03

    def plan(self, scene: Scene) -> list[Phase]:
        f, tol = self.fast, self.via_tol
        cabinet, handle = scene.body_pos(CABINET), scene.geom_pos(TOP_HANDLE)
        aside = scene.body_pos(BOWL) + [0.0, self.park_dy, 0.0]
        # Coming down on the bowl's -y wall, the hand's far end (10 cm from the grip site) hits the closed top
        # drawer's front where the bowl is close to the cabinet (initial states 13 and 19: stopped 1.2 cm short,
        # the descent ran into its 40-step timeout): grip up to 1 cm off the wall's centre, the fingers still
        # straddle it.
        grasp = bowl_grasp(scene)
        grasp[1] = max(grasp[1], cabinet[1] + CABINET_FRONT + 0.10)
        # the bowl's foot in the open drawer: 3 cm to +x of the cabinet's centre, 14.6 cm out from it
        inside = np.array([cabinet[0] + 0.03, cabinet[1] + 0.146, 1.069])
        regrasp = ReadOnce(lambda s: bowl_grasp(s) + [0.0, 0.0, 0.006])
        release = inside + [-BOWL_RIM, 0.0, BOWL_GRIP_Z + 0.006]
        carry_z = self.carry_foot_z + BOWL_GRIP_Z + 0.006
        o = {"orientation": HOOK}
        return [
            *pick(grasp, lift=0.035, clearance=0.07, speed=f, hold=9, descend_speed=0.012),
            *place(aside + [0.0, -BOWL_RIM, BOWL_GRIP_Z + 0.005], carry=0.035, speed=f, retreat=0.04, hold=6,
                   via_tol=tol),
            *hook_drawer(handle, TOP_JOINT, pull_speed=0.012, open_at=-0.155, speed=f, reach_from=0.08,
                         reach_speed=0.01, hold=9, via_tol=tol, **o),
            Phase("let go of handle", lambda s: s.eef_pos(), OPEN, hold=3, timeout=8, **o),
            Phase("back off", handle + [0.0, 0.20, 0.04], OPEN, speed=f, tol=tol, timeout=30, **o),
            *pick(regrasp, lift=0.04, clearance=0.07, speed=f, hold=9, descend_speed=0.012, via_tol=tol),
            Phase("lift and turn", lambda s: np.r_[regrasp(s)[:2], carry_z], CLOSE, speed=f, tol=tol,
                  timeout=40, orientation=BOWL_CARRY),
            *place(release, carry=carry_z - release[2], speed=f, via_tol=tol, orientation=BOWL_CARRY),
        ]


class PutBottleOnCabinet(LiberoExpert):
    """Pinch the bottle's neck from above (fingers closing along x: the rack's shelves are on the -y side),
    lift it 30 cm, carry it over the near half of the cabinet's top, stand it there and let go."""

    task = "put_the_wine_bottle_on_top_of_the_cabinet"
    orientation = ACROSS_X

    def plan(self, scene: Scene) -> list[Phase]:
        release = scene.site_pos(CABINET_TOP) + [-0.04, 0.03, 0.006 + BOTTLE_GRIP_Z]
        return [*pick(bottle_grasp(scene), lift=0.30), *place(release, carry=0.05)]


class PutBottleOnRack(LiberoExpert):
    """Lay the bottle in the rack's upper shelf, its bottom against the shelf's front lip, neck uphill.

    The shelf slopes up toward -y at about 31 deg and the goal is the bottle's bottom at the lip. The neck is
    pinched from above with the fingers closing along x, so tilting the hand about x tilts the bottle without
    twisting it in the grip. Carried upright and high, the bottle is tilted back 40 deg (9 deg past square to
    the shelf) once it is clear of everything, brought down along the shelf's normal until its bottom is
    just behind the lip, and let go: it tips back onto the shelf and lies there. The bottle goes 6 cm to +x
    of the rack's post, and the hand is held at 40 deg, not laid flat, so its palm clears the post's top.
    """

    task = "put_the_wine_bottle_on_the_rack"
    orientation = ACROSS_X
    tilt, dx = 40.0, 0.06

    def plan(self, scene: Scene) -> list[Phase]:
        tilted = rot_x(self.tilt) @ ACROSS_X
        axis = np.array([0.0, -np.sin(np.radians(self.tilt)), np.cos(np.radians(self.tilt))])  # bottom -> neck
        normal = np.array([0.0, np.cos(np.radians(self.tilt)), np.sin(np.radians(self.tilt))])
        bottom = scene.site_pos(RACK_TOP) + [self.dx, -0.003, 0.026]     # 2.6 cm off the shelf, behind the lip
        grip = bottom + BOTTLE_GRIP_Z * axis
        lifted = bottle_grasp(scene) + [0.0, 0.0, 0.29]
        return [*pick(bottle_grasp(scene), lift=0.29),
                Phase("tilt", lifted, CLOSE, hold=4, tol=0.015, timeout=15, orientation=tilted),
                Phase("over rack", grip + 0.06 * normal, CLOSE, speed=0.012, tol=0.012, timeout=60,
                      orientation=tilted),
                Phase("lay down", grip, CLOSE, speed=0.006, tol=0.008, timeout=25, orientation=tilted),
                Phase("release", grip, OPEN, hold=6, tol=0.02, timeout=12, orientation=tilted),
                Phase("retreat", grip + [0.0, 0.0, 0.08], OPEN, speed=0.01, tol=0.015, timeout=25,
                      orientation=tilted)]


EXPERTS: dict[str, type[LiberoExpert]] = {
    cls.task: cls for cls in (OpenMiddleDrawer, PushPlateToStoveFront, PutCreamCheeseInBowl, TurnOnStove,
                              PutBowlOnPlate, PutBowlOnStove, PutBowlOnCabinet, PutBottleOnCabinet, PutBottleOnRack,
                              OpenTopDrawerPutBowlInside)
}

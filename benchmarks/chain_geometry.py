"""The measurements behind the instruction chain's predicates and scene choice (docs/libero.md, "The instruction
chain"), from chain initial state 0 of the evaluation split:

    python benchmarks/chain_geometry.py docs/results/chain/chain_starts_eval.json > docs/results/chain/geometry.txt
"""
from __future__ import annotations

import sys

import numpy as np

from roboact.sim.chain.rollout import chain_env
from roboact.sim.chain.starts import ChainStarts
from roboact.sim.experts.controller import Scene
from roboact.sim.experts.libero_goal import BOWL, CABINET, TOP_JOINT

FLOOR, WALL_FRONT, TOP_PANEL = "wooden_cabinet_1_g16", "wooden_cabinet_1_g11", "wooden_cabinet_1_g9"


def top_z(env, geom: str, sign: float = 1.0) -> float:
    """The geom's top (sign 1) or bottom (sign -1) height: its centre +- its half-extent along world z."""
    g = env.data.geom(geom)
    half = np.abs(g.xmat.reshape(3, 3)) @ env.model.geom(geom).size
    return float(g.xpos[2] + sign * half[2])


def main(path: str) -> None:
    start = ChainStarts.load(path)[0]
    env = chain_env()
    env.reset(seed=start.seed, state=np.asarray(start.state))
    scene = Scene(env.model, env.data)
    bowl = scene.body_pos(BOWL)
    lo, hi = env.model.jnt_range[env.model.joint(TOP_JOINT).id]
    print(f"chain initial state 0 ({start.source}), after a reset to it")
    print(f"top drawer joint: {scene.qpos(TOP_JOINT):.4f} (range {lo:.2f} .. {hi:.2f})")
    print(f"bowl body origin (foot centre): {bowl.round(4)}, touching {sorted(scene.touching(BOWL))}")
    print(f"top drawer floor, top surface z: {top_z(env, FLOOR):.4f}")
    print(f"top drawer front wall, top z: {top_z(env, WALL_FRONT):.4f}")
    print(f"cabinet top panel, underside z: {top_z(env, TOP_PANEL, -1.0):.4f}")
    bowl_geoms = [env.model.geom(g).name for g in range(env.model.ngeom)
                  if env.model.geom_bodyid[g] == env.model.body(BOWL).id]
    print(f"bowl height (highest point of its geoms above its origin): "
          f"{max(top_z(env, g) for g in bowl_geoms) - bowl[2]:.4f}")
    cabinet = scene.body_pos(CABINET)
    print(f"cabinet origin: {cabinet.round(4)}; bowl - cabinet (xy): {(bowl - cabinet)[:2].round(4)}")
    # the bowl rides with the drawer: opened to q it is (q_now - q) further out (+y)
    q_now = scene.qpos(TOP_JOINT)
    panel = env.data.geom(TOP_PANEL)
    front = panel.xpos[1] + (np.abs(panel.xmat.reshape(3, 3)) @ env.model.geom(TOP_PANEL).size)[1]
    for q in (-0.14, -0.155, -0.16):
        print(f"drawer at {q}: bowl's far (-y) rim (5.5 cm from its centre) at y {bowl[1] - 0.055 + q_now - q:.4f}; "
              f"cabinet top panel's front edge at y {front:.4f}")

if __name__ == "__main__":
    main(sys.argv[1])

"""Where LIBERO-Goal's objects and fixtures lie over the 50 fixed initial states, and how far apart.

The figures docs/libero.md quotes for why the top-drawer expert moves the bowl before it opens the drawer (the
open drawer's -x wall relative to the bowl) come from here:

    python benchmarks/libero_goal_poses.py > docs/results/libero_goal_poses.txt
"""
from __future__ import annotations

import numpy as np

from roboact.sim.libero import make_env

BODIES = ["akita_black_bowl_1_main", "wine_bottle_1_main", "plate_1_main", "cream_cheese_1_main",
          "wooden_cabinet_1_main", "wine_rack_1_main", "flat_stove_1_main"]
TOP_DRAWER_WALL = "wooden_cabinet_1_g15"   # the top drawer's -x side wall


def main() -> None:
    import mujoco

    env = make_env("open_the_top_drawer_and_put_the_bowl_inside", cameras=())
    poses, walls = [], []
    for i in range(len(env.init_states)):
        env.reset(init_state=i)
        poses.append([env.data.body(b).xpos.copy() for b in BODIES])
        env.data.joint("wooden_cabinet_1_top_level").qpos[0] = -0.16      # fully open, to measure only
        mujoco.mj_forward(env.model, env.data)
        walls.append(env.data.geom(TOP_DRAWER_WALL).xpos[0])               # the wall's centre, 5 mm thick
    env.close()
    p = np.array(poses)
    print(f"{len(p)} fixed initial states of libero_goal (body positions, m)")
    for k, b in enumerate(BODIES):
        print(f"{b:28s} min {p[:, k].min(0).round(3)} max {p[:, k].max(0).round(3)}")
    for k, b in ((1, "bottle"), (2, "plate"), (3, "cream cheese"), (4, "cabinet")):
        d = p[:, k, :2] - p[:, 0, :2]
        print(f"{b} - bowl (xy): min {d.min(0).round(3)} max {d.max(0).round(3)}; "
              f"closest {np.linalg.norm(d, axis=1).min():.3f}")
    d = np.array(walls) - p[:, 0, 0]
    print(f"top drawer fully open: its -x wall's x minus the bowl's x: min {d.min():.3f} max {d.max():.3f}")

if __name__ == "__main__":
    main()

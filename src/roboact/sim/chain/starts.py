"""The chain's initial states: the black bowl inside the closed top drawer, the robot at LIBERO's start pose.

No LIBERO-Goal initial state has an object in a closed drawer, so each chain initial state is built from a
LIBERO-Goal scene by our own experts, deterministically:

1. reset the top-drawer task's env to the base scene (one of LIBERO's 50 fixed initial states of
   `open_the_top_drawer_and_put_the_bowl_inside`, or a placement sampled with a seed, as `roboact demos` does);
2. run that task's expert through all its phases (park the bowl, open the top drawer, put the bowl in it, let
   go, back off);
3. run the chain's close-drawer expert through all its phases (hook the handle, push it shut, let go, back off);
4. put the robot back to the base scene's own start pose (joint positions copied from the base state, joint
   velocities zeroed: the arm is in free space above the table, so nothing else moves);
5. load the result as a reset does (fixtures placed by the base scene's seed, then 5 settling steps) and keep
   it only if the top drawer is shut, the bowl's foot is inside the drawer's region and the bowl touches no
   part of the robot.

A base scene whose construction fails is dropped and counted, with its reason. The states are cached as JSON
(floats written exactly), one file per set, built resumably: one log row per base scene, the file written at
the end. `place_at` is where the bowl stood when the expert parked it in step 2 (24.5 cm to +y of its start,
beyond the cream cheese): a spot known to be clear in that scene, where stage 3's expert sets the bowl down.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from roboact.sim.base import SimError
from roboact.utils.config import check

BASE_TASK = "open_the_top_drawer_and_put_the_bowl_inside"
ROBOT_DOF = 9            # 7 arm joints + 2 finger joints: the first qpos/qvel entries of LIBERO-Goal's scene
CHAIN_SPLITS = ("eval", "train")
TRAIN_SEED0 = 100_000    # sampled placements of the train set: seeds TRAIN_SEED0 + k (none of `roboact demos`' seeds)


@dataclass
class ChainStart:
    """One chain initial state: load with `env.reset(seed=seed, state=state)`."""

    index: int                 # position in its set
    source: str                # "fixed:<i>" (LIBERO's i-th fixed initial state) or "sampled:<seed>"
    seed: int                  # places the fixtures (LiberoEnv.reset)
    place_at: list[float]      # the table spot (bowl foot) stage 3's expert sets the bowl on
    state: list[float]         # flattened MuJoCo state


@dataclass
class StartsConfig:
    split: str = "eval"        # eval: LIBERO's 50 fixed initial states; train: sampled placements
    count: int = 50            # base scenes tried (eval: the first `count` fixed initial states)
    output_dir: str = "data/chain"

    def __post_init__(self) -> None:
        check(self.split in CHAIN_SPLITS, "split", f"must be one of {', '.join(CHAIN_SPLITS)}, got {self.split!r}")
        check(self.count >= 1 and (self.split != "eval" or self.count <= 50), "count",
              f"must be in [1, 50] for the eval set (LIBERO has 50 fixed initial states), >= 1 otherwise; "
              f"got {self.count}")

    @property
    def path(self) -> Path:
        return Path(self.output_dir) / f"chain_starts_{self.split}.json"

    @property
    def log_path(self) -> Path:
        return Path(self.output_dir) / f"chain_starts_{self.split}.jsonl"


def base_reset(split: str, k: int) -> dict:
    """How base scene k of a set is reset, and the seed that places its fixtures."""
    if split == "eval":
        return {"init_state": k, "seed": k}
    return {"seed": TRAIN_SEED0 + k}


def _run_all_phases(env, expert, limit: int) -> int:
    """Step `expert` (planned on env's current scene) until its last phase ends; returns the steps taken."""
    expert.reset(env)
    n = 0
    while not expert.controller.done:
        if n >= limit:
            raise SimError(f"expert {type(expert).__name__} still in phase {expert.phase!r} after {limit} steps")
        env.step(expert.act())
        n += 1
    return n


def build_start(env, split: str, k: int) -> tuple[dict | None, str]:
    """Construct base scene k's chain initial state in `env` (the base task's env, its cap large enough);
    returns (ChainStart fields without index, '') or (None, why it was dropped)."""
    from roboact.sim.chain.stages import CloseTopDrawer, drawer_closed
    from roboact.sim.experts import expert_for
    from roboact.sim.experts.controller import Scene
    from roboact.sim.experts.libero_goal import BOWL, OpenTopDrawerPutBowlInside

    reset = base_reset(split, k)
    env.reset(**reset)
    home = env.sim_state()[1:1 + ROBOT_DOF].copy()
    put = expert_for(BASE_TASK)
    place_at = env.data.body(BOWL).xpos + [0.0, OpenTopDrawerPutBowlInside.park_dy, 0.0]
    try:
        put_steps = _run_all_phases(env, put, 400)
        if not env.success():
            return None, f"bowl not in the top drawer after the put expert ({put_steps} steps)"
        close_steps = _run_all_phases(env, CloseTopDrawer(), 200)
    except SimError as e:
        return None, str(e)
    state = env.sim_state()
    nq = env.model.nq
    state[1:1 + ROBOT_DOF] = home
    state[1 + nq:1 + nq + ROBOT_DOF] = 0.0
    env.reset(seed=reset["seed"], state=state)
    scene = Scene(env.model, env.data)
    if not drawer_closed(scene):
        return None, f"top drawer not shut after loading (joint {scene.qpos('wooden_cabinet_1_top_level'):.4f})"
    if not env.success():
        return None, "bowl's foot not inside the top drawer's region after loading"
    if any(b.startswith(("gripper0_", "robot0_")) for b in scene.touching(BOWL)):
        return None, "bowl touches the robot after loading"
    return {"source": f"fixed:{k}" if split == "eval" else f"sampled:{reset['seed']}", "seed": reset["seed"],
            "place_at": [float(x) for x in place_at], "state": [float(x) for x in state],
            "put_steps": put_steps, "close_steps": close_steps}, ""


def build_job(job: tuple[str, int]) -> dict:
    """Worker entry: one base scene; never raises."""
    from roboact.sim.suites import cached_env, get_suite

    split, k = job
    t0 = time.perf_counter()
    try:
        env = cached_env(get_suite("libero_goal"), BASE_TASK, 128, (), max_steps=1000)
        start, reason = build_start(env, split, k)
    except Exception as e:  # a simulator error drops this scene, with its reason
        start, reason = None, f"{type(e).__name__}: {e}"
    row = {"k": k, "ok": start is not None, "seconds": round(time.perf_counter() - t0, 2)}
    return {**row, **start} if start else {**row, "reason": reason}


def build_starts(cfg: StartsConfig, command: str = "", workers: int = 1) -> dict:
    """Build (or resume) a set's chain initial states; writes cfg.path and returns its content."""
    from tqdm import tqdm

    from roboact.sim.episodes import ResultLog, WorkerPool
    from roboact.utils.io import atomic_write_json

    log = ResultLog(cfg.log_path, key=lambda r: int(r["k"]))
    done = {k: r for k, r in log.read().items() if k < cfg.count}
    jobs = [(cfg.split, k) for k in range(cfg.count) if k not in done]
    with WorkerPool(workers) as pool:
        for row in tqdm(pool.run(build_job, jobs), total=len(jobs), unit="scene", dynamic_ncols=True):
            log.append(row)
            done[row["k"]] = row
    rows = [done[k] for k in sorted(done)]
    built = [r for r in rows if r["ok"]]
    starts = [asdict(ChainStart(i, r["source"], r["seed"], r["place_at"], r["state"])) for i, r in enumerate(built)]
    dropped = [{"base": r["k"], "reason": r["reason"]} for r in rows if not r["ok"]]
    out = {"split": cfg.split, "base_task": BASE_TASK, "base_scenes": cfg.count, "built": len(starts),
           "dropped": dropped, "command": command, "config": asdict(cfg),
           "construction": "\n\n".join(__doc__.split("\n\n")[1:3]).strip(), "starts": starts}
    atomic_write_json(cfg.path, out)
    return out


@dataclass
class ChainStarts:
    """A set's cached chain initial states, validated on load."""

    path: Path
    starts: list[ChainStart] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "ChainStarts":
        from roboact.utils.io import read_json

        path = Path(path)
        if not path.is_file():
            raise SimError(f"{path}: no chain initial states; build them with `roboact chain starts`")
        try:
            raw = read_json(path)
            starts = [ChainStart(**s) for s in raw["starts"]]
        except (ValueError, KeyError, TypeError) as e:
            raise SimError(f"{path}: not a chain initial states file ({type(e).__name__}: {e})") from None
        for s in starts:
            if len(s.state) < 1 + ROBOT_DOF or len(s.place_at) != 3:
                raise SimError(f"{path}: start {s.index}: state or place_at malformed")
        return cls(path, starts, {k: v for k, v in raw.items() if k != "starts"})

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> ChainStart:
        if not 0 <= i < len(self.starts):
            raise SimError(f"{self.path}: chain initial state {i} out of range [0, {len(self.starts)})")
        return self.starts[i]

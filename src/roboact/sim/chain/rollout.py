"""Run the chain from a chain initial state, one stage after the other, and the experts' table over a set.

`run_chain` gives each stage its step budget; a stage is done at the first step its predicate holds, and the
next stage starts from that very state (the instruction switches at once, as in CALVIN). The episode stops
at the first stage that runs out of budget: what counts is how many stages were completed in a row. The
actor of a stage is its scripted expert here; a policy conditioned on the stage's instruction takes its
place in a policy evaluation (the same loop for both: `act(env, stage, obs, first_step_of_stage)`).

Who switches the instruction is a second choice. By default the oracle does (the stage's predicate). With
`switch` (e.g. the judge's detector on the camera stream) the instruction switches when `switch` fires
instead, and the predicate only scores: the stage counts as done if its predicate holds at that moment; a
switch before that ends the chain there ("switched early"), as does a stage whose budget runs out without a
switch, even if its predicate held meanwhile ("no switch").
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from roboact.sim.base import Observation
from roboact.sim.chain.stages import STAGES, Stage, chain_budget
from roboact.sim.chain.starts import BASE_TASK, ChainStart, ChainStarts
from roboact.utils.config import check


@dataclass
class ChainRun:
    """One chain episode. `observations[0]` is the reset observation, `observations[t + 1]` follows `actions[t]`;
    `flags[t]` is the predicate of the stage that was running, after `actions[t]`."""

    observations: list[Observation]
    actions: list[np.ndarray]
    states: list[np.ndarray]            # flattened MuJoCo state with each observation
    flags: list[bool]
    stage_ends: list[int]               # for each completed stage: actions taken when it ended (predicate or switch)
    failed_phase: str = ""              # where the first stage that failed stopped (its expert's phase)
    failure: str = ""                   # "budget", or with a switch "switched early" / "no switch"

    @property
    def completed(self) -> int:
        return len(self.stage_ends)

    def stage_steps(self) -> list[int]:
        starts = [0, *self.stage_ends]
        return [b - a for a, b in zip(starts, self.stage_ends)]


def chain_env(image_size: int = 128, cameras: tuple[str, ...] = (), stages: tuple[Stage, ...] = STAGES):
    """This process's env for the chain (the base task's scene; its cap is the sum of the stage budgets)."""
    from roboact.sim.suites import cached_env, get_suite

    return cached_env(get_suite("libero_goal"), BASE_TASK, image_size, tuple(cameras), max_steps=chain_budget(stages))


def expert_actor(start: ChainStart) -> Callable:
    """act(stage, obs) for the scripted experts: each stage's expert planned when its stage starts."""
    current: dict = {}

    def act(env, stage: Stage, obs: Observation, first: bool) -> np.ndarray:
        if first:
            current["expert"] = stage.make_expert(np.asarray(start.place_at))
            current["expert"].reset(env)
        return current["expert"].act(obs)

    act.phase = lambda: getattr(current.get("expert"), "phase", "?")
    return act


def run_chain(env, start: ChainStart, act: Callable | None = None, stages: tuple[Stage, ...] = STAGES,
              keep: bool = False, switch: Callable[[int, Observation], bool] | None = None,
              tail: int = 0) -> ChainRun:
    """Reset `env` to `start` and run the stages in order with `act(env, stage, obs, first_step_of_stage)`
    (default: the scripted experts). `switch(stage_index, obs)`: when the instruction switches (default: when
    the stage's predicate holds). `keep`: keep every observation and state (demos); otherwise only the last,
    so an evaluation does not hold hundreds of observations. `tail`: once every stage is done, that many more
    steps of the last stage's actor (recorded after the last stage end, as `roboact demos` records a few
    steps past success: what a judge needs to see a stage done)."""
    from roboact.sim.experts.controller import Scene

    act = act or expert_actor(start)
    obs = env.reset(seed=start.seed, state=np.asarray(start.state, dtype=np.float64))
    scene = Scene(env.model, env.data)
    run = ChainRun([obs], [], [env.sim_state()], [], [])

    def advance(stage: Stage, first: bool) -> Observation:
        """One step of `stage`'s actor, recorded (the predicate after it in `flags`)."""
        action = np.asarray(act(env, stage, run.observations[-1], first), dtype=np.float64)
        new = env.step(action)
        run.actions.append(action)
        run.flags.append(bool(stage.done(scene)))
        if keep:
            run.observations.append(new)
            run.states.append(env.sim_state())
        else:
            run.observations[-1:] = [new]
        return new

    for k, stage in enumerate(stages):
        n = 0
        while switch is not None or not stage.done(scene):
            if n >= stage.budget:
                run.failed_phase = getattr(act, "phase", lambda: "?")()
                run.failure = "budget" if switch is None else "no switch"
                return run
            obs = advance(stage, n == 0)
            n += 1
            if switch is not None and switch(k, obs):
                if not run.flags[-1]:
                    run.failed_phase = getattr(act, "phase", lambda: "?")()
                    run.failure = "switched early"
                    return run
                break
        run.stage_ends.append(len(run.actions))
    for _ in range(tail):
        advance(stages[-1], False)
    return run


# ---------------------------------------------------------------- the experts' table
@dataclass
class ChainEvalConfig:
    starts: str = "data/chain/chain_starts_eval.json"
    output_dir: str = "results"
    limit: int = 0                     # the first N chain initial states; 0: all
    workers: int = 1
    command: str = ""

    def __post_init__(self) -> None:
        check(self.limit >= 0, "limit", f"must be >= 0 (0: every chain initial state), got {self.limit}")
        check(1 <= self.workers <= 64, "workers", f"must be in [1, 64], got {self.workers}")

    @property
    def stem(self) -> Path:
        return Path(self.output_dir) / f"expert_chain_{Path(self.starts).stem.removeprefix('chain_starts_')}"


def chain_job(start: dict) -> dict:
    """Worker entry: the experts' chain from one chain initial state; never raises."""
    t0 = time.perf_counter()
    s = ChainStart(**start)
    try:
        run = run_chain(chain_env(), s)
        return {"index": s.index, "source": s.source, "completed": run.completed, "stage_steps": run.stage_steps(),
                "failed_phase": run.failed_phase, "seconds": round(time.perf_counter() - t0, 2)}
    except Exception as e:
        return {"index": s.index, "source": s.source, "completed": 0, "stage_steps": [], "failed_phase": "",
                "error": f"{type(e).__name__}: {e}", "seconds": round(time.perf_counter() - t0, 2)}


def in_a_row(completed: list[int], n_stages: int) -> list[float]:
    """CALVIN's numbers: the share of episodes that completed at least k stages in a row, k = 1..n_stages."""
    total = len(completed)
    return [sum(c >= k for c in completed) / total if total else float("nan") for k in range(1, n_stages + 1)]


def in_a_row_over_seeds(completed_by_seed: dict[int, list[int]], n_stages: int = len(STAGES)) -> list[dict]:
    """For k = 1..n_stages: each seed's share of episodes completing >= k stages in a row, their mean and 95%
    t-interval over seeds (roboact.utils.stats: seeds are the unit of replication, not episodes)."""
    from roboact.utils.stats import t_interval

    per_seed = {seed: in_a_row(c, n_stages) for seed, c in sorted(completed_by_seed.items())}
    return [{"stages": k + 1, "per_seed": {seed: shares[k] for seed, shares in per_seed.items()},
             **t_interval([shares[k] for shares in per_seed.values()]).to_dict()} for k in range(n_stages)]


def summarize_chain(rows: list[dict], stages: tuple[Stage, ...] = STAGES) -> dict:
    completed = [r["completed"] for r in rows]
    per_stage = []
    for k, st in enumerate(stages):
        tried = [r for r in rows if r["completed"] >= k and "error" not in r]
        ok = [r for r in tried if r["completed"] > k]
        steps = [r["stage_steps"][k] for r in ok]
        per_stage.append({"stage": st.name, "instruction": st.instruction, "budget": st.budget,
                          "attempted": len(tried), "succeeded": len(ok),
                          "success_rate": len(ok) / len(tried) if tried else float("nan"),
                          "mean_steps": float(np.mean(steps)) if steps else None,
                          "max_steps": max(steps) if steps else None,
                          "failed": [{"index": r["index"], "phase": r["failed_phase"]}
                                     for r in tried if r["completed"] == k]})
    return {"episodes": len(rows), "in_a_row": in_a_row(completed, len(stages)), "stages": per_stage,
            "errors": [{"index": r["index"], "error": r["error"]} for r in rows if "error" in r]}


def evaluate_chain_experts(cfg: ChainEvalConfig) -> dict:
    """The experts' chain from every chain initial state of cfg.starts (resumable: one log row per start)."""
    from tqdm import tqdm

    from roboact.sim.episodes import ResultLog, WorkerPool
    from roboact.utils.io import atomic_write_json, atomic_write_text

    starts = ChainStarts.load(cfg.starts)
    chosen = starts.starts[:cfg.limit or None]
    log = ResultLog(cfg.stem.with_suffix(".jsonl"), key=lambda r: int(r["index"]))
    done = {k: r for k, r in log.read().items() if "error" not in r}
    jobs = [asdict(s) for s in chosen if s.index not in done]
    with WorkerPool(cfg.workers) as pool:
        for r in tqdm(pool.run(chain_job, jobs), total=len(jobs), unit="chain", dynamic_ncols=True):
            log.append(r)
            done[r["index"]] = r
    rows = [done[s.index] for s in chosen if s.index in done]
    table = {"starts": cfg.starts, "starts_meta": {k: v for k, v in starts.meta.items() if k != "construction"},
             "command": cfg.command, "config": asdict(cfg), **summarize_chain(rows)}
    atomic_write_json(cfg.stem.with_suffix(".json"), table)
    atomic_write_text(cfg.stem.with_suffix(".md"), chain_markdown(table))
    return table


def chain_markdown(table: dict) -> str:
    lines = [f"Scripted experts through the instruction chain from {table['episodes']} chain initial states "
             f"({table['starts']}).", ""]
    if table.get("command"):
        lines += ["Command:", "", f"    {table['command']}", ""]
    lines += ["| stage | instruction | budget | success (of attempted) | mean steps | max steps "
              "| failed (start: phase) |", "|---|---|---|---|---|---|---|"]
    for k, s in enumerate(table["stages"], 1):
        mean = f"{s['mean_steps']:.0f}" if s["mean_steps"] is not None else "-"
        failed = ", ".join(f"{f['index']}: {f['phase']}" for f in s["failed"]) or "none"
        lines.append(f"| {k} | {s['instruction']} | {s['budget']} | {s['succeeded']}/{s['attempted']} "
                     f"({100 * s['success_rate']:.0f}%) | {mean} | {s['max_steps'] or '-'} | {failed} |")
    lines += ["", "Completed in a row (CALVIN): " + ", ".join(
        f"{k}: {100 * v:.0f}%" for k, v in enumerate(table["in_a_row"], 1))]
    if table["errors"]:
        lines += ["", "Errors:", *[f"- start {e['index']}: {e['error']}" for e in table["errors"]]]
    return "\n".join(lines) + "\n"

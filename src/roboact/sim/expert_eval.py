"""How good are the scripted experts? Success over each suite's own scenes, as a markdown + JSON table.

`roboact demos --evaluate-experts` runs each task's expert from the first `init_states` scenes of the
suite (`Suite.expert_reset`): LIBERO's fixed initial states (its evaluation protocol), or for Meta-World the
scenes of the first episodes of a default `roboact simulate metaworld` corpus, episodes capped at
`max_steps`, without rendering (experts read true poses, so images would only cost time). Meta-World's
table covers every scripted expert, labelled or not: it is the evidence a task needs before it enters the
label table (`roboact.sim.metaworld.ATOMIC_TASKS`). Results are appended per episode to a JSONL log, so an
interrupted evaluation resumes; the tables are rewritten (atomically) from the log at the end.

The cap is part of what a table measures: at the default cap (200) the files are
`expert_success_<suite>.{md,json,jsonl}`, at any other `expert_success_<suite>_<cap>.*`, so a table at
300 steps neither resumes from nor overwrites the 200-step one; each log row also records its cap, and
rows at another cap are never counted.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from roboact.sim.episodes import ResultLog, WorkerPool, run_expert
from roboact.sim.suites import cached_env, get_suite
from roboact.utils.config import check
from roboact.utils.io import atomic_write_json, atomic_write_text


DEFAULT_MAX_STEPS = 200   # the paper's episode cap; tables at it keep their historical file names


@dataclass
class ExpertEvalConfig:
    suite: str = "libero_goal"
    tasks: list[str] = field(default_factory=list)   # empty: every task of the suite with a scripted expert
    init_states: int = 50                            # the first n scenes (LIBERO: fixed initial states)
    max_steps: int = DEFAULT_MAX_STEPS
    workers: int = 1
    output_dir: str = "results"
    command: str = ""                                # the command line, recorded beside the table

    def __post_init__(self) -> None:
        check(self.suite in ("libero_goal", "metaworld"), "suite",
              f"must be libero_goal or metaworld, got {self.suite!r}")
        check(1 <= self.init_states <= 50, "init_states", f"must be in [1, 50], got {self.init_states}")
        check(self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}")
        check(1 <= self.workers <= 64, "workers", f"must be in [1, 64], got {self.workers}")

    @property
    def cap_suffix(self) -> str:
        """'' at the default cap, else '_<max_steps>': what tells this cap's files from the default's."""
        return "" if self.max_steps == DEFAULT_MAX_STEPS else f"_{self.max_steps}"

    @property
    def stem(self) -> Path:
        return Path(self.output_dir) / f"expert_success_{self.suite}{self.cap_suffix}"

    @property
    def config_path(self) -> Path:
        return Path(self.output_dir) / f"expert_eval_config{self.cap_suffix}.json"


def eval_episode(job: tuple[str, str, int, int]) -> dict:
    """Worker entry: one expert episode from fixed initial state `i`; never raises."""
    suite_name, task, i, max_steps = job
    t0 = time.perf_counter()
    try:
        suite = get_suite(suite_name)
        env = cached_env(suite, task, 128, (), max_steps=max_steps)  # nothing rendered: experts read poses
        expert = suite.make_expert(task)
        run = run_expert(env, expert, suite.expert_reset(task, i), solved_at_reset=True)
        return {"task": task, "init_state": i, "success": bool(run.final.success), "steps": run.steps,
                "max_steps": max_steps, "phase": suite.phase(expert), "seconds": round(time.perf_counter() - t0, 2)}
    except Exception as e:  # reported as a failed episode with its reason
        return {"task": task, "init_state": i, "success": False, "steps": 0, "max_steps": max_steps,
                "error": f"{type(e).__name__}: {e}", "seconds": round(time.perf_counter() - t0, 2)}


def result_log(cfg: ExpertEvalConfig) -> ResultLog:
    """Finished episodes by (task, initial state): what an interrupted evaluation resumes from."""
    return ResultLog(cfg.stem.with_suffix(".jsonl"), key=lambda r: (r["task"], int(r["init_state"])))


def evaluate_experts(cfg: ExpertEvalConfig) -> dict:
    """Run what the log does not have yet (episodes that errored are retried), then write the tables."""
    from tqdm import tqdm

    suite = get_suite(cfg.suite)
    names = [] if [n.strip().lower() for n in cfg.tasks] == ["all"] else cfg.tasks
    tasks = [expert_task(suite, t) for t in names] or suite.expert_tasks()
    results = result_log(cfg)
    # rows from before caps were logged are the default cap's (the only one used then)
    done = {k: r for k, r in results.read().items()
            if "error" not in r and r.get("max_steps", DEFAULT_MAX_STEPS) == cfg.max_steps}
    jobs = [(cfg.suite, t, i, cfg.max_steps) for t in tasks for i in range(cfg.init_states) if (t, i) not in done]
    with WorkerPool(cfg.workers) as pool:
        for r in tqdm(pool.run(eval_episode, jobs), total=len(jobs), unit="episode", dynamic_ncols=True):
            results.append(r)
            done[(r["task"], r["init_state"])] = r
    table = summarize(cfg, suite, tasks, done)
    atomic_write_json(cfg.stem.with_suffix(".json"), table)
    atomic_write_text(cfg.stem.with_suffix(".md"), to_markdown(table))
    return table


def expert_task(suite, task: str) -> str:
    """`task` as the suite names it, if it has a scripted expert; SimError naming those that do."""
    from roboact.sim.base import SimError

    known = suite.expert_tasks()
    name = task.strip().removeprefix(f"{suite.name}/")
    if name not in known:
        try:
            name = suite.canonical(task)  # e.g. a LIBERO instruction in words
        except SimError:
            pass
    if name not in known:
        raise SimError(f"no scripted expert for {suite.name} task {task!r}; tasks with experts: {', '.join(known)}")
    return name


def _label(suite, task: str):
    """The task's (action, object) label, or None for a task not (yet) in the suite's label table."""
    from roboact.sim.base import SimError

    try:
        return suite.label(task)
    except SimError:
        return None


def summarize(cfg: ExpertEvalConfig, suite, tasks: list[str], results: dict) -> dict:
    rows = []
    for t in tasks:
        eps = [results[(t, i)] for i in range(cfg.init_states) if (t, i) in results]
        wins = [e for e in eps if e["success"]]
        label = _label(suite, t)
        rows.append({"task": t, "action": label and label.action, "object": label and label.object,
                     "note": label.note if label else "",
                     "episodes": len(eps), "successes": len(wins),
                     "success_rate": len(wins) / len(eps) if eps else float("nan"),
                     "mean_steps_success": float(np.mean([e["steps"] for e in wins])) if wins else None,
                     "max_steps_success": max((e["steps"] for e in wins), default=None),
                     "failed_init_states": [e["init_state"] for e in eps if not e["success"]],
                     "errors": sorted({e["error"] for e in eps if "error" in e})})
    total = sum(r["episodes"] for r in rows)
    return {"suite": cfg.suite, "init_states": cfg.init_states, "max_steps": cfg.max_steps,
            "command": cfg.command, "config": asdict(cfg), "tasks": rows,
            "overall_success_rate": sum(r["successes"] for r in rows) / total if total else float("nan")}


def to_markdown(table: dict) -> str:
    scenes = ("fixed initial states" if table["suite"] == "libero_goal"
              else "scenes of a default (seed 0) corpus")
    lines = [f"Scripted expert success on {table['suite']}, first {table['init_states']} {scenes}, "
             f"episodes capped at {table['max_steps']} steps.", ""]
    if table["command"]:
        lines += ["Command:", "", f"    {table['command']}", ""]
    lines += ["| task | (action, object) | success | mean steps (successes) | max steps | failed init states |",
              "|---|---|---|---|---|---|"]
    for r in table["tasks"]:
        mean = f"{r['mean_steps_success']:.0f}" if r["mean_steps_success"] is not None else "-"
        failed = ", ".join(map(str, r["failed_init_states"])) or "none"
        label = f"({r['action']}, {r['object']})" if r["action"] else "unlabelled"
        lines.append(f"| {r['task']} | {label} | {r['successes']}/{r['episodes']} "
                     f"({100 * r['success_rate']:.0f}%) | {mean} | {r['max_steps_success'] or '-'} | {failed} |")
    lines += ["", f"Overall: {100 * table['overall_success_rate']:.1f}%"]
    notes = [f"- {r['task']}: {r['note']}" for r in table["tasks"] if r["note"]]
    errors = [f"- {r['task']}: {e}" for r in table["tasks"] for e in r["errors"]]
    lines += (["", "Notes:", *notes] if notes else []) + (["", "Errors:", *errors] if errors else [])
    return "\n".join(lines) + "\n"

"""Tasks that never enter pretraining, and the record a corpus keeps of what it left out.

An encoder scored by `roboact policy` on a task it was pretrained on has seen the very scenes and motions
it is judged on, so its row says nothing about the encoder as a general observation encoder. Three kinds
of task are therefore kept out of every pretraining corpus this package builds (`roboact simulate
metaworld`, the clip manifest of `roboact demos`, `roboact simulate merge`):

- the benchmark tasks of both policy suites (`BENCHMARK_TASKS`; `roboact.policy.suites` reads them here);
- the reserve tasks (`RESERVE_TASKS`), kept for checks from outside the project: never pretrained on,
  never tuned on;
- by default, the near-duplicates of a benchmark or reserve task: a task of the same simulator whose
  (action, object) label equals that task's (Meta-World's plate-slide-side is "push plate" like
  plate-slide, from the side). Pretraining on the same motion on the same object in the same scene, seen from another side,
  leaks nearly as much as the task itself. Only the same simulator counts: a LIBERO "push plate" is another
  robot in another scene, and a real "open drawer" clip is not a leak.

The first two form the never-list, which no option overrides; near-duplicates can be let in by the corpus
builder's `include_near_duplicates`, and then its record says so. This module is plain data and functions
on task names, so `data/` (merge), `sim/` (corpus, demos) and `policy/` share it without importing each other.

Names are compared by `task_key`: Meta-World ids ('drawer-open-v3', 'metaworld/drawer-open-v3') and LIBERO
names or instructions ('turn_on_the_stove', 'libero_goal/turn_on_the_stove', 'turn on the stove') alike.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from roboact.utils.io import atomic_write_json, read_json

# The four tasks of each policy suite, in Table II order (the paper's tasks 1-4 and their Meta-World analogues).
BENCHMARK_TASKS: dict[str, tuple[str, ...]] = {
    "libero_goal": ("open_the_middle_drawer_of_the_cabinet", "push_the_plate_to_the_front_of_the_stove",
                    "put_the_cream_cheese_in_the_bowl", "turn_on_the_stove"),
    "metaworld": ("drawer-open-v3", "plate-slide-v3", "pick-place-v3", "dial-turn-v3"),
}

# Kept for outside checks: never pretrained on, never tuned on (issue #12).
RESERVE_TASKS: dict[str, tuple[str, ...]] = {
    "metaworld": ("window-close-v3", "door-open-v3", "shelf-place-v3"),
}

PREFIXES = ("metaworld/", "libero_goal/")

# Beside every manifest a corpus writer makes: {"excluded_tasks": {task: reason}, ...}.
RECORD_NAME = "excluded_tasks.json"


def task_key(task: str) -> str:
    """'metaworld/drawer-open-v3', 'libero_goal/turn_on_the_stove', 'Turn on the stove' -> the bare task name."""
    t = task.strip().lower()
    for p in PREFIXES:
        t = t.removeprefix(p)
    return t.replace(" ", "_")


def never_pretrain(suite: str | None = None) -> dict[str, str]:
    """task -> why it never enters pretraining, for `suite` (None: every suite). No option overrides these."""
    out: dict[str, str] = {}
    for name, tasks in BENCHMARK_TASKS.items():
        if suite in (None, name):
            out.update({t: f"benchmark task of `roboact policy --suite {name}`" for t in tasks})
    for name, tasks in RESERVE_TASKS.items():
        if suite in (None, name):
            out.update({t: "reserve task, kept for outside checks (never pretrained or tuned on)" for t in tasks})
    return out


def near_duplicates(suite: str, labels: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """task -> reason, for each task of `labels` (the suite's label table: task -> (action, object)) that is
    not itself on the never-list but has the (action, object) label of a benchmark or reserve task of the
    suite (a reserve task is kept for outside checks, so its near-duplicates would leak the same way)."""
    kinds = {**{t: "reserve" for t in RESERVE_TASKS.get(suite, ())},
             **{t: "benchmark" for t in BENCHMARK_TASKS.get(suite, ())}}
    held = {}
    for t, kind in kinds.items():
        if t in labels:
            held.setdefault(tuple(labels[t]), (t, kind))
    out = {}
    for t, lab in labels.items():
        lab = tuple(lab)
        if lab in held and t not in kinds:
            other, kind = held[lab]
            out[t] = f"same (action, object) as {kind} task {other}: ({lab[0]}, {lab[1]})"
    return out


def pretraining_exclusions(suite: str, labels: Mapping[str, tuple[str, str]],
                           include_near_duplicates: bool = False) -> dict[str, str]:
    """Everything a `suite` corpus leaves out, with reasons: the suite's never-list and, unless told to include
    them, the near-duplicates of its benchmark tasks."""
    out = never_pretrain(suite)
    if not include_near_duplicates:
        out.update({t: r for t, r in near_duplicates(suite, labels).items() if t not in out})
    return out


# --- the record beside a manifest --------------------------------------------------------------------------

def write_record(folder: str | os.PathLike, excluded: Mapping[str, str], **extra) -> Path:
    """Write `folder`/excluded_tasks.json: which tasks the corpus there left out, and why."""
    path = Path(folder) / RECORD_NAME
    atomic_write_json(path, {"excluded_tasks": dict(sorted(excluded.items())), **extra})
    return path


def read_record(manifest: str | os.PathLike) -> dict | None:
    """The exclusion record beside `manifest` (a manifest file or its folder): {"excluded_tasks": {task:
    reason}, ...}; None when the corpus has none (made before records existed, or by another tool);
    ValueError naming the file when it is damaged."""
    p = Path(manifest)
    path = (p if p.is_dir() else p.parent) / RECORD_NAME
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("excluded_tasks"), dict):
        raise ValueError(f"{path}: not an exclusion record (no 'excluded_tasks' object)")
    return data

"""Training and evaluation seconds of every finished cell of a `roboact policy` run folder, per row, so a compute
plan rests on measured cells even before the run's tables exist (they are written when every cell is done).

    python scripts/study12/cell_times.py runs/study/final-metaworld [--json docs/results/study/OUT.json]
"""
from __future__ import annotations

import argparse
import json
import statistics as st
from pathlib import Path


def collect(run: Path) -> dict:
    rows: dict[str, list[dict]] = {}
    for f in sorted(run.glob("cells/*/*/*/result.json")):
        r = json.loads(f.read_text(encoding="utf-8"))
        if r.get("train_seconds") is None:
            continue
        row, task, seed = f.parts[-4], f.parts[-3], f.parts[-2].split("-")[0]
        rows.setdefault(row, []).append({"task": task, "seed": seed, "train_seconds": round(r["train_seconds"], 1),
                                         "eval_seconds": round(r["eval_seconds"], 1)})
    summary = {row: {"cells": len(c), "train_seconds_mean": round(st.mean(x["train_seconds"] for x in c), 1),
                     "eval_seconds_mean": round(st.mean(x["eval_seconds"] for x in c), 1),
                     "cell_seconds_max": max(round(x["train_seconds"] + x["eval_seconds"], 1) for x in c)}
               for row, c in rows.items()}
    return {"run": str(run), "summary": summary, "cells": rows}


def cli(doc: str, collect, report) -> None:
    """`SCRIPT RUN [--json OUT]`: `collect(run)` -> a JSON-able dict, `report(it)` prints it; shared with
    scripts/study14/eval_times.py."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = collect(args.run)
    report(out)
    if args.json:
        from roboact.utils.io import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, out)


def report(out: dict) -> None:
    for row, s in out["summary"].items():
        print(f"{row}: {s['cells']} cells, train {s['train_seconds_mean']} s, eval {s['eval_seconds_mean']} s "
              f"(mean), longest cell {s['cell_seconds_max']} s")


def main() -> None:
    cli(__doc__, collect, report)


if __name__ == "__main__":
    main()

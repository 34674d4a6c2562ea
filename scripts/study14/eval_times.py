"""Every task evaluation a multi-task `roboact policy` run has saved so far (cells/<row>/<seed>-<key>/evals/
step<N>/<task>.json), with its seconds and per-step costs: the compute plan rests on measured evaluations while
the grid is still running (its tables are written only when every cell is done).

    python scripts/study14/eval_times.py runs/libero10/policy [--json docs/results/study14/grid_eval_times.json]
"""
from __future__ import annotations

import json
import statistics as st
from pathlib import Path


def collect(run: Path) -> dict:
    evals = []
    for f in sorted(run.glob("cells/*/*/evals/step*/*.json")):
        if f.name.endswith(".stale.json"):
            continue  # rolled out by another policy and run again (roboact.policy.multitask.kept_result)
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # written atomically, so only a foreign file lands here
        evals.append({"row": f.parts[-5], "seed": f.parts[-4].split("-")[0], "step": int(f.parent.name[4:]),
                      "task": f.stem, "success_rate": r["success_rate"], "episodes": r["episodes"],
                      "seconds": round(r["seconds"], 1), "env_ms_per_step": round(r["env_ms_per_step"], 1),
                      "agent_ms_per_step": round(r["agent_ms_per_step"], 1)})
    summary = {}
    for step in sorted({e["step"] for e in evals}):
        at = [e for e in evals if e["step"] == step]
        secs = [e["seconds"] for e in at]
        summary[str(step)] = {"evaluations": len(at), "seconds_mean": round(st.mean(secs), 1),
                              "seconds_min": min(secs), "seconds_max": max(secs),
                              "env_ms_per_step_mean": round(st.mean(e["env_ms_per_step"] for e in at), 1),
                              "agent_ms_per_step_mean": round(st.mean(e["agent_ms_per_step"] for e in at), 1)}
    chains = [{"cell": "/".join(f.parts[-4:-2]), "switch": f.stem} for f in sorted(run.glob("cells/*/*/chain/*.json"))]
    return {"run": str(run), "summary_by_step": summary, "evaluations": evals, "chain_runs_done": chains}


def report(out: dict) -> None:
    for step, s in out["summary_by_step"].items():
        print(f"step {step}: {s['evaluations']} task evaluations, {s['seconds_mean']} s mean "
              f"({s['seconds_min']}-{s['seconds_max']}), env {s['env_ms_per_step_mean']} + agent "
              f"{s['agent_ms_per_step_mean']} ms/step")
    print(f"chain runs done: {len(out['chain_runs_done'])}")


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "study12"))
    from cell_times import cli

    cli(__doc__, collect, report)


if __name__ == "__main__":
    main()

"""scripts/study12's readers decide issue 12's verdict from the committed reports, so they are tested on reports
built here from known per-seed successes: a lead that is met, one that is too small, intervals that overlap, an
ablation above the full model, and rows that must not count (a pretraining that saw an evaluated task)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from roboact.utils.stats import t_interval

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "study12"
TASKS = ["a-v3", "b-v3"]


def _row(name: str, kind: str, per_task: dict[str, list[float]], seen: list[str] | None = None) -> dict:
    """A report row whose every task has the given per-seed success rates (fractions), final = best."""
    tasks, seeds = {}, len(next(iter(per_task.values())))
    for t, rates in per_task.items():
        iv = t_interval([100 * r for r in rates]).to_dict()
        tasks[t] = {"best": iv, "final": iv,
                    "per_seed": {str(s): {"best": r, "final": r, "best_step": 10} for s, r in enumerate(rates)}}
    overall = t_interval([100 * sum(per_task[t][s] for t in TASKS) / len(TASKS) for s in range(seeds)]).to_dict()
    return {"name": name, "kind": kind, "status": "ok", "input": "1280-d vector",
            "pretraining": {"eval_tasks_seen": [] if seen is None else seen},
            "tasks": tasks, "overall": {"best": overall, "final": overall}}


def _report(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps({"tasks": TASKS, "config": {"encoder": {"output": "fused+frame"}}, "rows": rows}))
    return path


def _goal(tmp_path: Path, rows: list[dict]) -> dict:
    rep = _report(tmp_path / "report.json", rows)
    out = tmp_path / "verdict.json"
    subprocess.run([sys.executable, str(SCRIPTS / "goal.py"), "--suite", "toy", str(rep), "--json", str(out)],
                   check=True, capture_output=True, text=True)
    doc = json.loads(out.read_text())
    assert doc["met"] == doc["suites"]["toy"]["met"]
    return doc["suites"]["toy"]


BACKBONE = _row("frozen backbone alone", "backbone", {"a-v3": [0.5, 0.55, 0.6], "b-v3": [0.5, 0.55, 0.6]})


def test_a_clear_lead_is_met_and_a_higher_ablation_is_reported_as_not_below(tmp_path):
    chosen = _row("RoboAct-CLIP, chosen configuration", "roboact", {"a-v3": [0.8, 0.85, 0.9], "b-v3": [0.8, 0.85, 0.9]})
    abl = _row("Ablation 1 (no temporal) at the chosen configuration", "roboact",
               {"a-v3": [0.9, 0.9, 0.95], "b-v3": [0.9, 0.9, 0.95]})
    v = _goal(tmp_path, [BACKBONE, abl, chosen])                      # an ablation listed first is no "chosen"
    assert v["best_backbone"]["name"] == "frozen backbone alone"
    assert v["best_roboact"]["name"].startswith("Ablation 1")        # the best clean RoboAct row, whichever it is
    assert v["met"] and v["intervals_apart"] and v["lead"] == pytest.approx(90 + 5 / 3 - 55)
    assert v["chosen"]["vs_best_backbone"]["lead"] == pytest.approx(30.0)
    assert v["chosen"]["vs_best_backbone"]["paired"]["mean"] == pytest.approx(30.0)
    (a,) = v["ablations"]
    assert not a["below_chosen"] and a["minus_chosen"] > 0


def test_a_small_or_noisy_lead_is_not_met_and_a_seen_task_row_never_counts(tmp_path):
    small = _row("RoboAct-CLIP, chosen configuration", "roboact", {"a-v3": [0.55, 0.6, 0.65], "b-v3": [0.55, 0.6, 0.65]})
    noisy = _row("RoboAct-CLIP wide", "roboact", {"a-v3": [0.3, 0.95, 1.0], "b-v3": [0.3, 0.95, 1.0]})
    seen = _row("RoboAct-CLIP saw the task", "roboact", {"a-v3": [1.0, 1.0, 1.0], "b-v3": [1.0, 1.0, 1.0]},
                seen=["a-v3"])
    v = _goal(tmp_path, [BACKBONE, small, noisy, seen])
    assert v["best_roboact"]["name"] == "RoboAct-CLIP wide"           # 75 > 60; the seen-task row is left out
    assert v["lead"] > 5 and not v["intervals_apart"] and not v["met"]
    v = _goal(tmp_path, [BACKBONE, small])
    assert v["lead"] == pytest.approx(5.0) and not v["met"]           # +5 with overlapping intervals


def test_goal_refuses_reports_without_a_clean_roboact_row(tmp_path):
    rep = _report(tmp_path / "r.json", [BACKBONE, _row("seen", "roboact", {"a-v3": [1, 1, 1], "b-v3": [1, 1, 1]},
                                                        seen=["b-v3"])])
    res = subprocess.run([sys.executable, str(SCRIPTS / "goal.py"), "--suite", "toy", str(rep)],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "no evaluated task seen" in res.stderr


def test_table_and_figure_read_the_reports_as_written(tmp_path):
    chosen = _row("RoboAct-CLIP, chosen configuration", "roboact", {"a-v3": [0.8, 0.85, 0.9], "b-v3": [0.8, 0.85, 0.9]})
    rep = _report(tmp_path / "r.json", [BACKBONE, chosen])
    res = subprocess.run([sys.executable, str(SCRIPTS / "table.py"), str(rep)], check=True, capture_output=True,
                         text=True)
    assert "| frozen backbone alone | 1280-d vector | 55.0 ± 12.4 | 55.0 ± 12.4 | **55.0 ± 12.4** |" in res.stdout
    png = tmp_path / "fig.png"
    subprocess.run([sys.executable, str(SCRIPTS / "figure.py"), "--suite", "metaworld", str(rep), "--suite",
                    "libero_goal", str(rep), "--out", str(png)], check=True, capture_output=True, text=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".fig.png*"))

"""scripts/study14/goal.py decides issue 14's verdict from the grid's report, so it is tested on reports built
here with known per-seed numbers: every goal met, the one-hot row never counting however high, overlapping
intervals, a judge too far under its oracle, and a report that is not a multi-task one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from roboact.utils.stats import t_interval

ROOT = Path(__file__).resolve().parents[1]
GOAL = ROOT / "scripts" / "study14" / "goal.py"
CONDS = ["roboact-text", "sentence", "onehot"]


def _row(name: str, kind: str, per_seed: list[float]) -> dict:
    iv = t_interval(per_seed).to_dict()
    return {"name": name, "kind": kind, "status": "ok", "overall": {"final": iv, "best": iv}}


def _chain(name: str, oracle: list[float], judge: list[float] | None) -> dict:
    """Per-seed shares of episodes completing all stages (the last entry of in_a_row), fractions."""
    k = lambda xs: [{"stages": 1, **t_interval([1.0] * len(xs)).to_dict()},  # noqa: E731
                    {"stages": 2, **t_interval(xs).to_dict()}]
    sw = {"oracle": {"status": "ok", "in_a_row": k(oracle)}}
    if judge is not None:
        sw["judge"] = {"status": "ok", "in_a_row": k(judge),
                       "switching": {"on_time": 5, "early": 1, "missed": 0, "not done": 0, "delay_mean": 3.0}}
    return {"name": name, "switches": sw}


def _report(rows: list[dict], chain_rows: list[dict] | None) -> dict:
    rep = {"tasks": ["a", "b"], "rows": rows,
           "multitask": {"conditions": CONDS, "train_tasks": ["a", "b"], "unseen_tasks": []}}
    if chain_rows is not None:
        rep["chain"] = {"settings": {}, "rows": chain_rows}
    return rep


def _verdict(tmp_path: Path, rep: dict, *extra: str) -> tuple[dict, str]:
    src, out = tmp_path / "report.json", tmp_path / "verdict.json"
    src.write_text(json.dumps(rep))
    done = subprocess.run([sys.executable, str(GOAL), str(src), "--json", str(out), *extra],
                          check=True, capture_output=True, text=True)
    return json.loads(out.read_text()), done.stdout


RA = "RoboAct-CLIP, chosen"
BB = "frozen backbone alone"


def test_every_goal_met_and_the_onehot_row_is_printed_but_never_counted(tmp_path):
    rows = [_row(f"{RA} [roboact-text]", "roboact", [84.0, 85.0, 86.0]),
            _row(f"{RA} [sentence]", "roboact", [80.0, 81.0, 82.0]),
            _row(f"{RA} [onehot]", "roboact", [97.0, 98.0, 99.0]),
            _row(f"{BB} [sentence]", "backbone", [70.0, 71.0, 72.0]),
            _row(f"{BB} [onehot]", "backbone", [96.0, 97.0, 98.0])]
    chain = [_chain(f"{RA} [roboact-text]", [0.7, 0.7, 0.7], [0.65, 0.65, 0.65]),
             _chain(f"{RA} [onehot]", [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]),
             _chain(f"{BB} [sentence]", [0.9, 0.9, 0.9], None)]
    v, text = _verdict(tmp_path, _report(rows, chain))
    assert v["best_language_row"] == f"{RA} [roboact-text]"            # not the 98% one-hot row
    assert v["best_backbone"] == f"{BB} [sentence]"
    assert v["roboact_vs_backbone"]["lead"] == pytest.approx(14.0)
    assert v["same_condition"]["sentence"]["lead"] == pytest.approx(10.0)
    assert "roboact-text" not in v["same_condition"]                   # the backbone has no text branch
    assert v["chain"]["best"] == f"{RA} [roboact-text]"         # not the one-hot row; a backbone row has no judge
    assert [r["counted"] for r in v["chain"]["rows"]] == [True, False]
    assert v["chain"]["rows"][0]["oracle_minus_judge"] == pytest.approx(5.0)
    assert v["goals"] == {"overall": True, "roboact_ahead": True, "chain": True} and v["met"]
    assert "reference, not counted" in text and "Goal: **met**" in text


def test_overlapping_intervals_and_a_judge_far_under_its_oracle_are_not_met(tmp_path):
    rows = [_row(f"{RA} [roboact-text]", "roboact", [70.0, 85.0, 99.0]),   # mean 84.7, wide
            _row(f"{BB} [sentence]", "backbone", [75.0, 80.0, 85.0])]
    chain = [_chain(f"{RA} [roboact-text]", [0.9, 0.9, 0.9], [0.7, 0.7, 0.7])]   # 70% but 20 under the oracle
    v, text = _verdict(tmp_path, _report(rows, chain))
    assert v["goals"]["overall"] is True
    assert v["roboact_vs_backbone"]["lead"] > 0 and not v["roboact_vs_backbone"]["intervals_apart"]
    assert v["chain"]["rows"][0]["judge"]["mean"] == pytest.approx(70.0)
    assert v["goals"] == {"overall": True, "roboact_ahead": False, "chain": False} and not v["met"]
    assert "Goal: **not met**" in text


def test_missing_chain_or_unrun_judge_is_not_met_with_the_reason(tmp_path):
    rows = [_row(f"{RA} [roboact-text]", "roboact", [90.0, 91.0, 92.0]),
            _row(f"{BB} [sentence]", "backbone", [50.0, 51.0, 52.0])]
    v, _ = _verdict(tmp_path, _report(rows, None))
    assert not v["goals"]["chain"] and "no chain section" in v["chain"]["why"]
    unrun = _chain(f"{RA} [roboact-text]", [0.9, 0.9, 0.9], [0.9, 0.9, 0.9])
    unrun["switches"]["judge"] = {"status": "not run: no checkpoint"}
    v, text = _verdict(tmp_path, _report(rows, [unrun]))
    assert v["chain"]["rows"] == [{"name": f"{RA} [roboact-text]", "counted": True, "status": "not run: no checkpoint"}]
    assert not v["met"] and "no language-conditioned RoboAct-CLIP row has both" in text


def test_a_report_without_the_multitask_section_or_a_language_row_is_refused(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"tasks": ["a"], "rows": []}))
    done = subprocess.run([sys.executable, str(GOAL), str(src)], capture_output=True, text=True)
    assert done.returncode != 0 and "not a multi-task report" in done.stderr
    src.write_text(json.dumps(_report([_row(f"{RA} [onehot]", "roboact", [90.0, 91.0, 92.0]),
                                       _row(f"{BB} [sentence]", "backbone", [50.0, 51.0, 52.0])], None)))
    done = subprocess.run([sys.executable, str(GOAL), str(src)], capture_output=True, text=True)
    assert done.returncode != 0 and "need a language-conditioned RoboAct-CLIP row" in done.stderr


def test_eval_times_reads_each_saved_task_evaluation_and_skips_foreign_files(tmp_path):
    """scripts/study14/eval_times.py: the plan's measured figures while the grid runs."""
    cell = tmp_path / "cells" / "frozen-backbone-sentence" / "seed1-abc"
    for step, task, secs in ((20000, "a", 300.0), (60000, "a", 500.0), (60000, "b", 700.0)):
        f = cell / "evals" / f"step{step:07d}" / f"{task}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"success_rate": 0.5, "episodes": 20, "seconds": secs, "env_ms_per_step": 80.0,
                                 "agent_ms_per_step": 16.0, "per_episode": []}))
    (cell / "evals" / "step0060000" / "torn.json").write_text("{")
    (cell / "evals" / "step0060000" / "b.stale.json").write_text(json.dumps({"seconds": 1.0}))
    (cell / "chain").mkdir()
    (cell / "chain" / "oracle.json").write_text("{}")
    out = tmp_path / "times.json"
    subprocess.run([sys.executable, str(GOAL.parent / "eval_times.py"), str(tmp_path), "--json", str(out)],
                   check=True, capture_output=True)
    res = json.loads(out.read_text())
    assert res["summary_by_step"]["60000"] == {"evaluations": 2, "seconds_mean": 600.0, "seconds_min": 500.0,
                                               "seconds_max": 700.0, "env_ms_per_step_mean": 80.0,
                                               "agent_ms_per_step_mean": 16.0}
    assert res["summary_by_step"]["20000"]["evaluations"] == 1
    assert {(e["row"], e["seed"], e["step"], e["task"]) for e in res["evaluations"]} == {
        ("frozen-backbone-sentence", "seed1", 20000, "a"), ("frozen-backbone-sentence", "seed1", 60000, "a"),
        ("frozen-backbone-sentence", "seed1", 60000, "b")}
    assert res["chain_runs_done"] == [{"cell": "frozen-backbone-sentence/seed1-abc", "switch": "oracle"}]


def _keep(*args: str) -> str:
    return subprocess.run([sys.executable, str(GOAL.parent / "keep.py"), *args], check=True, capture_output=True,
                          text=True).stdout


def test_keep_saves_only_finished_small_results_and_restores_only_what_is_missing(tmp_path):
    """scripts/study14/keep.py: what survives a machine that is not kept (the grid's JSON, never its training
    state, weights or torn files), and a restore that never overwrites the run folder's own files."""
    run, keep = tmp_path / "run", tmp_path / "keep"
    cell = run / "cells" / "roboact-clip-roboact-text" / "seed0-abc"
    files = {"expert_check.json": {"ok": 1}, "judge/calibration-k.json": {"t": 0.3},
             f"{cell.relative_to(run)}/evals/step0060000/a.json": {"success_rate": 0.5},
             f"{cell.relative_to(run)}/chain/oracle.json": {"status": "ok"},
             f"{cell.relative_to(run)}/result.json": {"tasks": {}}}
    left = {f"{cell.relative_to(run)}/state/state.json": {"step": 60000},
            f"{cell.relative_to(run)}/evals/step0060000/b.stale.json": {"success_rate": 0.1},
            f"{cell.relative_to(run)}/policy.json": {"config": {}}}
    for rel, obj in {**files, **left}.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(json.dumps(obj))
    (cell / "evals" / "step0060000" / "torn.json").write_text("{")
    (cell / "model.safetensors").write_bytes(b"x" * 10)
    assert "5 file(s) copied" in _keep("save", str(run), str(keep))
    assert sorted(str(p.relative_to(keep)) for p in keep.rglob("*") if p.is_file()) == sorted(files)
    assert "0 file(s) copied" in _keep("save", str(run), str(keep))          # nothing new
    # a new machine: the run folder has one evaluation of its own, made since; the rest comes back
    fresh = tmp_path / "fresh"
    own = fresh / cell.relative_to(run) / "evals" / "step0060000" / "a.json"
    own.parent.mkdir(parents=True)
    own.write_text(json.dumps({"success_rate": 0.9}))
    assert "4 file(s) copied" in _keep("restore", str(fresh), str(keep))
    assert json.loads(own.read_text()) == {"success_rate": 0.9}
    assert json.loads((fresh / "judge" / "calibration-k.json").read_text()) == {"t": 0.3}
    assert "nothing kept yet" in _keep("restore", str(fresh), str(tmp_path / "none"))
    bad = subprocess.run([sys.executable, str(GOAL.parent / "keep.py"), "save", str(tmp_path / "none"), str(keep)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no run folder to save from" in bad.stderr


def test_inputs_fingerprints_name_the_input_a_rebuild_changed(tmp_path):
    """scripts/study14/inputs.py: which demo file or checkpoint differs when kept results do not apply."""
    demos, model = tmp_path / "demos" / "libero_goal", tmp_path / "model"
    demos.mkdir(parents=True)
    model.mkdir()
    for name in ("a", "b"):
        (demos / f"{name}_demo.hdf5").write_bytes(name.encode())
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"w")
    script = str(GOAL.parent / "inputs.py")
    args = [sys.executable, script, "--demos", str(tmp_path / "demos"), "--model", str(model)]
    kept = tmp_path / "inputs.json"
    subprocess.run([*args, "--json", str(kept)], check=True, capture_output=True)
    assert set(json.loads(kept.read_text())["demos"]) == {"libero_goal/a_demo.hdf5", "libero_goal/b_demo.hdf5"}
    same = subprocess.run([*args, "--check", str(kept)], capture_output=True, text=True)
    assert same.returncode == 0 and "the same inputs" in same.stdout
    (demos / "b_demo.hdf5").write_bytes(b"rebuilt")
    (model / "model.safetensors").write_bytes(b"retrained")
    (demos / "a_demo.hdf5").unlink()
    diff = subprocess.run([*args, "--check", str(kept)], capture_output=True, text=True)
    assert diff.returncode == 1
    lines = diff.stdout.splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["demos: libero_goal/a_demo.hdf5 missing here",
                                                    "demos: libero_goal/b_demo.hdf5 differs", f"models: {model} differs"]
    bad = subprocess.run([sys.executable, script, "--demos", str(tmp_path / "none"), "--json", str(kept)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not a folder" in bad.stderr

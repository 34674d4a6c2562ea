"""The policy side of the instruction chain (roboact.policy.chain), with stand-ins for the encoder, the policy
and the judge: which conditioning vector each stage gets, one encoder stream per episode, and the judge's
switch (a fresh stream and detector per stage, thresholds per stage)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from roboact.judge.scoring import StepScores
from roboact.policy.chain import ChainPolicyActor, JudgeSwitch, StageJudging
from roboact.sim.base import Observation
from roboact.sim.chain.stages import STAGES

from .conftest import policy_cli


class Encoder:
    def __init__(self):
        self.resets, self.frames = 0, 0

    def reset(self):
        self.resets += 1

    def step(self, frames):
        self.frames += len(frames)
        return torch.zeros(len(frames), 4)


class Policy(torch.nn.Module):
    def forward(self, emb, prop, cond=None):
        return (cond[:, :7].expand(len(emb), 7).clone(),)      # acts out its conditioning vector


def _obs(value=0):
    return Observation(rgb={"agentview": np.full((8, 8, 3), value, np.uint8)}, proprio=np.zeros(9, np.float32),
                       state=np.zeros(3))


def test_actor_conditions_each_stage_on_its_instruction_and_streams_one_episode():
    vectors = {st.instruction: torch.full((7,), float(k)) for k, st in enumerate(STAGES)}
    enc = Encoder()
    actor = ChainPolicyActor(enc, Policy(), "agentview", vectors)
    for k, st in enumerate(STAGES):
        for n in range(3):
            np.testing.assert_array_equal(actor(None, st, _obs(), n == 0), np.full(7, float(k)))
    assert enc.resets == 1 and enc.frames == 12, "one stream across the stages, not one per stage"
    with pytest.raises(KeyError, match="no conditioning vector"):
        ChainPolicyActor(Encoder(), Policy(), "agentview", {})(None, STAGES[0], _obs(), True)


class Stream:
    def __init__(self, texts, log):
        self.texts, self.t = texts, 0
        log.append(texts)

    def step(self, frame):
        self.t += 1
        p = min(1.0, 0.25 * self.t)                 # "done" grows more likely each step of a stage
        return StepScores(np.array([p, 1 - p]), np.array([p, 1 - p]))


class Judge:
    def __init__(self):
        self.streams = []

    def stream(self, texts):
        return Stream(texts, self.streams)


def test_judge_switch_restarts_its_stream_per_stage_with_that_stage_threshold():
    judge = Judge()
    switch = JudgeSwitch(judge, [StageJudging(["open", "closed"], 0.5, patience=2),
                                 StageJudging(["held", "in drawer"], 0.9)], "agentview")
    fired = [switch(0, _obs()) for _ in range(4)]
    assert fired == [False, False, True, True]       # 0.25, 0.5, 0.75 (two in a row >= 0.5 at step 3)
    fired = [switch(1, _obs()) for _ in range(4)]
    assert fired == [False, False, False, True]      # a new stream: 0.25 .. 1.0 against 0.9
    assert judge.streams == [["open", "closed"], ["held", "in drawer"]]
    assert switch.scores == [[0.25, 0.5, 0.75, 1.0], [0.25, 0.5, 0.75, 1.0]]
    with pytest.raises(IndexError, match="given 2 stages"):
        switch(2, _obs())


@pytest.mark.sim
def test_evaluate_chain_from_the_committed_evaluation_starts():
    """One episode from the committed evaluation split with the experts as the actor: all four stages under
    the oracle; none when a switch fires at once (switched early)."""
    from pathlib import Path

    pytest.importorskip("libero.libero", reason="needs roboact[sim]")
    from roboact.policy.chain import evaluate_chain
    from roboact.sim.chain.rollout import expert_actor

    starts = str(Path(__file__).parents[2] / "docs/results/chain/chain_starts_eval.json")
    oracle = evaluate_chain(expert_actor, starts, 1, 64, "agentview")
    assert oracle["switch"] == "oracle" and oracle["in_a_row"] == [1.0, 1.0, 1.0, 1.0]
    early = evaluate_chain(expert_actor, starts, 1, 64, "agentview", make_switch=lambda: lambda k, obs: True)
    assert early["in_a_row"] == [0.0] * 4 and early["rows"][0]["failure"] == "switched early"
    with pytest.raises(ValueError, match="holds 50 chain initial states"):
        evaluate_chain(expert_actor, starts, 51, 64, "agentview")


# --- `roboact policy --multitask --chain` ---------------------------------------------------------------------
def test_chain_options_name_the_bad_field():
    from roboact.policy.benchmark import BenchmarkConfig
    from roboact.policy.chain import ChainSettings
    from roboact.utils.config import ConfigError

    with pytest.raises(ConfigError, match="chain.episodes"):
        ChainSettings(episodes=0)
    with pytest.raises(ConfigError, match="chain.switches"):
        ChainSettings(switches=["oracle", "oracle"])
    with pytest.raises(ConfigError, match="chain.switches"):
        ChainSettings(switches=["human"])
    with pytest.raises(ConfigError, match="chain.judge_objective"):
        ChainSettings(judge_objective="auc")
    with pytest.raises(ConfigError, match="chain.enabled: the instruction chain runs in LIBERO-Goal"):
        BenchmarkConfig(suite="metaworld", tasks=["plate-slide-v3", "pick-place-v3"], multitask=True,
                        chain=ChainSettings(enabled=True))
    with pytest.raises(ConfigError, match="chain.enabled"):
        BenchmarkConfig(suite="libero_goal", tasks=["turn_on_the_stove"], chain=ChainSettings(enabled=True))
    # one task is enough when the stages train beside it
    BenchmarkConfig(suite="libero_goal", mode="custom", tasks=["turn_on_the_stove"], multitask=True,
                    chain=ChainSettings(enabled=True))
    assert [s.budget for s in ChainSettings(stage_budget=7).stages()] == [7] * len(STAGES)
    assert ChainSettings().stages() == STAGES


def test_judge_delays_measure_each_switch_against_the_predicate():
    from roboact.policy.chain import judge_delays

    # stage 1: predicate from its 3rd step, switch at its 5th; stage 2: predicate and switch at its 2nd step;
    # stage 3: the judge never fires though the predicate held (budget 4 spent)
    flags = [False, False, True, True, True] + [False, True] + [False, True, True, True]
    out = judge_delays(flags, [5, 7], "no switch")
    assert out == [{"stage": 1, "held": 3, "fired": 5, "outcome": "on_time", "delay": 2},
                   {"stage": 2, "held": 2, "fired": 2, "outcome": "on_time", "delay": 0},
                   {"stage": 3, "held": 2, "fired": None, "outcome": "missed", "delay": None}]
    assert judge_delays([False, False], [], "switched early") == [
        {"stage": 1, "held": None, "fired": 2, "outcome": "early", "delay": None}]
    assert judge_delays([False] * 3, [], "no switch")[0]["outcome"] == "not done"
    assert [d["outcome"] for d in judge_delays([True, True], [1, 2], "")] == ["on_time", "on_time"]


def _chain_run(completed: list[int], switch: str) -> dict:
    rows = [{"index": i, "completed": c, "stage_steps": [10] * c, "failed_phase": "", "failure": "" if c == 4 else
             "budget", **({"switching": [{"stage": 1, "held": 3, "fired": 5, "outcome": "on_time", "delay": 2}]}
                         if switch == "judge" else {})} for i, c in enumerate(completed)]
    from roboact.sim.chain.rollout import summarize_chain

    return {"status": "ok", "switch": switch, "rows": rows, **summarize_chain(rows)}


def test_chain_report_gives_each_switch_calvin_shares_over_seeds():
    from roboact.policy.chain import ChainSettings, chain_markdown, chain_report

    settings = ChainSettings(enabled=True, episodes=4)
    chains = {"RoboAct-CLIP [roboact-text]": {0: {"oracle": _chain_run([4, 2, 0, 1], "oracle"),
                                                  "judge": _chain_run([1, 0, 0, 0], "judge")},
                                              1: {"oracle": _chain_run([4, 4, 1, 0], "oracle"),
                                                  "judge": _chain_run([2, 1, 0, 0], "judge")}},
              "backbone [sentence]": {0: {"oracle": _chain_run([0, 0, 0, 0], "oracle"),
                                          "judge": {"status": "not run: no judge"}}}}
    names = ["RoboAct-CLIP [roboact-text]", "backbone [sentence]", "backbone [roboact-text]"]
    rep = chain_report(settings, names, {"backbone [roboact-text]": "not run: no text branch"}, chains)
    rows = {r["name"]: r["switches"] for r in rep["rows"]}
    oracle = rows["RoboAct-CLIP [roboact-text]"]["oracle"]["in_a_row"]
    # seed 0: >=1 stage 3/4, >=2 2/4, >=3 1/4, 4 1/4; seed 1: 3/4, 2/4, 2/4, 2/4
    assert [k["mean"] for k in oracle] == pytest.approx([0.75, 0.5, 0.375, 0.375])
    assert oracle[2]["per_seed"] == {0: 0.25, 1: 0.5} and oracle[2]["n"] == 2
    judge = rows["RoboAct-CLIP [roboact-text]"]["judge"]
    assert [k["mean"] for k in judge["in_a_row"]] == pytest.approx([0.375, 0.125, 0.0, 0.0])
    assert judge["switching"]["on_time"] == 8 and judge["switching"]["delay_mean"] == 2.0
    assert rows["backbone [sentence]"]["judge"] == {"status": "not run: no judge"}
    assert rows["backbone [roboact-text]"]["oracle"]["status"] == "not run: no text branch"
    md = "\n".join(chain_markdown(rep))
    assert "| RoboAct-CLIP [roboact-text] | oracle | 75.0 ± 0.0 | 50.0 ± 0.0 | 37.5 ± 158.8 | 37.5 ± 158.8 |  |" in md
    assert "| backbone [sentence] | oracle | 0.0 (1 seed) |" in md and "| judge | - | - | - | - | not run: no judge |" in md


@pytest.fixture(scope="module")
def chain_smoke(tmp_path_factory, tiny_clip_backbone, tiny_checkpoints, expert_chain):
    """`roboact policy --multitask --chain` in smoke mode on LIBERO-Goal: one task plus the four stages, whose
    chained demos are the experts' chain from a committed start (the session's `expert_chain`), written for
    two starts."""
    import json
    from dataclasses import asdict, replace
    from pathlib import Path

    pytest.importorskip("libero.libero", reason="needs roboact[sim]")
    from roboact.sim.chain import demos as D

    repo = Path(__file__).parents[2]
    root = tmp_path_factory.mktemp("chain_smoke")
    start, run = expert_chain
    assert run.completed == len(STAGES)
    starts = root / "chain_starts_train.json"
    starts.write_text(json.dumps({"starts": [asdict(replace(start, index=i)) for i in range(2)]}))
    mp = pytest.MonkeyPatch()
    mp.setattr("roboact.sim.chain.rollout.run_chain", lambda env, s, keep=False, tail=0: run)
    D.generate_chain_demos(D.ChainDemosConfig(starts=str(starts), num_demos=2, output_dir=str(root / "demos"),
                                              image_size=64, video=False))
    mp.undo()
    mp.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    argv = ["--suite", "libero_goal", "--mode", "smoke", "--multitask", "--chain", "--tasks", "turn_on_the_stove",
            "--backbone", "hf-clip", "--backbone-path", tiny_clip_backbone.path, "--demos", root / "demos",
            "--cache", root / "cache", "-o", root / "out", "--steps", 20, "--rollouts", 1,
            "--no-progress", "--make-demos", "--condition", "roboact-text", "onehot",
            "--model", f"RoboAct-CLIP={tiny_checkpoints['full']}",
            "--chain-starts", repo / "docs/results/chain/chain_starts_eval.json", "--set", "image_size=64"]
    assert policy_cli(argv) == 0
    mp.undo()
    return root, argv


@pytest.mark.sim
def test_chain_smoke_trains_on_the_stages_and_runs_both_switches(chain_smoke):
    import json

    root, _ = chain_smoke
    out = root / "out"
    report = json.loads((out / "report.json").read_text())
    stages = [s.name for s in STAGES]
    assert report["tasks"] == ["turn_on_the_stove"]                     # the stages are never evaluated alone
    assert report["multitask"]["train_tasks"] == ["turn_on_the_stove", *stages]
    assert report["multitask"]["instructions"][stages[0]] == STAGES[0].instruction
    chain = {r["name"]: r["switches"] for r in report["chain"]["rows"]}
    assert report["chain"]["settings"]["budgets"] == [10] * len(STAGES)
    rt = chain["RoboAct-CLIP [roboact-text]"]
    for sw in ("oracle", "judge"):
        assert rt[sw]["status"] == "ok" and len(rt[sw]["in_a_row"]) == len(STAGES), sw
        assert rt[sw]["in_a_row"][0]["n"] == 1
    assert set(rt["judge"]["judging"]["0"][0]) == {"stage", "embedding", "threshold", "patience"}
    bb = chain["frozen backbone alone (hf-clip) [onehot]"]
    assert bb["oracle"]["status"] == "ok" and bb["judge"]["status"].startswith("not run: the judge is")
    assert chain["frozen backbone alone (hf-clip) [roboact-text]"]["oracle"]["status"].startswith("not run")
    # each cell keeps its chain runs beside its task evaluations; the judge's calibration is kept per checkpoint
    cell = next(p.parent for p in (out / "cells").rglob("result.json") if "roboact-clip-roboact-text" in str(p))
    assert {p.name for p in (cell / "chain").iterdir()} == {"oracle.json", "judge.json"}
    (cal,) = (out / "judge").glob("calibration-*.json")
    cal = json.loads(cal.read_text())
    assert [s["stage"] for s in cal["stages"]] == stages and all(s["held_out_starts"] == [1] for s in cal["stages"])
    md = (out / "table2.md").read_text()
    assert "## The instruction chain (CALVIN-style)" in md and "| RoboAct-CLIP [roboact-text] | judge |" in md


@pytest.mark.sim
def test_issue14_goal_script_reads_the_report_the_grid_writes(chain_smoke):
    """scripts/study14/goal.py is tested on built reports (tests/test_study14_goal.py); this pins it to the
    schema a real `--multitask --chain` run writes."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[2] / "scripts/study14/goal.py"
    spec = importlib.util.spec_from_file_location("study14_goal", path)
    goal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(goal)
    root, _ = chain_smoke
    report = json.loads((root / "out" / "report.json").read_text())
    rows = {r["name"]: r for r in goal.rows_of(report, "final")}
    rt = rows["RoboAct-CLIP [roboact-text]"]
    assert rt["kind"] == "roboact" and rt["condition"] == "roboact-text" and rt["overall"]["n"] == 1
    assert rows["frozen backbone alone (hf-clip) [onehot]"]["condition"] == "onehot"
    chain = goal.chain_verdict(report, 60.0, 10.0)
    assert chain["best"] == "RoboAct-CLIP [roboact-text]"              # a backbone row has no judge
    rows = {r["name"]: r for r in chain["rows"]}
    assert set(rows) == {"RoboAct-CLIP [roboact-text]", "RoboAct-CLIP [onehot]"}
    assert rows["RoboAct-CLIP [onehot]"]["counted"] is False
    row = rows["RoboAct-CLIP [roboact-text]"]
    assert row["stages"] == len(STAGES) and 0.0 <= row["judge"]["mean"] <= 100.0
    assert set(row["switching"]) >= {"on_time", "early", "missed", "delay_mean"}


@pytest.mark.sim
def test_chain_rerun_runs_only_the_missing_switch(chain_smoke, tiny_clip_backbone, monkeypatch):
    """A cell whose judge run is lost: the rerun trains nothing, evaluates no task and runs the chain once."""
    import json

    from roboact.policy import chain as chain_mod
    from roboact.policy import train as train_mod

    root, argv = chain_smoke
    cell = next(p.parent for p in (root / "out" / "cells").rglob("result.json")
                if "roboact-clip-roboact-text" in str(p))
    oracle = (cell / "chain" / "oracle.json").read_text()
    (cell / "result.json").unlink()
    (cell / "chain" / "judge.json").unlink()
    calls, trained = [], []
    real = chain_mod.evaluate_chain
    monkeypatch.setattr(chain_mod, "evaluate_chain", lambda *a, **k: calls.append(a[5] is not None) or real(*a, **k))
    monkeypatch.setattr(train_mod, "train_steps", lambda *a, **k: trained.append(1))
    monkeypatch.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    assert policy_cli(argv) == 0
    assert calls == [True] and trained == []
    assert (cell / "chain" / "oracle.json").read_text() == oracle
    assert json.loads((cell / "result.json").read_text())["chain"]["judge"]["status"] == "ok"


def test_missing_chain_inputs_are_named(tmp_path):
    from roboact.policy.benchmark import BenchmarkConfig
    from roboact.policy.chain import ChainSettings
    from roboact.policy.multitask import chain_stage_tasks
    from roboact.policy.suites import PolicyError

    cfg = BenchmarkConfig(suite="libero_goal", mode="custom", tasks=["turn_on_the_stove"], multitask=True,
                          demos_dir=str(tmp_path / "demos"),
                          chain=ChainSettings(enabled=True, starts=str(tmp_path / "none.json")))
    with pytest.raises(PolicyError, match="none.json: no chain initial states; build them with `roboact chain starts`"):
        chain_stage_tasks(cfg)
    from pathlib import Path

    cfg.chain.starts = str(Path(__file__).parents[2] / "docs/results/chain/chain_starts_eval.json")
    cfg.chain.episodes = 51
    with pytest.raises(PolicyError, match="holds 50 chain initial states, chain.episodes asks for 51"):
        chain_stage_tasks(cfg)
    cfg.chain.episodes = 20
    with pytest.raises(PolicyError, match=r"no chained demos for the stage\(s\) chain_open.*roboact chain demos -n 50 -o"):
        chain_stage_tasks(cfg)


def test_judge_calibration_labels_each_stage_by_what_follows_its_success(tmp_path, monkeypatch):
    """Stage k's labelled episode is its frames after the first action, then stage k+1's first frames (the last
    stage: its recorded tail), success at the first frame after the stage's last action. A stand-in judge that
    scores 1 exactly on the frames after success must then calibrate to fire on time with zero delay on the
    held-out starts: an off-by-one in the labels shows as early firing or a delay."""
    from roboact.policy.chain import ChainSettings, calibrate_chain_judge
    from roboact.sim.demos import Episode, write_demos

    files = []
    for k, stage in enumerate(STAGES, 1):
        eps = []
        for s in range(4):
            t = 8 if k == len(STAGES) else 6 + s % 2           # the last stage: 3 frames to success, then its tail
            pix = np.full(t, k, dtype=np.uint8)
            rewards = np.zeros(t)
            if k == len(STAGES):
                rewards[2:] = 1.0                                # success after action 2: frame 3 shows it
                pix[3:] = 9
            else:
                rewards[-1] = 1.0
            frames = np.broadcast_to(pix[:, None, None, None], (t, 4, 4, 3)).copy()
            eps.append(Episode(actions=np.zeros((t, 7)), states=np.zeros((t, 3)), rewards=rewards,
                               dones=np.eye(t)[-1], obs={"agentview_rgb": frames, "ee_pos": np.zeros((t, 3))},
                               attrs={"chain_start": s, "seed": s}))
        files.append(str(write_demos(tmp_path / f"{stage.name}_demo.hdf5", eps, {"task": f"libero_goal/{stage.name}"})))

    class Features:
        def __init__(self, judge, demos, key, root, todo):
            pass

        def get(self, name, frames):
            return torch.from_numpy(frames[:, 0, 0, 0].astype(np.float32))[:, None]

        def flush(self):
            pass

    class Result:
        def __init__(self, s):
            self.s = s

        def score(self, i):
            return self.s

    class StubJudge:
        checkpoint, window, stride = "stub", 16, 1
        encoder = type("E", (), {"cfg": type("C", (), {"disentangle": False})()})()

        def text_embeddings(self, texts):
            return {}

        def window_embeddings(self, feats):
            return {"fused": feats[:, 0]}

        def score_windows(self, windows, texts, embedding=None, text_emb=None):
            k = 1 + [s.instruction for s in STAGES].index(texts[0])
            return Result((windows[embedding].numpy() != k).astype(np.float64))   # 1 on frames not of stage k

    monkeypatch.setattr("roboact.judge.demos.FrameFeatures", Features)
    cal = calibrate_chain_judge(StubJudge(), files, ChainSettings(judge_patience=1), str(tmp_path / "cache"))
    assert [s["stage"] for s in cal["stages"]] == [s.name for s in STAGES]
    for st in cal["stages"]:
        assert st["calibration_starts"] == [0, 1] and st["held_out_starts"] == [2, 3]
        assert st["embedding"] == "fused" and 0.0 < st["threshold"] < 1.0
        held = st["embeddings"]["fused"]["held_out"]
        assert held["episode_accuracy"] == 1.0 and held["delay_mean"] == 0.0, st["stage"]
        assert st["embeddings"]["fused"]["calibration"]["value"] == 1.0
    with pytest.raises(ValueError, match="need at least 2"):
        calibrate_chain_judge(StubJudge(), files, ChainSettings(), str(tmp_path / "cache"), max_demos=1)

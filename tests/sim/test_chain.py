"""The instruction chain (roboact.sim.chain): predicates on constructed states, a chain initial state built by
the experts, the experts' full chain from it, chained demos (an episode whose stage fails is dropped, a crash
mid-episode leaves nothing), bad inputs. One chain initial state is built and one chained episode recorded for
the whole module (about 30 s on a loaded 2-core machine); the demo tests replay that episode."""
from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from roboact.sim import demos as demos_mod
from roboact.sim.base import SimError
from roboact.sim.demos import DemoFile
from roboact.utils.config import ConfigError

pytest.importorskip("libero.libero", reason="needs roboact[sim]")

import mujoco  # noqa: E402

from roboact.sim.chain import demos as D  # noqa: E402
from roboact.sim.chain import starts as S  # noqa: E402
from roboact.sim.chain.rollout import (ChainRun, chain_env, in_a_row, in_a_row_over_seeds, run_chain,  # noqa: E402
                                       summarize_chain)
from roboact.sim.chain.stages import (STAGES, PlaceBowlOnTable, bowl_on_table, bowl_picked,  # noqa: E402
                                      drawer_closed, drawer_open)
from roboact.sim.experts.controller import Scene  # noqa: E402
from roboact.sim.experts.libero_goal import BOWL, TOP_JOINT  # noqa: E402

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def start():
    """Chain initial state built from LIBERO's fixed initial state 0 of the top-drawer task."""
    env = chain_env(64, ("agentview",))
    fields, reason = S.build_start(env, "eval", 0)
    assert fields is not None, reason
    return S.ChainStart(0, fields["source"], fields["seed"], fields["place_at"], fields["state"])


@pytest.fixture(scope="module")
def run(expert_chain):
    """The scripted experts' chain from the committed start equal to `start` (tests/conftest.py), every
    observation kept (rendered at 64 px)."""
    return expert_chain[1]


def _scene_at(start) -> tuple:
    env = chain_env(64, ("agentview",))
    env.reset(seed=start.seed, state=np.asarray(start.state))
    return env, Scene(env.model, env.data)


def _set_bowl(env, pos, quat=(1.0, 0.0, 0.0, 0.0)) -> None:
    adr = env.model.jnt_qposadr[env.model.joint("akita_black_bowl_1_joint0").id]
    env.data.qpos[adr:adr + 3] = pos
    env.data.qpos[adr + 3:adr + 7] = quat
    env.data.qvel[:] = 0.0
    mujoco.mj_forward(env.model, env.data)


def test_chain_initial_state_has_the_bowl_in_the_shut_drawer(start):
    env, scene = _scene_at(start)
    assert start.source == "fixed:0" and start.seed == 0
    assert drawer_closed(scene) and not drawer_open(scene)
    assert env.success(), "the base task's goal (bowl's foot in the top drawer's region) must hold"
    assert "wooden_cabinet_1_cabinet_top" in scene.touching(BOWL)
    assert not bowl_picked(scene) and not bowl_on_table(scene)
    # the robot is back at the base scene's start pose: its arm as after a reset to LIBERO's fixed state 0
    arm = env.sim_state()[1:1 + 7]
    env.reset(init_state=0)
    np.testing.assert_allclose(arm, env.sim_state()[1:1 + 7], atol=0.01)   # rad: 5 settling steps more


def test_committed_evaluation_starts_are_what_the_construction_gives(start):
    """docs/results/chain/chain_starts_eval.json (the cache `roboact chain starts` wrote) holds, for LIBERO's
    fixed initial state 0, the very state the construction builds now: the experts are deterministic."""
    from pathlib import Path

    cached = S.ChainStarts.load(Path(__file__).parents[2] / "docs/results/chain/chain_starts_eval.json")[0]
    assert cached.source == start.source and cached.seed == start.seed
    np.testing.assert_allclose(cached.state, start.state, atol=1e-6)
    np.testing.assert_allclose(cached.place_at, start.place_at, atol=1e-9)


def test_predicates_on_constructed_states(start):
    env, scene = _scene_at(start)
    q = env.model.jnt_qposadr[env.model.joint(TOP_JOINT).id]
    for value, is_open, is_closed in ((-0.16, True, False), (-0.13, False, False), (-0.004, False, True)):
        env.data.qpos[q] = value
        mujoco.mj_forward(env.model, env.data)
        assert (drawer_open(scene), drawer_closed(scene)) == (is_open, is_closed), value
    # the bowl standing on the table at its placement spot: on the table; lying on its side: not placed
    foot = np.asarray(start.place_at)
    _set_bowl(env, foot)
    assert "table" in scene.touching(BOWL) and bowl_on_table(scene)
    assert not bowl_picked(scene)
    _set_bowl(env, foot + [0.0, 0.0, 0.03], quat=(np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0))
    assert not bowl_on_table(scene)
    # in the air, touching nothing: not picked up (picking needs the gripper), not on the table
    _set_bowl(env, foot + [0.0, 0.0, 0.30])
    assert scene.touching(BOWL) == set() and not bowl_picked(scene) and not bowl_on_table(scene)


def test_expert_chain_completes_every_stage_within_its_budget(run):
    assert run.completed == len(STAGES), f"stopped in stage {run.completed + 1} (phase {run.failed_phase!r})"
    steps = run.stage_steps()
    assert all(0 < n <= st.budget for n, st in zip(steps, STAGES)), steps
    for a, end in zip([0, *run.stage_ends], run.stage_ends):  # each stage ended at the first step its predicate held
        assert run.flags[end - 1] and not any(run.flags[a:end - 1])
    assert len(run.observations) == len(run.states) == len(run.actions) + 1


def test_a_held_bowl_is_picked_up(run, start):
    """Replay the chain to the end of stage 2: the expert holds the bowl, lifted out of the drawer."""
    env, scene = _scene_at(start)
    state, nq = run.states[run.stage_ends[1]], env.model.nq   # loaded as is: a reset's settling would open the hand
    env.data.qpos[:], env.data.qvel[:] = state[1:1 + nq], state[1 + nq:]
    mujoco.mj_forward(env.model, env.data)
    touching = scene.touching(BOWL)
    assert touching and all(b.startswith("gripper0_") for b in touching)
    assert bowl_picked(scene) and not bowl_on_table(scene)


def _starts_file(tmp_path, start, n=2):
    path = tmp_path / "chain_starts_train.json"
    path.write_text(json.dumps({"starts": [asdict(replace(start, index=i, source=f"test:{i}")) for i in range(n)]}))
    return str(path)


def _failing(run: ChainRun, stage: int) -> ChainRun:
    end = run.stage_ends[stage - 2] if stage > 1 else 0
    return ChainRun(run.observations[:end + 1], run.actions[:end], run.states[:end + 1], run.flags[:end],
                    run.stage_ends[:stage - 1], failed_phase="grasp")


def test_demos_one_file_per_stage_and_a_failed_episode_is_dropped(tmp_path, monkeypatch, run, start):
    """Start 0's episode fails in stage 3 (dropped, counted, nothing written); start 1's is recorded."""
    monkeypatch.setattr("roboact.sim.chain.rollout.run_chain",
                        lambda env, s, keep=False, tail=0: _failing(run, 3) if s.index == 0 else run)
    cfg = D.ChainDemosConfig(starts=_starts_file(tmp_path, start), num_demos=1, output_dir=str(tmp_path / "out"),
                             image_size=64, video=False)
    summary = D.generate_chain_demos(cfg)
    assert summary["kept"] == 1 and summary["episodes"] == [1]
    lengths = [*run.stage_steps()[:-1], run.stage_steps()[-1] + D.TAIL_STEPS]      # the last keeps the tail
    assert [(f["demos"], f["steps_min"]) for f in summary["files"]] == [(1, n) for n in lengths]
    assert summary["dropped"] == [{"index": 0, "stage": 3, "phase": "grasp"}]
    root = tmp_path / "out" / "libero_goal"
    assert not (root / "chain" / "episodes" / "start_00000").exists()
    assert not list((root / "chain" / "episodes").glob("*")), "merged episodes' folders are removed"
    total = 0
    for k, stage in enumerate(STAGES):
        f = DemoFile(root / f"{stage.name}_demo.hdf5")
        assert len(f) == 1 and f.instruction == stage.instruction and f.attrs["task_name"] == stage.name
        ep = f.episode("demo_0")
        assert ep.attrs["chain_start"] == 1 and ep.num_samples == lengths[k]
        n = run.stage_steps()[k]     # the stage's predicate, first at the stage's end (then the tail's, all held)
        assert ep.rewards[n - 1:].min() == 1.0 and ep.rewards[:n - 1].sum() == 0.0
        np.testing.assert_array_equal(ep.states[0], run.states[total])
        total += ep.num_samples
    assert total == len(run.actions)
    # the multi-task policy's demo reader takes a stage's file as one more task
    from roboact.policy.data import open_demos
    from roboact.policy.suites import get_bench_suite

    for stage in STAGES:
        assert open_demos(get_bench_suite("libero_goal"), stage.name, tmp_path / "out", 1, 1).keys == ["demo_0"]


def test_a_crash_while_writing_an_episode_leaves_nothing(tmp_path, monkeypatch, run, start):
    monkeypatch.setattr("roboact.sim.chain.rollout.run_chain", lambda env, s, keep=False, tail=0: run)
    real, calls = demos_mod.write_demos, []

    def flaky(path, eps, attrs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(path, eps, attrs)

    monkeypatch.setattr(demos_mod, "write_demos", flaky)
    row = D.demo_job((asdict(start), str(tmp_path), 64, ("agentview",), False))
    assert row["status"] == "error" and "disk full" in row["reason"]
    assert not D._episode_dir(tmp_path, start.index).exists()
    # a folder left by a run killed after writing it but before its log row is replaced by the rerun
    monkeypatch.setattr(demos_mod, "write_demos", real)
    left = D._episode_dir(tmp_path, start.index)
    left.mkdir(parents=True)
    (left / "stale.txt").write_text("from a killed run")
    row = D.demo_job((asdict(start), str(tmp_path), 64, ("agentview",), False))
    assert row["status"] == "ok", row
    assert sorted(p.name for p in left.iterdir()) == sorted(f"{st.name}.hdf5" for st in STAGES)


def test_build_starts_drops_and_counts_failed_scenes_and_resumes(tmp_path, monkeypatch):
    calls = []

    def job(j):
        calls.append(j)
        split, k = j
        if k == 1:
            return {"k": k, "ok": False, "reason": "bowl not in the top drawer"}
        return {"k": k, "ok": True, "source": f"fixed:{k}", "seed": k, "place_at": [0.0, 0.0, 0.9],
                "state": [0.0] * 79}

    monkeypatch.setattr(S, "build_job", job)
    cfg = S.StartsConfig(split="eval", count=3, output_dir=str(tmp_path))
    out = S.build_starts(cfg)
    assert out["built"] == 2 and out["dropped"] == [{"base": 1, "reason": "bowl not in the top drawer"}]
    loaded = S.ChainStarts.load(cfg.path)
    assert [s.index for s in loaded.starts] == [0, 1] and [s.source for s in loaded.starts] == ["fixed:0", "fixed:2"]
    S.build_starts(cfg)
    assert len(calls) == 3, "a rerun resumes from the log"


def test_in_a_row_and_summary_count_stages_completed_in_order():
    rows = [{"index": i, "completed": c, "stage_steps": [10] * c, "failed_phase": "x"} for i, c in
            enumerate([4, 4, 2, 0])]
    assert in_a_row([r["completed"] for r in rows], 4) == [0.75, 0.75, 0.5, 0.5]
    table = summarize_chain(rows)
    assert [(s["succeeded"], s["attempted"]) for s in table["stages"]] == [(3, 4), (3, 3), (2, 3), (2, 2)]
    assert table["stages"][2]["failed"] == [{"index": 2, "phase": "x"}]


def test_bad_inputs_are_named(tmp_path, start):
    with pytest.raises(ConfigError, match="split"):
        S.StartsConfig(split="test")
    with pytest.raises(ConfigError, match="count"):
        S.StartsConfig(split="eval", count=51)
    with pytest.raises(ConfigError, match="starts: .*evaluation split"):
        D.ChainDemosConfig(starts="data/chain/chain_starts_eval.json")
    with pytest.raises(SimError, match="no chain initial states"):
        S.ChainStarts.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"starts": [{"index": 0}]}')
    with pytest.raises(SimError, match="not a chain initial states file"):
        S.ChainStarts.load(bad)
    with pytest.raises(SimError, match="out of range"):
        S.ChainStarts.load(_starts_file(tmp_path, start, 1))[1]
    env = chain_env(64, ("agentview",))
    with pytest.raises(SimError, match="finite numbers"):
        env.reset(seed=0, state=np.zeros(5))
    with pytest.raises(SimError, match="needs the seed"):
        env.reset(state=np.asarray(start.state))
    with pytest.raises(ValueError, match="place_at"):
        PlaceBowlOnTable().plan(None)


def test_a_switch_decides_when_the_instruction_changes_and_the_predicate_scores(start):
    """The judge's mode: a switch that fires at once ends the chain at stage 1 (switched early); one that
    never fires ends it when stage 1's budget is spent (no switch), although the drawer was opened."""
    env = chain_env()
    early = run_chain(env, start, switch=lambda k, obs: True)
    assert (early.completed, early.failure, len(early.actions)) == (0, "switched early", 1)
    short = (replace(STAGES[0], budget=80), *STAGES[1:])
    never = run_chain(env, start, stages=short, switch=lambda k, obs: False)
    assert (never.completed, never.failure, len(never.actions)) == (0, "no switch", 80)
    assert any(never.flags), "stage 1's predicate held meanwhile; only the switch was missing"
    oracle_budget = run_chain(env, start, stages=(replace(STAGES[0], budget=20), *STAGES[1:]))
    assert (oracle_budget.completed, oracle_budget.failure) == (0, "budget")


def test_in_a_row_over_seeds_gives_each_seed_and_a_t_interval():
    rows = in_a_row_over_seeds({0: [4, 2], 1: [4, 4], 2: [0, 4]}, 4)
    assert [r["per_seed"] for r in rows][1] == {0: 1.0, 1: 1.0, 2: 0.5}
    assert rows[3]["mean"] == pytest.approx((0.5 + 1.0 + 0.5) / 3) and rows[3]["n"] == 3
    assert rows[3]["low"] < rows[3]["mean"] < rows[3]["high"]

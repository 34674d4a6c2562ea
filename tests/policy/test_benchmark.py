"""`roboact policy` end to end in smoke mode on Meta-World (tiny CLIP backbone and tiny checkpoints), and
the bad inputs that must stop a run with a clear error instead of printing a 0% row."""
import json

import numpy as np
import pytest

pytest.importorskip("metaworld")
pytestmark = pytest.mark.sim

from roboact.policy.suites import PolicyError  # noqa: E402
from roboact.sim.base import SimError  # noqa: E402

from .conftest import policy_cli as cli  # noqa: E402

TASK = "plate-slide-v3"


def base_args(root, bb, **over):
    opts = {"--suite": "metaworld", "--mode": "smoke", "--backbone": "hf-clip", "--backbone-path": bb.path,
            "--demos": root / "demos", "--cache": root / "cache", "-o": root / "out", "--steps": 40,
            "--max-steps": 60}  # plate-slide's expert needs ~50 steps from these initial states
    opts.update(over)
    # value None: a bare flag; False: leave the option out
    return [x for k, v in opts.items() if v is not False for x in ((k, v) if v is not None else (k,))] + \
        ["--no-progress"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, tiny_clip_backbone, tiny_checkpoints):
    root = tmp_path_factory.mktemp("smoke")
    mp = pytest.MonkeyPatch()
    mp.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)  # no CLIP in any HF cache
    models = [x for name, key in (("RoboAct-CLIP", "full"), ("no temporal", "no_temporal"),
                                  ("no disentanglement", "no_disentangle"))
              for x in ("--model", f"{name}={tiny_checkpoints[key]}")]
    assert cli(base_args(root, tiny_clip_backbone, **{"--make-demos": None}) + models) == 0
    mp.undo()
    return root, models


def test_smoke_writes_both_tables_chart_and_videos(smoke):
    root, _ = smoke
    out = root / "out"
    rep = json.loads((out / "report.json").read_text())
    assert rep["tasks"] == [TASK] and rep["expert"][TASK]["successes"] == 2
    rows = {r["name"]: r for r in rep["rows"]}
    assert rows["R3M"]["status"].startswith("not run: no weights")
    assert rows["MPI"]["status"].startswith("not run: no weights")
    assert rows["CLIP (real)"]["status"].startswith("not run: no weights")
    assert rows["RoboAct-CLIP"]["role"] == "RoboAct-CLIP" and rows["RoboAct-CLIP"]["tables"] == ["II", "III"]
    assert rows["no temporal"]["role"].startswith("ablation 1")
    assert rows["no disentanglement"]["role"].startswith("ablation 2")
    for r in rows.values():
        if r["status"] == "ok":
            best = r["tasks"][TASK]["best"]
            assert best["n"] == 1 and 0 <= best["mean"] <= 100 and r["overall"]["final"]["n"] == 1
            assert best["mean"] >= r["tasks"][TASK]["final"]["mean"]
    t2, t3 = (out / "table2.md").read_text(), (out / "table3.md").read_text()
    assert "scripted expert" in t2 and "R3M | - | not run: no weights" in t2 and "ablation 1" in t3
    # tiny checkpoints record a corpus without the evaluated task: stated, and no row is marked
    assert "evaluation tasks among them: none" in t2 and "[pretrain" not in t2 + t3
    assert json.loads((out / "table3.json").read_text())["rows"][0]["tables"] == ["II", "III"]
    assert (out / "success.png").stat().st_size > 1000
    assert list((out / "videos" / "expert" / TASK).glob("*.mp4"))
    assert list((out / "videos" / "roboact-clip" / TASK).glob("step40_ep00_*.mp4"))
    assert (out / "rollouts.png").stat().st_size > 1000   # the paper's Figure 2 analogue
    cells = list((out / "cells").rglob("result.json"))
    assert len(cells) == 4 and all((c.parent / "policy.safetensors").is_file() for c in cells)


def test_rerun_resumes_without_retraining(smoke, tiny_clip_backbone, monkeypatch):
    root, models = smoke
    before = (root / "out" / "report.json").read_text()

    def boom(job):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr("roboact.policy.benchmark.run_cell", boom)
    assert cli(base_args(root, tiny_clip_backbone) + models) == 0
    after = json.loads((root / "out" / "report.json").read_text())
    assert [r["overall"] for r in after["rows"] if r["status"] == "ok"] == \
        [r["overall"] for r in json.loads(before)["rows"] if r["status"] == "ok"]


def test_demos_match_what_the_env_shows_the_policy(smoke):
    """The demo's first proprio and frame are the env's at reset with the demo's seed."""
    from roboact.policy.data import open_demos, read_fields
    from roboact.policy.runner import policy_env
    from roboact.policy.suites import get_bench_suite

    root, _ = smoke
    suite = get_bench_suite("metaworld")
    src = open_demos(suite, TASK, root / "demos", 1, 2)
    demo = read_fields(src, "demo_0", ["obs/ee_pos", "obs/gripper_states", "obs/corner_rgb"])
    env = policy_env("metaworld", TASK, 128, 10)
    try:
        obs = env.reset(seed=src.seeds[0])
    finally:
        env.close()
    prop = np.concatenate([demo["obs/ee_pos"][0], demo["obs/gripper_states"][0]]).astype(np.float32)
    assert np.allclose(obs.proprio, prop, atol=1e-5)
    assert np.array_equal(obs.rgb["corner"], demo["obs/corner_rgb"][0])


def test_unknown_task_and_wrong_backbone_fail_before_any_work(smoke, tiny_clip_backbone, tiny_checkpoints):
    root, _ = smoke
    with pytest.raises(PolicyError, match="unknown metaworld task 'plate-slid-v3'"):
        cli(base_args(root, tiny_clip_backbone, **{"--tasks": "plate-slid-v3", "-o": root / "o2"}))
    with pytest.raises(PolicyError, match="trained on backbone 'hf-clip'.*'lite0-minilm'"):
        cli(base_args(root, tiny_clip_backbone, **{"--backbone": "lite0-minilm", "--backbone-path": False,
                                                   "-o": root / "o2", "--model": f"x={tiny_checkpoints['full']}"}))
    assert not (root / "o2" / "table2.md").exists()


def test_truncated_demo_file_is_a_clear_error(smoke, tiny_clip_backbone, tmp_path):
    from roboact.sim.demos import DemoError

    root, _ = smoke
    good = root / "demos" / "metaworld" / f"{TASK}_demo.hdf5"
    bad = tmp_path / "demos" / "metaworld" / good.name
    bad.parent.mkdir(parents=True)
    bad.write_bytes(good.read_bytes()[:4096])
    with pytest.raises(DemoError, match="truncated or corrupt"):
        cli(base_args(root, tiny_clip_backbone, **{"--demos": tmp_path / "demos", "-o": tmp_path / "o"}))
    assert not (tmp_path / "o" / "table2.md").exists()


def test_simulator_that_fails_to_start_or_experts_that_fail_stop_the_run(smoke, tiny_clip_backbone, tmp_path,
                                                                        monkeypatch):
    root, _ = smoke
    with monkeypatch.context() as m:
        m.setattr("roboact.sim.metaworld._make_raw_env", lambda *a: (_ for _ in ()).throw(RuntimeError("no GL")))
        with pytest.raises(SimError, match="plate-slide-v3.*failed to start.*no GL"):
            cli(base_args(root, tiny_clip_backbone, **{"-o": tmp_path / "a"}))
    assert not (tmp_path / "a" / "table2.md").exists()
    with pytest.raises(PolicyError, match="experts succeed below 80%.*0/2.*no table is written"):
        cli(base_args(root, tiny_clip_backbone, **{"-o": tmp_path / "b", "--max-steps": 5}))
    assert (tmp_path / "b" / "expert_check.json").is_file() and not (tmp_path / "b" / "table2.md").exists()
    assert not (tmp_path / "b" / "cells").exists()  # stopped before training anything


def test_rollout_figure_skips_unreadable_videos_and_needs_one(tmp_path, caplog):
    from roboact.data.video import write_mp4
    from roboact.policy.report import rollout_figure

    (tmp_path / "bad_fail.mp4").write_bytes(b"not a video")
    assert rollout_figure({"row": {"t": [str(tmp_path / "bad_fail.mp4")]}}, ["t"], tmp_path / "a.png") is None
    assert "bad_fail.mp4" in caplog.text and not (tmp_path / "a.png").exists()
    frames = np.zeros((12, 32, 32, 3), np.uint8)
    write_mp4(tmp_path / "step9_ep00_success.mp4", frames)
    videos = {"row": {"t": [str(tmp_path / "bad_fail.mp4"), str(tmp_path / "step9_ep00_success.mp4")]}}
    assert rollout_figure(videos, ["t"], tmp_path / "b.png", frames=4) == tmp_path / "b.png"
    assert (tmp_path / "b.png").stat().st_size > 500


def test_one_checkpoint_per_pretraining_seed(smoke, tiny_clip_backbone, tiny_checkpoints, tmp_path):
    """--model NAME=D0,D1 means what it means in roboact eval: the seeds of one model; here pretraining seed i
    trains policy seed i, so each seed's cells key on its own checkpoint."""
    from tests.policy.conftest import save_checkpoint

    root, _ = smoke
    second = save_checkpoint(tiny_clip_backbone, tmp_path / "full_seed1", seed=1)
    run = root / "multi"
    args = base_args(root, tiny_clip_backbone, **{"-o": run, "--seeds": 2, "--no-backbone-row": None,
                                                  "--model": f"RoboAct-CLIP=ck0,{second}"})
    with pytest.raises(PolicyError, match="ck0.*does not exist"):
        cli(args)
    bad = base_args(root, tiny_clip_backbone, **{"-o": run, "--seeds": 3, "--no-backbone-row": None,
                                                 "--model": f"RoboAct-CLIP={tiny_checkpoints['full']},{second}"})
    with pytest.raises(PolicyError, match="2 checkpoints .* but 3 policy seeds"):
        cli(bad)
    mixed = f"m={tiny_checkpoints['full']},{tiny_checkpoints['no_temporal']}"
    with pytest.raises(PolicyError, match="different variants"):
        cli(base_args(root, tiny_clip_backbone, **{"-o": run, "--seeds": 2, "--model": mixed}))
    good = base_args(root, tiny_clip_backbone, **{"-o": run, "--seeds": 2, "--no-backbone-row": None,
                                                  "--model": f"RoboAct-CLIP={tiny_checkpoints['full']},{second}"})
    assert cli(good) == 0
    rep = json.loads((run / "report.json").read_text())
    row = next(r for r in rep["rows"] if r["name"] == "RoboAct-CLIP")
    assert row["pretraining"]["checkpoints"] == [str(tiny_checkpoints["full"]), str(second)]
    assert sorted(row["tasks"][TASK]["per_seed"]) == ["0", "1"]
    for s in ("0", "1"):     # each cell's cost is in the report, so a doc's cost figures have a committed source
        cell = row["tasks"][TASK]["per_seed"][s]
        assert cell["train_seconds"] > 0 and cell["eval_seconds"] > 0
    keys = dict(p.name.split("-") for p in (run / "cells" / "roboact-clip" / TASK).iterdir())
    single = dict(p.name.split("-") for p in (root / "out" / "cells" / "roboact-clip" / TASK).iterdir())
    assert keys["seed0"] == single["seed0"]          # seed 0 ran on the same checkpoint as the one-dir row
    assert keys["seed1"] != keys["seed0"]            # seed 1 on its own


def test_token_rows_run_beside_the_frame_row_and_keep_its_cells(smoke, tiny_clip_backbone, tiny_checkpoints):
    """One command gives both backbone rows and a RoboAct tokens row; the frame row's cells keep their keys
    (so a token run next to an old run reuses them), and the tables say what each policy sees."""
    root, _ = smoke
    out = root / "tokens"
    argv = base_args(root, tiny_clip_backbone, **{"-o": out, "--output": "tokens", "--window": 4}) + \
        ["--backbone-output", "frame", "tokens", "--model", f"RoboAct-CLIP={tiny_checkpoints['full']}"]
    assert cli(argv) == 0
    rows = {r["name"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    tokens_row = "frozen backbone alone (hf-clip; tokens: 4 frames, attention pooling)"
    assert rows[tokens_row]["status"] == rows["RoboAct-CLIP"]["status"] == "ok"
    assert rows[tokens_row]["input"].startswith("tokens: 4 frames'")
    assert rows["RoboAct-CLIP"]["input"].startswith("tokens: the Temporal Diff-Transformer's 3 32-d states")
    assert rows["frozen backbone alone (hf-clip)"]["input"].startswith("current frame's")
    t2 = (out / "table2.md").read_text()
    assert f"| {tokens_row} |" in t2 and "`tokens` output (the Temporal Diff-Transformer's per-frame states" in t2
    def frame_cells(run: str) -> list[str]:
        folder = root / run / "cells" / "frozen-backbone-alone-hf-clip"
        return sorted(p.parent.name for p in folder.rglob("result.json"))

    assert frame_cells("tokens") == frame_cells("out")       # same key as in the fused run: same settings
    policy = json.loads(next((out / "cells" / "roboact-clip").rglob("policy.json")).read_text())
    assert policy["config"]["n_tokens"] == 3 and policy["config"]["pool"]["width"] == 256
    with pytest.raises(PolicyError, match="no Temporal Diff-Transformer"):
        cli(argv + ["--model", f"no temporal={tiny_checkpoints['no_temporal']}"])


def test_pool_settings_reach_only_token_cell_keys():
    """Vector rows' keys ignore the attention-pooling settings (so they are what they were before the settings
    existed); token rows' keys change with them."""
    import dataclasses
    from types import SimpleNamespace

    from roboact.policy.benchmark import CellJob, cell_key
    from roboact.policy.bc import PoolConfig
    from roboact.policy.encoders import EncoderSettings, RowSpec
    from roboact.policy.train import BCTrainConfig

    src = SimpleNamespace(sha256="ab" * 32, keys=["demo_0"])
    job = CellJob(RowSpec("b", "backbone"), EncoderSettings(), "metaworld", TASK, 0, src, "c", BCTrainConfig(),
                  2, 60, 128, "", 0, "")
    other = dataclasses.replace(job, train=BCTrainConfig(pool=PoolConfig(queries=2)))
    frame, tokens = {"kind": "frame"}, {"kind": "frame", "output": "tokens", "window": 16, "stride": 1}
    assert cell_key(frame, job) == cell_key(frame, other)
    assert cell_key(tokens, job) != cell_key(tokens, other) and cell_key(tokens, job) != cell_key(frame, job)


def test_checkpoint_pretrained_on_an_evaluated_task_is_refused_unless_allowed(smoke, tiny_clip_backbone, tmp_path):
    from tests.policy.conftest import corpus_manifest, save_checkpoint, trained_on

    root, _ = smoke
    leaky = save_checkpoint(tiny_clip_backbone, tmp_path / "leaky",
                            extra=trained_on(corpus_manifest(tmp_path / "m.jsonl", ("drawer-close-v3", TASK))))
    run = tmp_path / "run"
    args = base_args(root, tiny_clip_backbone, **{"-o": run, "--no-backbone-row": None, "--model": f"L={leaky}"})
    with pytest.raises(PolicyError, match=rf"row 'L' \(checkpoint .*leaky\).*evaluated task\(s\) {TASK}"):
        cli(args)
    assert not (run / "cells").exists()                     # refused before any cell
    assert cli(args + ["--allow-seen-tasks"]) == 0
    row = next(r for r in json.loads((run / "report.json").read_text())["rows"] if r["name"] == "L")
    assert row["pretraining"]["eval_tasks_seen"] == [TASK]
    for table in ("table2.md", "table3.md"):
        lines = [x for x in (run / table).read_text().splitlines() if x.startswith("| L ") and "seed" in x]
        assert len(lines) == 2 and all(f"[pretrained on evaluated tasks: {TASK}]" in x for x in lines), table


NO_REAL_CLIP = "import roboact.backbones.hf_clip as h\nh.clip_weights_present = lambda _: False\n"


def test_cell_workers_stop_on_sigterm_and_sigkill_and_the_rerun_equals_the_smoke_run(smoke, tiny_clip_backbone,
                                                                                     tmp_path, monkeypatch):
    """`roboact policy --workers 2`: SIGTERM once a cell is done, SIGKILL while cells run; each time no worker
    outlives the command and no half file is left, and the third run's cells equal the in-process run's."""
    import signal
    import time

    from roboact.utils.shutdown import descendants
    from tests.preempt import Command, temp_files

    root, models = smoke
    out = tmp_path / "out"
    argv = ["policy", *base_args(root, tiny_clip_backbone, **{"-o": out, "--workers": 2}), *models]

    def cells() -> int:
        return len(list((out / "cells").rglob("result.json")))

    with Command(argv, tmp_path / "sigterm.log", patch=NO_REAL_CLIP) as run:
        run.wait_for(lambda: cells() >= 1)
        assert run.stop(workers=2) == 143
    assert "roboact policy: stopped by SIGTERM; finished: " in run.text() and not temp_files(out)
    first = cells()
    assert 1 <= first < 4
    with Command(argv, tmp_path / "sigkill.log", patch=NO_REAL_CLIP) as run:
        run.wait_for(lambda: len(descendants(run.proc.pid)) >= 3)   # both cell workers (and the tracker) up
        time.sleep(1.0)
        assert run.stop(signal.SIGKILL, workers=2) == -signal.SIGKILL
    assert not temp_files(out)
    monkeypatch.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    assert cli(argv[1:]) == 0                  # the same command, in this process (saves a start-up)
    ref = {c.relative_to(root / "out"): json.loads(c.read_text()) for c in (root / "out" / "cells").rglob("result.json")}
    got = {c.relative_to(out): json.loads(c.read_text()) for c in (out / "cells").rglob("result.json")}
    assert ref.keys() == got.keys() and len(ref) == 4
    same = ("best", "best_step", "final", "curve", "demo_steps")
    episode = ("index", "seed", "success", "steps")   # not timings
    for k in ref:
        assert {f: ref[k][f] for f in same} == {f: got[k][f] for f in same}, k
        assert [{f: e[f] for f in episode} for e in ref[k]["final_episodes"]] == \
            [{f: e[f] for f in episode} for e in got[k]["final_episodes"]], k


def test_expert_check_stopped_mid_way_keeps_the_tasks_it_finished(tmp_path, monkeypatch):
    """Ten LIBERO experts take ~30 min: a stop after some of them must not cost the ones done."""
    from roboact.policy import benchmark as bm

    ran = []

    class Runner:
        def __init__(self, task):
            self.task = task

        def run(self, agent, record=0, video_dir=None):
            ran.append(self.task)
            if self.task == "c":
                raise KeyboardInterrupt                       # the session stops here
            return {"success_rate": 1.0, "successes": 2, "episodes": 2, "videos": [], "env_ms_per_step": 1.0,
                    "per_episode": [{"index": 0, "success": True}, {"index": 1, "success": True}]}

    monkeypatch.setattr(bm, "runner_for", lambda suite, t, *a, **k: Runner(t))
    monkeypatch.setattr("roboact.policy.runner.ExpertAgent", lambda suite, t: None)
    cfg = bm.BenchmarkConfig(suite="metaworld", mode="custom", tasks=["a", "b", "c"], rollouts=2)
    with pytest.raises(KeyboardInterrupt):
        bm.expert_check(cfg, ["a", "b", "c"], tmp_path)
    kept = json.loads((tmp_path / "expert_check.json").read_text())["tasks"]
    assert sorted(kept) == ["a", "b"] and ran == ["a", "b", "c"]
    ran.clear()
    res = bm.expert_check(cfg, ["a", "b", "d"], tmp_path)             # the rerun runs only what is missing
    assert ran == ["d"] and sorted(res) == ["a", "b", "d"]
    assert sorted(json.loads((tmp_path / "expert_check.json").read_text())["tasks"]) == ["a", "b", "d"]

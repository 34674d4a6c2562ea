"""Multi-task, language-conditioned policies (`roboact policy --multitask`): the conditioning vectors, the
joined training set, exact resume of a cell's training, and the whole run in smoke mode on Meta-World."""
from __future__ import annotations

import json

import pytest
import torch

from roboact.policy.bc import BCConfig, BCPolicy
from roboact.policy.conditioning import condition_vectors, unavailable
from roboact.policy.data import DemoSet
from roboact.policy.encoders import EncoderSettings
from roboact.policy.multitask import concat_sets, load_state, save_state
from roboact.policy.suites import PolicyError
from roboact.policy.train import BCTrainConfig, make_policy, train_steps

from .conftest import policy_cli as cli


def _set(n: int, episodes: int, windows: bool, d: int = 3, seed: int = 0) -> DemoSet:
    g = torch.Generator().manual_seed(seed)
    ep = torch.arange(n) * episodes // n
    win = torch.stack([torch.clamp(torch.arange(n) - k, min=0) for k in (1, 0)], 1) if windows else None
    return DemoSet(torch.randn(n, d, generator=g), torch.randn(n, 2, generator=g), torch.randn(n, 4, generator=g),
                   ep, source=None, windows=win)


def test_concat_sets_shifts_windows_and_demo_ids_and_labels_each_step_with_its_task():
    a, b = _set(5, 2, True, seed=1), _set(4, 3, True, seed=2)
    data, task = concat_sets([a, b])
    assert task.tolist() == [0] * 5 + [1] * 4
    assert torch.equal(data.inputs(torch.tensor([5, 8])), b.inputs(torch.tensor([0, 3])))   # windows shifted
    assert torch.equal(data.inputs(torch.arange(5)), a.inputs(torch.arange(5)))
    assert data.episode.tolist() == a.episode.tolist() + [e + 2 for e in b.episode.tolist()]
    with pytest.raises(ValueError, match="gathered by window"):
        concat_sets([a, _set(3, 1, False)])


def test_onehot_gives_unseen_instructions_the_zero_vector():
    train = ["open the drawer", "turn on the stove"]
    v = condition_vectors("onehot", ["turn on the stove", "open the drawer", "put the bowl away"], train,
                          EncoderSettings())
    assert v.tolist() == [[0, 1], [1, 0], [0, 0]]


def test_text_conditions_come_from_the_text_tower_and_the_checkpoints_text_mlps(tiny_clip_backbone, tiny_checkpoints):
    from roboact.models.encoder import load_heads

    settings = EncoderSettings(backbone="hf-clip", backbone_path=tiny_clip_backbone.path)
    texts = ["open the drawer", "push the plate"]
    sent = condition_vectors("sentence", texts, texts, settings)
    assert torch.allclose(sent, tiny_clip_backbone.encode_texts(texts).float())
    rt = condition_vectors("roboact-text", texts, texts, settings, str(tiny_checkpoints["full"]))
    heads = load_heads(tiny_checkpoints["full"])
    parts = heads.encode_text_features(sent)
    assert torch.allclose(rt, torch.cat([parts["subject"], parts["object"], parts["action"]], -1), atol=1e-6)
    assert not torch.allclose(rt[0], rt[1])
    assert unavailable("roboact-text", "backbone").startswith("not run")
    assert unavailable("sentence", "backbone") is None
    with pytest.raises(PolicyError, match="needs a RoboAct-CLIP checkpoint"):
        condition_vectors("roboact-text", texts, texts, settings)
    with pytest.raises(PolicyError, match="condition must be one of"):
        unavailable("clip-text", "roboact")


def test_a_conditioned_policy_needs_its_vector_and_uses_it():
    torch.manual_seed(0)
    p = BCPolicy(BCConfig(embed_dim=3, proprio_dim=2, action_dim=4, cond_dim=2)).eval()
    emb, prop = torch.randn(2, 3), torch.randn(2, 2)
    with pytest.raises(ValueError, match="needs cond"):
        p(emb, prop)
    with pytest.raises(ValueError, match="takes no conditioning"):
        BCPolicy(BCConfig(embed_dim=3, proprio_dim=2, action_dim=4))(emb, prop, cond=torch.zeros(2, 2))
    p.input_norm.running_var.fill_(1.0)
    a = p(emb, prop, cond=torch.tensor([[1.0, 0.0]] * 2))[0]
    b = p(emb, prop, cond=torch.tensor([[0.0, 1.0]] * 2))[0]
    assert not torch.allclose(a, b)


def test_saved_training_state_resumes_exactly(tmp_path):
    """Training 30 steps, saving, loading into a fresh policy and training 30 more must equal 60 straight:
    the optimizer moments and the sampler's RNG come back, not just the weights."""
    data, task = concat_sets([_set(40, 4, False, seed=1), _set(30, 3, False, seed=2)])
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    cfg = BCTrainConfig(steps=60, batch_size=8, seed=3)

    def fresh():
        p = make_policy(data, cfg, cond_dim=2)
        return p, torch.optim.Adam(p.parameters(), lr=cfg.lr), torch.Generator().manual_seed(cfg.seed)

    straight, opt, gen = fresh()
    train_steps(straight, opt, data, 60, 8, gen, (task, vectors))
    first, opt, gen = fresh()
    loss = train_steps(first, opt, data, 30, 8, gen, (task, vectors))
    save_state(tmp_path, first, opt, gen, 30, [loss])
    second, opt2, gen2 = fresh()
    assert load_state(tmp_path, second, opt2, gen2) == (30, [loss])
    train_steps(second, opt2, data, 30, 8, gen2, (task, vectors))
    for (k, v), w in zip(straight.state_dict().items(), second.state_dict().values()):
        assert torch.equal(v, w), k
    # a state of another policy shape is not trusted: training starts over
    other = BCPolicy(BCConfig(embed_dim=5, proprio_dim=2, action_dim=4, cond_dim=2))
    assert load_state(tmp_path, other, torch.optim.Adam(other.parameters()), torch.Generator()) == (0, [])


# --- end to end -------------------------------------------------------------------------------------------------
TASKS = ("plate-slide-v3", "pick-place-v3")


def smoke_args(root, bb, *extra):
    return ["--suite", "metaworld", "--mode", "smoke", "--multitask", "--backbone", "hf-clip", "--backbone-path",
            bb.path, "--demos", root / "demos", "--cache", root / "cache", "-o", root / "out", "--steps", 40,
            "--max-steps", 60, "--no-progress", *extra]


@pytest.fixture(scope="module")
def multitask_smoke(tmp_path_factory, tiny_clip_backbone, tiny_checkpoints):
    pytest.importorskip("metaworld")
    root = tmp_path_factory.mktemp("multitask")
    mp = pytest.MonkeyPatch()
    mp.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    # the grid's RoboAct input (scripts/study14/run.sh: issue 12's chosen `fused+frame`)
    model = ["--output", "fused+frame", "--model", f"RoboAct-CLIP={tiny_checkpoints['full']}"]
    assert cli(smoke_args(root, tiny_clip_backbone, "--make-demos", *model)) == 0
    mp.undo()
    return root, model


@pytest.mark.sim
def test_multitask_smoke_writes_one_row_per_image_row_and_condition(multitask_smoke):
    root, _ = multitask_smoke
    out = root / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["tasks"] == list(TASKS) and report["multitask"]["train_tasks"] == list(TASKS)
    assert report["multitask"]["instructions"] == {"plate-slide-v3": "push the plate", "pick-place-v3": "place the puck"}
    rows = {r["name"]: r for r in report["rows"]}
    bb = "frozen backbone alone (hf-clip)"
    assert rows[f"{bb} [roboact-text]"]["status"].startswith("not run: only a RoboAct-CLIP")
    ran = [f"{bb} [sentence]", f"{bb} [onehot]", "RoboAct-CLIP [roboact-text]", "RoboAct-CLIP [sentence]",
           "RoboAct-CLIP [onehot]"]
    for name in ran:
        r = rows[name]
        assert r["status"] == "ok", name
        assert set(r["tasks"]) == set(TASKS) and r["overall"]["final"]["n"] == 1
        assert r["input"].startswith("`fused+frame`" if r["kind"] == "roboact" else "current frame's"), name
    # one cell (one policy) per ran row, holding every task's evaluation
    cells = sorted((out / "cells").rglob("result.json"))
    assert len(cells) == len(ran)
    res = json.loads(cells[0].read_text())
    assert set(res["tasks"]) == set(TASKS) and res["unseen"] == []
    assert all((c.parent / "evals" / "step0000040" / f"{t}.json").is_file() for c in cells for t in TASKS)
    policy = json.loads((cells[0].parent / "policy.json").read_text())
    assert policy["config"]["cond_dim"] > 0 and set(policy["condition_vectors"]) == {"push the plate", "place the puck"}
    t2 = (out / "table2.md").read_text()
    assert "multi-task" in t2 and "RoboAct-CLIP [roboact-text]" in t2 and "Franka Kitchen" not in t2


def _spy_on_evaluations(monkeypatch) -> list[str]:
    """The tasks a rerun of the smoke rolls out, in order (and the tiny backbone kept offline)."""
    from roboact.policy import runner as runner_mod

    evaluated, real_eval = [], runner_mod.EnvRunner.run

    def spy(self, *a, **k):
        evaluated.append(self.cfg.task)
        return real_eval(self, *a, **k)

    monkeypatch.setattr(runner_mod.EnvRunner, "run", spy)
    monkeypatch.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    return evaluated


@pytest.mark.sim
def test_multitask_rerun_resumes_unfinished_evaluations_only(multitask_smoke, tiny_clip_backbone, monkeypatch):
    """A cell stopped after some of its task evaluations: the rerun trains nothing and evaluates only the
    missing task; finished cells are not touched."""
    from roboact.policy import train as train_mod

    root, model = multitask_smoke
    out = root / "out"
    cell = next(p.parent for p in (out / "cells").rglob("result.json") if "roboact-clip-onehot" in str(p))
    before = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("result.json")}
    (cell / "result.json").unlink()
    (cell / "evals" / "step0000040" / "pick-place-v3.json").unlink()
    trained = []
    real_train = train_mod.train_steps
    monkeypatch.setattr(train_mod, "train_steps", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    evaluated = _spy_on_evaluations(monkeypatch)
    assert cli(smoke_args(root, tiny_clip_backbone, *model)) == 0
    assert trained == [] and evaluated == ["pick-place-v3"]
    assert (cell / "result.json").is_file()
    after = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("result.json")}
    assert [p for p in before if p != cell / "result.json" and after[p] != before[p]] == []


@pytest.mark.sim
def test_a_cell_restored_without_its_training_state_keeps_only_its_own_policys_evaluations(
        multitask_smoke, tiny_clip_backbone, monkeypatch):
    """What a study keeps in git when its machine is not (scripts/study14/run.sh save/restore): the evaluation
    JSONs, not the training state. The rerun trains again from the seed; an evaluation whose policy digest
    matches the retrained policy is kept, one rolled out by another policy is set aside and run again."""
    import shutil

    root, model = multitask_smoke
    out = root / "out"
    cell = next(p.parent for p in (out / "cells").rglob("result.json") if "hf-clip-sentence" in str(p))
    digest = json.loads((cell / "result.json").read_text())["policy_sha256"]
    evals = cell / "evals" / "step0000040"
    assert {json.loads((evals / f"{t}.json").read_text())["policy_sha256"] for t in TASKS} == {digest}
    shutil.rmtree(cell / "state")
    (cell / "result.json").unlink()
    foreign = json.loads((evals / "pick-place-v3.json").read_text())
    (evals / "pick-place-v3.json").write_text(json.dumps({**foreign, "policy_sha256": "0" * 64}))
    evaluated = _spy_on_evaluations(monkeypatch)
    assert cli(smoke_args(root, tiny_clip_backbone, *model)) == 0
    assert evaluated == ["pick-place-v3"]                                # plate-slide's evaluation was kept
    assert json.loads((evals / "pick-place-v3.stale.json").read_text())["policy_sha256"] == "0" * 64
    assert json.loads((evals / "pick-place-v3.json").read_text())["policy_sha256"] == digest
    assert json.loads((cell / "result.json").read_text())["policy_sha256"] == digest   # retrained: same weights


@pytest.mark.sim
def test_holdout_task_is_evaluated_with_its_own_instruction_and_marked_unseen(multitask_smoke, tiny_clip_backbone,
                                                                            tmp_path, monkeypatch):
    root, _ = multitask_smoke
    monkeypatch.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    args = smoke_args(root, tiny_clip_backbone, "--tasks", "plate-slide-v3", "--holdout-tasks", "pick-place-v3",
                      "--condition", "onehot", "sentence")
    args[args.index("-o") + 1] = tmp_path / "holdout"
    assert cli(args) == 0
    report = json.loads((tmp_path / "holdout" / "report.json").read_text())
    assert report["tasks"] == list(TASKS) and report["multitask"]["unseen_tasks"] == ["pick-place-v3"]
    assert "task 2: pick-place-v3 (unseen)" in (tmp_path / "holdout" / "table2.md").read_text()
    cell = next((tmp_path / "holdout" / "cells").rglob("result.json"))
    assert json.loads(cell.read_text())["tasks"]["pick-place-v3"]["unseen"] is True


def test_bad_multitask_options_name_the_field(tmp_path):
    from roboact.policy.benchmark import BenchmarkConfig
    from roboact.utils.config import ConfigError

    with pytest.raises(ConfigError, match="holdout_tasks: only with multitask"):
        BenchmarkConfig(tasks=["plate-slide-v3"], holdout_tasks=["pick-place-v3"])
    with pytest.raises(ConfigError, match="holdout_tasks: .*also training tasks"):
        BenchmarkConfig(tasks=["plate-slide-v3"], multitask=True, holdout_tasks=["plate-slide-v3"])
    with pytest.raises(ConfigError, match="conditions: give one or more"):
        BenchmarkConfig(tasks=["plate-slide-v3", "pick-place-v3"], multitask=True, conditions=["clip"])
    with pytest.raises(ConfigError, match="tasks: a multi-task policy needs at least two"):
        BenchmarkConfig(tasks=["plate-slide-v3"], multitask=True)


# --- benchmarks/multitask_bc_budget.py (how many BC steps; docs/RESULTS.md, issue 14) ---------------------------
def _budget_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "multitask_bc_budget.py"
    spec = importlib.util.spec_from_file_location("multitask_bc_budget", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_budget_holds_out_each_tasks_last_demos():
    a, b = _set(12, 4, windows=True), _set(6, 3, windows=True, seed=1)   # demos 0..3 and 0..2
    train, held = _budget_module().held_out_masks([a, b], 1)
    assert held.tolist() == [False] * 9 + [True] * 3 + [False] * 4 + [True] * 2
    assert (train == ~held).all()


@pytest.mark.sim
def test_budget_trains_the_grids_policy_and_scores_held_out_demos(multitask_smoke, tiny_clip_backbone, tmp_path,
                                                                   monkeypatch):
    """The budget check builds the very training set of a multi-task cell (same flags, same cached features):
    every demo step is either trained on or held out, the held-out ones being each task's last demo."""
    from roboact.sim.demos import DemoFile

    root, model = multitask_smoke
    monkeypatch.setattr("roboact.backbones.hf_clip.clip_weights_present", lambda _: False)
    out = tmp_path / "budget.json"
    flags = [str(a) for a in smoke_args(root, tiny_clip_backbone, *model)]
    assert _budget_module().main(["--row", "1", "--condition", "roboact-text", "--holdout", "1", "--steps", "10",
                                  "20", "--json", str(out), "--", *flags]) == 0
    res = json.loads(out.read_text())
    assert res["row"] == "RoboAct-CLIP" and res["condition"] == "roboact-text" and res["train_tasks"] == list(TASKS)
    files = {t: DemoFile(root / "demos" / "metaworld" / f"{t}_demo.hdf5") for t in TASKS}
    lengths = {t: [f.lengths[k] for k in f.keys] for t, f in files.items()}
    assert res["heldout_steps"] == sum(n[-1] for n in lengths.values())
    assert res["train_steps_kept"] == sum(sum(n[:-1]) for n in lengths.values())
    assert [r["step"] for r in res["rows"]] == [10, 20]
    assert all(0 < r["heldout_mse"] < float("inf") and 0 < r["train_mse"] for r in res["rows"])
    with pytest.raises(SystemExit):
        _budget_module().main(["--steps", "20", "10", "--", *flags])


def test_cells_run_the_compared_conditions_first_seed_by_seed():
    from types import SimpleNamespace

    from roboact.policy.multitask import cell_priority

    jobs = [SimpleNamespace(spec=SimpleNamespace(kind=kind), condition=cond, seed=seed)
            for kind, conds in (("backbone", ("sentence", "onehot")), ("roboact", ("roboact-text", "sentence", "onehot")))
            for cond in conds for seed in range(3)]
    order = [(j.spec.kind, j.condition, j.seed) for j in sorted(jobs, key=cell_priority)]
    assert order[:6] == [("backbone", "sentence", 0), ("roboact", "roboact-text", 0), ("backbone", "sentence", 1),
                         ("roboact", "roboact-text", 1), ("backbone", "sentence", 2), ("roboact", "roboact-text", 2)]
    assert order[6:9] == [("roboact", "sentence", s) for s in range(3)]
    assert {c for _, c, _ in order[9:]} == {"onehot"} and len(order) == 15

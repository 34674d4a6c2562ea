"""End to end: two tiny models trained on the synthetic corpus, evaluated, report checked."""
import json

import pytest

from roboact.cli import main as roboact_main
from roboact.eval.report import ALL_KEYS, COLUMNS, METRIC_KEYS
from roboact.eval.runner import EvalConfig, evaluate
from roboact.models.checkpoints import find_checkpoint
from roboact.utils.config import ConfigError
from tests.eval.conftest import HELD_OUT


def test_report_has_every_row_column_and_plot(trained, tmp_path):
    root, manifest, cache, full, base = trained
    cfg = EvalConfig(manifest=str(manifest), cache=str(cache), out=str(tmp_path / "ev"), progress=False,
                     models=[("full", str(root / "full")), ("no temporal", str(root / "missing")),
                             ("baseline", str(base))])
    rep = evaluate(cfg)
    assert [r["name"] for r in rep["rows"]] == ["full", "no temporal", "baseline"]
    assert rep["rows"][0]["checkpoint"] == str(full)               # a run folder resolves to its final/
    assert rep["rows"][1]["status"] == "not run" and "does not exist" in rep["rows"][1]["reason"]
    assert all(v is None for v in rep["rows"][1]["metrics"].values())
    assert sorted(map(tuple, rep["heldout_pairs"])) == sorted(HELD_OUT)
    assert rep["counts"]["heldout_clips"] == rep["counts"]["clips"] == 12
    for r in (rep["rows"][0], rep["rows"][2]):
        assert set(r["metrics"]) == set(ALL_KEYS)
        assert r["metrics"]["zs_subject"] is None                     # one subject: no column
        assert all(r["metrics"][k] is not None for k in METRIC_KEYS if k != "zs_subject"), r["metrics"]
        assert 0.0 <= r["metrics"]["mean_abs_cos"] <= 1.0
    assert "thirds of Fv" in " ".join(rep["rows"][2]["notes"])        # baseline has no branches
    assert rep["rows"][2]["variant"].startswith("frozen-backbone baseline")
    md = (tmp_path / "ev" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| model"))
    assert all(f" {h} " in header for _, h in COLUMNS)
    assert "| no temporal | not run:" in md and "| chance |" in md
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["rows"][0]["name"] == "full"
    for name in ("heatmap", "action_pca", "training_curves"):
        assert (tmp_path / "ev" / rep["plots"][name]).stat().st_size > 1000


def test_trained_model_beats_chance_on_seen_pairs(trained, tmp_path):
    root, manifest, cache, full, base = trained
    rep = evaluate(EvalConfig(manifest=str(manifest), cache=str(cache), out=str(tmp_path / "ev"), split="val",
                              models=[("full", str(full))], plots=False, progress=False))
    m, chance = rep["rows"][0]["metrics"], rep["chance"]
    assert m["zs_action"] > chance["zs_action"] + 0.2
    assert m["v2t_r1"] > chance["v2t_r1"] + 0.2
    assert rep["heldout_pairs"] == [] and m["comp_v2t_r1_all"] is None   # val holds only seen pairs


def test_explicit_heldout_pair_seen_in_training_is_refused(trained, tmp_path):
    root, manifest, cache, full, base = trained
    cfg = EvalConfig(manifest=str(manifest), cache=str(cache), out=str(tmp_path / "ev"), progress=False,
                     models=[("full", str(full))], heldout_pairs=[("open", "drawer")])
    with pytest.raises(ValueError, match=r"\('open', 'drawer'\) occurs in split 'train'"):
        evaluate(cfg)


def test_unfinished_run_is_not_run(trained, tmp_path):
    run = tmp_path / "partial"
    (run / "checkpoints" / "step_00000004").mkdir(parents=True)
    ckpt, why = find_checkpoint(str(run))
    assert ckpt is None and "training unfinished" in why and "step_00000004" in why


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="train_split"):
        EvalConfig(manifest="m", cache="c", out="o", models=[("a", "b")], split="train")
    with pytest.raises(ConfigError, match="models: row names must be unique"):
        EvalConfig(manifest="m", cache="c", out="o", models=[("a", "b"), ("a", "c")])


def test_cli_writes_the_report_and_rejects_bad_arguments(trained, tmp_path, capsys):
    root, manifest, cache, full, base = trained
    common = ["eval", "--manifest", str(manifest), "--cache", str(cache), "--out", str(tmp_path / "cli"),
              "--no-plots", "--no-progress"]
    assert roboact_main(common + ["--model", f"full={full}", "--heldout-pair", "push,window"]) == 0
    out = capsys.readouterr().out
    assert "| full | full |" in out and (tmp_path / "cli" / "report.md").is_file()
    rep = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert rep["heldout_pairs"] == [["push", "window"]] and rep["counts"]["heldout_clips"] == 6
    assert roboact_main(common + ["--model", "nameonly"]) == 2
    assert "NAME=CHECKPOINT_DIR" in capsys.readouterr().err
    assert roboact_main(common + ["--model", f"x={tmp_path / 'none'}"]) == 2
    assert "none of the models has a checkpoint" in capsys.readouterr().err

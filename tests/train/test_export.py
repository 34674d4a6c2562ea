"""`roboact export`: the folder a hub expects (weights + config + model card), loadable as it is and by repo id
from a Hugging Face cache, with a card that says only what the checkpoint's records and the user's scores say."""
from __future__ import annotations

import json

import pytest
import torch

import roboact
from roboact.models import RoboActCLIP
from roboact.models.checkpoints import CheckpointError
from roboact.models.encoder import RoboActEncoder
from roboact.train.export import export_checkpoint

from ..models.conftest import hf_cache_snapshot, small_config

CORPUS = {"manifest": "m.jsonl", "clips": 12, "train_clips": 9, "tasks": {"drawer-open-v3": 12},
          "subjects": {"Robot": 12}, "embodiments": {"sawyer": 12}, "excluded": {"door-open-v3": "benchmark task"}}


@pytest.fixture
def run(tmp_path):
    """A `roboact train` run folder: final/ plus the metrics.jsonl the trainer logs (validation at step 4)."""
    torch.manual_seed(0)
    enc = RoboActEncoder(RoboActCLIP(small_config()))
    final = enc.save_pretrained(tmp_path / "run" / "final", extra={"train": {"data": {
        "manifest": str(tmp_path / "gone.jsonl"), "backbone": "lite0-minilm", "train_splits": ["train"]}}, "step": 4})
    rows = [{"step": 2, "val/r1_video_to_text": 0.25}, {"step": 4, "train/total": 1.5},
            {"step": 4, "val/r1_video_to_text": 0.75, "val/total": 0.5}, {"step": 6, "val/r1_video_to_text": 0.9}]
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return enc, final


def _same_weights(a, b) -> bool:
    sa, sb = a.heads.state_dict(), b.heads.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_export_then_load_from_the_folder_and_by_repo_id(run, tmp_path, monkeypatch):
    enc, _ = run
    out = export_checkpoint(tmp_path / "run", tmp_path / "hub", name="someorg/tiny")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert _same_weights(roboact.load(out), enc)
    # the same folder as huggingface_hub caches a download of it: found by repo id, offline
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ROBOACT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    hf_cache_snapshot(tmp_path / "hf", "someorg/tiny", out)
    assert _same_weights(roboact.load("someorg/tiny"), enc)


def test_card_has_training_data_config_and_the_scores_at_the_checkpoints_step(run, tmp_path):
    _, final = run
    (tmp_path / "scores.json").write_text(json.dumps({"libero_goal": {"success": 0.62}, "retrieval_r1": 0.5}))
    card = (export_checkpoint(final, tmp_path / "hub", scores_file=tmp_path / "scores.json") / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: roboact\n")
    assert "# hub" in card and "roboact.load('ORG/hub')" in card
    assert "Manifest `" in card and "gone.jsonl" in card and "`lite0-minilm`" in card   # corpus not recorded
    assert "| val/r1_video_to_text | 0.75 |" in card and "| val/total | 0.5 |" in card    # step 4, not 6
    assert "training step 4" in card and "train/total" not in card
    assert "| success | 0.62 |" in card and "scores.json: libero_goal" in card and "| retrieval_r1 | 0.5 |" in card


def test_an_installed_model_keeps_its_recipe_and_corpus(run, tmp_path):
    enc, final = run
    installed = tmp_path / "home" / "models" / "tiny-recipe"
    enc.save_pretrained(installed)
    (installed / "recipe.json").write_text(json.dumps({"name": "tiny-recipe", "description": "Two tasks."}))
    (installed / "corpus.json").write_text(json.dumps(CORPUS))
    out = export_checkpoint(installed, tmp_path / "hub")
    assert json.loads((out / "corpus.json").read_text()) == CORPUS
    card = (out / "README.md").read_text()
    assert "# tiny-recipe" in card and "Two tasks." in card and "roboact pretrain --recipe tiny-recipe" in card
    assert "12 clips (9 in the training split)" in card and "- door-open-v3: benchmark task" in card
    assert "No scores were recorded" in card


def test_bad_input_is_refused_before_anything_is_written(run, tmp_path):
    _, final = run
    with pytest.raises(ValueError, match="is the checkpoint folder itself"):
        export_checkpoint(final, final)
    (tmp_path / "bad.json").write_text(json.dumps({"success": "high"}))
    with pytest.raises(ValueError, match="bad.json: score 'success' must be a finite number"):
        export_checkpoint(final, tmp_path / "out2", scores_file=tmp_path / "bad.json")
    assert not (tmp_path / "out2").exists()
    (final / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors: corrupted"):
        export_checkpoint(final, tmp_path / "out3")
    assert not (tmp_path / "out3").exists()


def test_cli(run, tmp_path, capsys):
    from roboact.cli import main

    _, final = run
    assert main(["export", str(final), str(tmp_path / "hub"), "--name", "org/x"]) == 0
    assert "README.md, config.json, model.safetensors" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nothing"), str(tmp_path / "hub2")]) == 2
    assert "no roboact checkpoint named" in capsys.readouterr().err

"""The one checkpoint resolver and backbone check behind roboact.load, eval and policy."""
import pytest

from roboact.models.checkpoints import (CheckpointError, check_backbone, find_checkpoint, parse_model_spec,
                                        resolve_checkpoint)

from .conftest import small_config


def _ckpt(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_folder_run_folder_and_model_store(tmp_path, monkeypatch):
    direct = _ckpt(tmp_path / "a")
    run = tmp_path / "run"
    final = _ckpt(run / "final")
    monkeypatch.setenv("ROBOACT_HOME", str(tmp_path / "home"))
    stored = _ckpt(tmp_path / "home" / "models" / "recommended" / "final")
    assert resolve_checkpoint(direct) == direct
    assert resolve_checkpoint(run) == final                      # a training run folder: its final/
    assert resolve_checkpoint("recommended") == stored           # a name in the model store
    assert find_checkpoint(tmp_path / "nope") == (None, f"{tmp_path / 'nope'} does not exist")
    monkeypatch.chdir(tmp_path)
    assert find_checkpoint("nope") == (None, f"nope does not exist (nor {tmp_path / 'home' / 'models' / 'nope'})")


def test_missing_and_unfinished_say_why(tmp_path):
    (tmp_path / "partial" / "checkpoints" / "step_00000004").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="training unfinished.*step_00000004 but no final/"):
        resolve_checkpoint(tmp_path / "partial")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no config.json in .*empty.*looked in .*empty/final"):
        resolve_checkpoint(tmp_path / "empty")


def test_backbone_check_names_what_differs(tmp_path):
    cfg = small_config(backbone="hf-clip", backbone_path=str(tmp_path / "clip"), image_dim=32, text_dim=24)
    check_backbone(cfg, "hf-clip", str(tmp_path / "clip"), 32, 24)
    check_backbone(cfg, "hf-clip")                                # unknown widths and path: not checked
    with pytest.raises(CheckpointError, match="trained on backbone 'hf-clip', not 'lite0-minilm'"):
        check_backbone(cfg, "lite0-minilm")
    with pytest.raises(CheckpointError, match="weights at .*clip.*not .*other"):
        check_backbone(cfg, "hf-clip", str(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="image features of width 32; backbone hf-clip gives 1280"):
        check_backbone(cfg, "hf-clip", image_dim=1280)
    with pytest.raises(CheckpointError, match="text features of width 24; backbone hf-clip gives 384"):
        check_backbone(cfg, "hf-clip", text_dim=384)


def test_model_spec_is_one_syntax_for_eval_and_policy():
    from roboact.eval.cli import parse_model
    from roboact.policy.cli import parse_models

    assert parse_model_spec("full=a") == ("full", ["a"])
    assert parse_model_spec(" abl 1 = a , b ") == ("abl 1", ["a", "b"])
    for bad in ("full", "=a", "full=", "full=a,,b"):
        with pytest.raises(ValueError, match="--model"):
            parse_model_spec(bad)
    assert parse_model("full=a,b") == ("full", ["a", "b"]) and parse_model("full=a") == ("full", "a")
    (one,), (two,) = parse_models(["full=a"]), parse_models(["full=a,b"])
    assert (one.path, one.seed_paths) == ("a", ()) and (two.path, two.seed_paths) == ("a", ("a", "b"))
    assert two.for_seed(1).path == "b" and one.for_seed(1) is one

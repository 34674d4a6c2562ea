"""`roboact policy` builds its BenchmarkConfig from --config, --set and the flags that were given, over the
mode's preset; the config.json a run saves reproduces it."""
import dataclasses
import json

import pytest

from roboact.cli import build_parser
from roboact.cli import main as roboact_main
from roboact.policy.cli import build_config


def _config(argv):
    return build_config(build_parser().parse_args(["policy", *argv]))


def _plain(cfg) -> dict:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k != "command"}


def test_flags_keep_their_defaults_and_the_mode_preset():
    cfg = _config([])
    assert (cfg.suite, cfg.mode, cfg.out, cfg.num_demos, cfg.seeds, cfg.train.steps) == \
        ("metaworld", "smoke", "runs/policy/metaworld-smoke", 2, 1, 60)
    assert [r.name for r in cfg.rows] == ["frozen backbone alone (lite0-minilm)", "R3M", "MPI", "CLIP (real)"]
    cfg = _config(["--mode", "full", "--steps", "300"])   # --steps alone: evaluation no later than the last step
    assert (cfg.train.steps, cfg.train.eval_every, cfg.seeds, cfg.out) == (300, 300, 3, "runs/policy/metaworld-full")


def test_config_file_set_and_flags_reach_the_config(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"mode": "custom", "seeds": 2, "rollouts": 5, "train": {"steps": 100},
                                "encoder": {"backbone": "hf-clip", "backbone_path": "clip"},
                                "rows": [{"name": "mine", "kind": "roboact", "path": "ck"}]}))
    cfg = _config(["--config", str(path), "--set", "seeds=4", "train.lr=0.01", "--rollouts", "6"])
    assert (cfg.mode, cfg.seeds, cfg.rollouts, cfg.num_demos) == ("custom", 4, 6, 50)   # 50: custom's preset
    assert (cfg.train.steps, cfg.train.lr, cfg.train.eval_every) == (100, 0.01, 100)
    assert [r.name for r in cfg.rows] == ["mine"]            # the file's rows, no row flag given
    cfg = _config(["--config", str(path), "--model", "x=ck2", "--no-backbone-row"])
    assert [r.name for r in cfg.rows] == ["x", "R3M", "MPI", "CLIP (real)"]     # row flags replace them
    cfg = _config(["--config", str(path), "--model", "x=ck2"])
    assert cfg.rows[0].name == "frozen backbone alone (hf-clip)"                 # the file's backbone


def test_saved_config_reloads_to_the_same_benchmark(tmp_path):
    cfg = _config(["--mode", "custom", "--seeds", "2", "--model", "a=ck", "--backbone", "hf-clip",
                   "--window", "4", "--tasks", "drawer-open-v3", "-o", str(tmp_path / "o")])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dataclasses.asdict(cfg)))     # what run_benchmark writes to OUT/config.json
    assert _plain(_config(["--config", str(path)])) == _plain(cfg)


def test_one_command_asks_for_both_backbone_rows_and_token_outputs():
    cfg = _config(["--output", "tokens", "--backbone-output", "frame", "tokens", "--stride", "5", "--model", "R=ck",
                   "--set", "train.pool.queries=2"])
    assert cfg.encoder.output == "tokens" and cfg.train.pool.queries == 2
    assert [(r.name, r.output) for r in cfg.rows[:3]] == [
        ("frozen backbone alone (lite0-minilm)", None),     # the frame row keeps its name, so its cell folders
        ("frozen backbone alone (lite0-minilm; tokens: 16 frames, stride 5, attention pooling)", "tokens"),
        ("R", None)]
    cfg = _config(["--backbone-output", "tokens", "--window", "8"])
    assert [r.name for r in cfg.rows[:1]] == ["frozen backbone alone (lite0-minilm; tokens: 8 frames, attention "
                                              "pooling)"]


@pytest.mark.parametrize("argv, message", [
    (["--output", "token"], "argument --output: invalid choice: 'token'"),
    (["--backbone-output", "fused"], "argument --backbone-output: invalid choice: 'fused'"),
])
def test_bad_output_choices_are_refused(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        roboact_main(["policy", "-o", str(tmp_path / "o"), *argv])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("item, message", [
    ("encoder.devic=cpu", "encoder.devic: unknown config field for EncoderSettings"),
    ("train.steps=many", "train.steps: expected an integer, got 'many'"),
    ("mode=fast", "mode: 'fast' is not one of"),
    ("encoder.output=token", "output must be one of"),
    ("train.pool.heads=3", "pool.width: 256 is not divisible by pool.heads=3"),
])
def test_bad_set_fails_before_any_work(tmp_path, capsys, item, message):
    assert roboact_main(["policy", "-o", str(tmp_path / "o"), "--set", item]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

"""`roboact simulate metaworld` and `roboact demos` build their configs from --config, --set and the flags
that were given (flags win); a bad --set stops the command before any simulator starts."""
import json

import pytest

pytest.importorskip("h5py")
pytest.importorskip("metaworld")

from roboact.cli import build_parser  # noqa: E402
from roboact.cli import main as roboact_main  # noqa: E402
from roboact.sim.cli import metaworld_config  # noqa: E402
from roboact.sim.demos_cli import demos_config, expert_eval_config  # noqa: E402


def _args(*argv):
    return build_parser().parse_args(list(argv))


def test_metaworld_config_file_set_and_flags(tmp_path):
    cfg = metaworld_config(_args("simulate", "metaworld", "--out", "c"))   # flags alone: the old defaults
    assert (cfg.episodes_per_task, cfg.cameras, cfg.image_size, cfg.heldout_pairs, cfg.randomize) == \
        (20, ["corner", "corner3", "corner4"], 128, 3, [])
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps({"out_dir": "from-file", "episodes_per_task": 5, "tasks": ["drawer-close-v3"],
                                "crf": 30}))
    cfg = metaworld_config(_args("simulate", "metaworld", "--config", str(path), "--set", "episodes_per_task=7",
                                 "cameras=corner3", "randomize=light,camera", "--seed", "9"))
    assert (cfg.out_dir, cfg.episodes_per_task, cfg.tasks, cfg.crf, cfg.seed) == \
        ("from-file", 7, ["drawer-close-v3"], 30, 9)
    assert cfg.cameras == ["corner3"] and cfg.randomize == ["camera", "light"]


def test_metaworld_bad_set_fails_before_simulating(tmp_path, capsys):
    out = tmp_path / "c"
    assert roboact_main(["simulate", "metaworld", "--out", str(out), "--set", "episodes=3"]) == 2
    err = capsys.readouterr().err
    assert "episodes: unknown config field for CorpusConfig" in err and "episodes_per_task" in err
    assert roboact_main(["simulate", "metaworld", "--set", "episodes_per_task=3"]) == 2
    assert "out_dir: required" in capsys.readouterr().err
    assert not out.exists()


def test_demos_and_expert_configs(tmp_path):
    cfg = demos_config(_args("demos"))
    assert (cfg.suite, cfg.num_demos, cfg.output_dir, cfg.video, cfg.cameras) == \
        ("libero_goal", 50, "data/demos", True, [])
    path = tmp_path / "demos.json"
    path.write_text(json.dumps({"suite": "metaworld", "num_demos": 3, "max_attempts_factor": 3.0}))
    cfg = demos_config(_args("demos", "--config", str(path), "--set", "image_size=64", "--no-video", "-n", "4"))
    assert (cfg.suite, cfg.num_demos, cfg.max_attempts_factor, cfg.image_size, cfg.video) == \
        ("metaworld", 4, 3.0, 64, False)
    cfg = expert_eval_config(_args("demos", "--evaluate-experts", "--set", "init_states=5"))
    assert (cfg.init_states, cfg.max_steps, cfg.output_dir) == (5, 200, "data/demos")   # -o's default
    assert expert_eval_config(_args("demos", "--evaluate-experts", "--tasks", "all")).tasks == ["all"]
    assert demos_config(_args("demos")).max_steps is None                          # each task's own cap
    assert demos_config(_args("demos", "--max-steps", "300")).max_steps == 300
    cfg = expert_eval_config(_args("demos", "--evaluate-experts", "--max-steps", "300", "-o", "r"))
    assert (cfg.max_steps, str(cfg.stem), str(cfg.config_path)) == \
        (300, "r/expert_success_libero_goal_300", "r/expert_eval_config_300.json")


def test_demos_bad_set_fails_before_any_simulator(tmp_path, capsys):
    assert roboact_main(["demos", "-o", str(tmp_path / "d"), "--set", "num_demos=lots"]) == 2
    assert "num_demos: expected an integer, got 'lots'" in capsys.readouterr().err
    assert roboact_main(["demos", "--evaluate-experts", "-o", str(tmp_path / "d"), "--set", "init_states=99"]) == 2
    assert "init_states: must be in [1, 50], got 99" in capsys.readouterr().err
    assert roboact_main(["demos", "-o", str(tmp_path / "d"), "--max-steps", "0"]) == 2
    assert "max_steps: must be >= 1 (or null for each task's own cap), got 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_metaworld_refuses_a_task_that_never_enters_pretraining(tmp_path, capsys):
    out = tmp_path / "c"
    assert roboact_main(["simulate", "metaworld", "--out", str(out), "--tasks", "window-close-v3"]) == 2
    err = capsys.readouterr().err
    assert "tasks: 'window-close-v3' never enters a pretraining corpus: reserve task" in err
    assert "--include-near-duplicates" not in err and not out.exists()
    assert roboact_main(["simulate", "metaworld", "--out", str(out), "--tasks", "pick-place-wall-v3"]) == 2
    assert "benchmark task pick-place-v3" in capsys.readouterr().err
    cfg = metaworld_config(_args("simulate", "metaworld", "--out", "c", "--tasks", "pick-place-wall-v3",
                                 "--include-near-duplicates"))
    assert cfg.tasks == ["pick-place-wall-v3"] and cfg.include_near_duplicates
